"""The device credential on disk: one JSON file, mode 0600, in a folder of this user's (0700).

    $KIOSK_CONFIG_DIR, or $XDG_CONFIG_HOME/student-portal-kiosk, or ~/.config/student-portal-kiosk

It holds the portal's address beside the credential, so the credential is only ever sent to the
portal that issued it. Written whole to a private temporary file and renamed into place: a power
cut leaves the old credential or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

APP_DIR = "student-portal-kiosk"
FILENAME = "device.json"


class CredentialError(RuntimeError):
    """The stored credential cannot be used; the message is one plain line."""


@dataclass(frozen=True)
class Device:
    """This device as the portal enrolled it. repr hides the credential."""
    portal: str
    device_id: int
    name: str
    school: str
    credential: str = field(repr=False)


def config_dir(explicit: str | os.PathLike | None = None,
               environ: Mapping[str, str] = os.environ) -> Path:
    """The folder that holds the credential: --config-dir, KIOSK_CONFIG_DIR, else XDG's."""
    if explicit:
        return Path(explicit).expanduser()
    if environ.get("KIOSK_CONFIG_DIR"):
        return Path(environ["KIOSK_CONFIG_DIR"]).expanduser()
    base = environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / APP_DIR


def credential_path(folder: Path) -> Path:
    return Path(folder) / FILENAME


def save(folder: Path, device: Device) -> Path:
    """Store the device's credential (0600) in `folder` (0700), replacing any older one."""
    folder = Path(folder)
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder.stat().st_uid == os.getuid() and folder.stat().st_mode & 0o077:
            os.chmod(folder, 0o700)
        path = credential_path(folder)
        tmp = folder / f".{FILENAME}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(asdict(device), f, indent=2)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _sync_folder(folder)
    except OSError as e:
        raise CredentialError(f"could not save the credential in {folder}: {e.strerror or e}") from None
    return path


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(folder: Path) -> Device | None:
    """The stored device, or None when this device was never enrolled here."""
    path = credential_path(folder)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CredentialError(f"could not read {path}: {e.strerror or e}") from None
    with os.fdopen(fd, encoding="utf-8") as f:
        if os.fstat(f.fileno()).st_mode & 0o077:
            # Someone loosened it; a credential others can read is tightened before use.
            os.fchmod(f.fileno(), 0o600)
        try:
            data = json.load(f)
            device = Device(portal=str(data["portal"]), device_id=int(data["device_id"]),
                            name=str(data["name"]), school=str(data["school"]),
                            credential=str(data["credential"]))
        except (ValueError, KeyError, TypeError):
            raise CredentialError(f"{path} is damaged: enroll this device again") from None
    return device
