"""The device credential on disk: one JSON file, mode 0600, in a folder of this user's (0700).

    $KIOSK_CONFIG_DIR, or $XDG_CONFIG_HOME/student-portal-kiosk, or ~/.config/student-portal-kiosk

It holds the portal's address beside the credential, so the credential is only ever sent to the
portal that issued it. Written whole to a private temporary file and renamed into place: a power
cut leaves the old credential or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kiosk.client import is_credential, is_device_id, plain, portal_base
from portal.files import write_whole

APP_DIR = "student-portal-kiosk"
FILENAME = "device.json"
MAX_FILE = 64 * 1024     # a stored device is a few hundred bytes


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
        write_whole(path, (json.dumps(asdict(device), indent=2) + "\n").encode("utf-8"), 0o600)
    except OSError as e:
        raise CredentialError(f"could not save the credential in {folder}: {e.strerror or e}") from None
    return path


def load(folder: Path) -> Device | None:
    """The stored device, or None when this device was never enrolled here. A file that cannot
    be read or is not what `save` writes is a CredentialError: one line, never a crash later."""
    path = credential_path(folder)
    try:
        # O_NONBLOCK: a FIFO in its place must not hang the kiosk (it is refused below).
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CredentialError(f"could not read {path}: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise CredentialError(f"{path} is not a file: move it away, then enroll this "
                                  f"device again")
        if mode & 0o077:
            # Someone loosened it; a credential others can read is tightened before use.
            os.fchmod(fd, 0o600)
        raw = b""
        while len(raw) <= MAX_FILE and (chunk := os.read(fd, MAX_FILE + 1 - len(raw))):
            raw += chunk
    except OSError as e:
        raise CredentialError(f"could not read {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    try:
        if len(raw) > MAX_FILE:
            raise ValueError("too large")
        return _device(json.loads(raw))
    # RecursionError: JSON nested thousands deep; OverflowError, KeyError, TypeError: values
    # that are not what `save` wrote.
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        raise CredentialError(f"{path} is damaged: enroll this device again") from None


def _device(data) -> Device:
    """The device a stored file describes, checked as the portal issues them: a credential HTTP
    cannot carry, or an id that is not one, is refused here rather than crash every request."""
    portal, device_id, credential = data["portal"], data["device_id"], data["credential"]
    name, school = data["name"], data["school"]
    if not (isinstance(portal, str) and plain(portal, len(portal)) == portal
            and is_device_id(device_id) and is_credential(credential)
            and isinstance(name, str) and isinstance(school, str)):
        raise ValueError("not a stored device")
    return Device(portal=portal_base(portal), device_id=device_id, name=name, school=school,
                  credential=credential)
