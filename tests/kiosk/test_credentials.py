"""kiosk.credentials: where the credential lives, and that only this user can read it."""
from __future__ import annotations

import os
import stat

import pytest

from kiosk.credentials import CredentialError, Device, config_dir, credential_path, load, save

pytestmark = pytest.mark.no_database

DEVICE = Device(portal="https://portal.example.org", device_id=3, name="Room 4", school="Maple",
                credential="kd1_" + "s" * 43)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_saved_credential_is_private_and_reads_back(tmp_path):
    folder = tmp_path / "cfg" / "student-portal-kiosk"
    path = save(folder, DEVICE)
    assert path == credential_path(folder)
    assert mode(path) == 0o600 and mode(folder) == 0o700
    assert load(folder) == DEVICE
    assert os.listdir(folder) == ["device.json"]     # the temporary file was renamed away


def test_saving_again_replaces_the_credential_whole(tmp_path):
    save(tmp_path, DEVICE)
    newer = Device(**{**DEVICE.__dict__, "device_id": 4, "credential": "kd1_" + "t" * 43})
    save(tmp_path, newer)
    assert load(tmp_path) == newer and os.listdir(tmp_path) == ["device.json"]


def test_a_loose_folder_and_file_are_tightened(tmp_path):
    tmp_path.chmod(0o755)
    path = save(tmp_path, DEVICE)
    assert mode(tmp_path) == 0o700
    path.chmod(0o644)
    assert load(tmp_path) == DEVICE and mode(path) == 0o600


def test_never_enrolled_is_none(tmp_path):
    assert load(tmp_path / "nothing") is None


def test_a_damaged_file_says_enroll_again(tmp_path):
    save(tmp_path, DEVICE)
    credential_path(tmp_path).write_text("{")
    with pytest.raises(CredentialError, match="enroll this device again"):
        load(tmp_path)


def test_repr_hides_the_credential():
    assert DEVICE.credential not in repr(DEVICE)


def test_config_dir_order(tmp_path):
    assert config_dir(tmp_path / "x", {"KIOSK_CONFIG_DIR": "/k"}) == tmp_path / "x"
    assert str(config_dir(None, {"KIOSK_CONFIG_DIR": "/k", "XDG_CONFIG_HOME": "/x"})) == "/k"
    assert str(config_dir(None, {"XDG_CONFIG_HOME": "/x"})) == "/x/student-portal-kiosk"


def test_relative_xdg_config_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_dir(None, {"XDG_CONFIG_HOME": "rel"}) == tmp_path / ".config/student-portal-kiosk"
