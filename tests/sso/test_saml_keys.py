"""The IdP signing key: made once (key file 0600) and reused, or read from the configured files."""
from __future__ import annotations

import os
import stat
from dataclasses import replace

import pytest

from portal import create_app
from portal.config import ConfigError, load_settings
from portal.sso.saml.keys import CERT_NAME, KEY_NAME, generate_keys, load_keys


def test_generated_once_with_private_key_mode_0600(tmp_path):
    first = load_keys("", "", tmp_path)
    assert stat.S_IMODE((tmp_path / KEY_NAME).stat().st_mode) == 0o600
    assert (tmp_path / CERT_NAME).read_bytes() == first.cert_pem
    again = load_keys("", "", tmp_path)
    assert again.key_pem == first.key_pem and again.cert_pem == first.cert_pem


def test_a_generated_key_without_its_certificate_is_refused_in_words(tmp_path):
    load_keys("", "", tmp_path)
    (tmp_path / CERT_NAME).unlink()
    with pytest.raises(ConfigError, match=f"No such file .*{CERT_NAME}.* move .*{KEY_NAME} away"):
        load_keys("", "", tmp_path)


def test_a_start_stopped_while_making_the_pair_leaves_no_key(tmp_path, monkeypatch):
    """The certificate is written first: a key on disk always has its certificate beside it."""

    sync = os.fsync

    def stopped_at_the_key(fd):     # the certificate is written first, then the key
        if KEY_NAME in os.readlink(f"/proc/self/fd/{fd}"):
            raise KeyboardInterrupt
        sync(fd)
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", stopped_at_the_key)
        with pytest.raises(KeyboardInterrupt):
            load_keys("", "", tmp_path)
    assert (tmp_path / CERT_NAME).exists() and not (tmp_path / KEY_NAME).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".saml_keys.lock", CERT_NAME]
    made = load_keys("", "", tmp_path)      # the next start makes a whole new pair
    assert (tmp_path / CERT_NAME).read_bytes() == made.cert_pem


def test_configured_files_are_used(tmp_path):
    keys = generate_keys()
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    key_file.write_bytes(keys.key_pem)
    cert_file.write_bytes(keys.cert_pem)
    loaded = load_keys(str(key_file), str(cert_file), tmp_path / "instance")
    assert loaded.cert_pem == keys.cert_pem
    assert not (tmp_path / "instance" / KEY_NAME).exists()


def test_mismatched_or_missing_files_stop_start_up(tmp_path):
    a, b = generate_keys(), generate_keys()
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    key_file.write_bytes(a.key_pem)
    cert_file.write_bytes(b.cert_pem)
    with pytest.raises(ConfigError, match="PORTAL_SAML_CERT_FILE .*c.pem is not the certificate of the key .*k.pem"):
        load_keys(str(key_file), str(cert_file), tmp_path)
    with pytest.raises(ConfigError, match="both"):
        load_keys(str(key_file), "", tmp_path)
    with pytest.raises(ConfigError, match="PORTAL_SAML_KEY_FILE .*nope can't be read .No such file"):
        load_keys(str(tmp_path / "nope"), str(cert_file), tmp_path)


def test_production_needs_the_key_files(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    for name in ("SECRET_KEY", "REDIS_URL", "PAIRWISE_KEY"):
        monkeypatch.setenv(f"PORTAL_{name}", "x" * 40 if name != "REDIS_URL" else "redis://127.0.0.1:1/0")
    monkeypatch.delenv("PORTAL_SAML_KEY_FILE", raising=False)
    with pytest.raises(ConfigError, match="PORTAL_SAML_KEY_FILE"):
        load_settings()


def test_metadata_publishes_the_configured_certificate(settings, tmp_path):
    keys = generate_keys("district")
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    key_file.write_bytes(keys.key_pem)
    cert_file.write_bytes(keys.cert_pem)
    custom = replace(settings, saml_key_file=str(key_file), saml_cert_file=str(cert_file),
                     saml_entity_id="https://portal.district.test/saml")
    app = create_app({"SETTINGS": custom})
    page = app.test_client().get("/saml/metadata").get_data(as_text=True)
    assert keys.cert_base64 in page
    assert 'entityID="https://portal.district.test/saml"' in page



@pytest.fixture
def pair(tmp_path):
    keys = generate_keys()
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    key_file.write_bytes(keys.key_pem)
    cert_file.write_bytes(keys.cert_pem)
    return key_file, cert_file


@pytest.mark.parametrize("broken, words", [
    ("no key", "PORTAL_SAML_KEY_FILE {key} can't be read (No such file or directory)"),
    ("a folder", "PORTAL_SAML_CERT_FILE {cert} can't be read (Is a directory)"),
    ("not PEM", "PORTAL_SAML_CERT_FILE {cert} can't be read (not a PEM certificate"),
    ("key not PEM", "PORTAL_SAML_KEY_FILE {key} can't be read (not a PEM private key"),
    ("a passphrase", "PORTAL_SAML_KEY_FILE {key} can't be read (it has a passphrase"),
    ("another's", "PORTAL_SAML_CERT_FILE {cert} is not the certificate of the key {key}"),
])
def test_production_reads_the_key_and_certificate_at_start(settings, pair, broken, words):
    # Found by the deployment walkthrough: only the settings' presence was checked, so gunicorn
    # started, /healthz said ok, /saml/metadata answered 503, and one line at the first use
    # named the file but not the setting.
    from cryptography.hazmat.primitives import serialization
    key_file, cert_file = pair
    if broken == "no key":
        key_file.unlink()
    elif broken == "a folder":
        cert_file.unlink()
        cert_file.mkdir()
    elif broken == "not PEM":
        cert_file.write_bytes(b"0\x82\x03 DER bytes")
    elif broken == "key not PEM":
        key_file.write_text("saved over by mistake\n")
    elif broken == "a passphrase":
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(b"secret")))
    else:
        cert_file.write_bytes(generate_keys().cert_pem)
    production = replace(settings, env="production", saml_key_file=str(key_file), saml_cert_file=str(cert_file))
    with pytest.raises(ConfigError) as refused:
        create_app({"SETTINGS": production})
    said = str(refused.value)
    assert said.startswith(words.format(key=key_file, cert=cert_file)) and "\n" not in said
    create_app({"SETTINGS": replace(production, env="testing")})     # development reads it at first use


def test_a_read_only_instance_folder_is_unavailable_not_a_crash(tmp_path, monkeypatch, client):
    # Found by the operations review: OSError: [Errno 30] Read-only file system on the lock,
    # a 500 page with a traceback, where a key that can't be made is "unavailable".
    import errno

    import portal.sso.saml.keys as keys_module

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
    monkeypatch.setattr(keys_module, "open", read_only, raising=False)
    with pytest.raises(ConfigError, match=f"can't make the SAML signing key in {tmp_path} .Read-only file "
                                          f"system.: the portal's user must be able to write there"):
        load_keys("", "", tmp_path)
    client.application.extensions.pop("saml_keys", None)
    monkeypatch.setattr(keys_module, "_made", lambda path: False)   # the app's own folder, "read-only"
    answer = client.get("/saml/metadata")
    assert answer.status_code == 503 and "Traceback" not in answer.get_data(as_text=True)


def test_a_full_disk_leaves_no_key_and_the_next_start_makes_a_pair(tmp_path, monkeypatch):
    # Found by the operations review: the key was written in place, so a full disk left an empty
    # key file, and every later start said it "can't be read" rather than make a new pair.
    import errno

    sync = os.fsync

    def full(fd):                   # the key's write, after its certificate's
        if KEY_NAME in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        sync(fd)
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", full)
        with pytest.raises(ConfigError, match="can't make the SAML signing key .*No space left on device"):
            load_keys("", "", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".saml_keys.lock", CERT_NAME]
    made = load_keys("", "", tmp_path)
    assert (tmp_path / KEY_NAME).read_bytes() == made.key_pem


def test_an_empty_key_file_an_older_version_left_is_made_again(tmp_path):
    load_keys("", "", tmp_path)
    (tmp_path / KEY_NAME).write_bytes(b"")
    made = load_keys("", "", tmp_path)
    assert (tmp_path / KEY_NAME).read_bytes() == made.key_pem and made.key_pem


def test_a_certificate_file_with_its_issuers_publishes_the_first_one(tmp_path):
    # Found by review: a CA-issued certificate file holds the chain after it; the metadata and
    # KeyInfo took the whole file's lines ("-----END ... -----BEGIN" inside the base64).
    import base64

    from cryptography.hazmat.primitives import serialization
    leaf, issuer = generate_keys(), generate_keys("An issuing CA")
    (tmp_path / "saml.key").write_bytes(leaf.key_pem)
    (tmp_path / "chain.crt").write_bytes(leaf.cert_pem + issuer.cert_pem)
    keys = load_keys(str(tmp_path / "saml.key"), str(tmp_path / "chain.crt"), tmp_path)
    der = leaf.cert.public_bytes(serialization.Encoding.DER)
    assert keys.cert_base64 == base64.b64encode(der).decode() and "-" not in keys.cert_base64
