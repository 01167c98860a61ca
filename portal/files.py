"""Files the portal writes whole: keys and credentials that a full disk or a stop must not cut."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_whole(path: Path, data: bytes, mode: int = 0o600, *, first_wins: bool = False) -> None:
    """Write `path` through a temporary file beside it (created with `mode`), synced, then renamed
    over it: a full disk, a power cut or a stop halfway leaves the old file or none, never part
    of one. With `first_wins`, linked into place instead, and only if no file is there yet (several
    processes making the same secret at once all keep the first one's). Raises OSError; the
    temporary file is gone either way."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if first_wins:
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename in `folder` itself durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
