"""A broken key folder: a stray file beside the keys is skipped (apps keep signing in); with no
good key left, the endpoints that need one answer "unavailable" in their own format, and a code
presented meanwhile is not used up, so the app's retry works once the folder is mended."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from portal.sso.oidc.keys import KeyFileError, load_keys
from tests.sso.test_oidc_support import exchange, get_code, oidc_world  # noqa: F401  (fixtures)


@pytest.fixture
def settings(base_settings, tmp_path):
    """A key folder of this test's own."""
    return replace(base_settings, oidc_keys_dir=str(tmp_path / "oidc_keys"))


@pytest.fixture
def key_folder(app) -> Path:
    folder = Path(app.config["SETTINGS"].oidc_keys_dir)
    load_keys(folder)   # the first key, as the first sign-in would make it
    return folder


def test_a_stray_file_beside_the_key_is_skipped_and_sign_in_goes_on(client, auth, oidc_world,
                                                                    key_folder, caplog):
    (key_folder / "backup-notes.pem").write_text("not a key")
    published = client.get("/oidc/jwks")
    assert published.status_code == 200 and len(published.json["keys"]) == 1
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    with caplog.at_level("ERROR"):
        token = exchange(client, oidc_world, code, verifier)
    assert token.status_code == 200, token.json
    jwt.decode(token.json["id_token"], KeySet.import_key_set(published.json), algorithms=["RS256"])
    assert "not a key" not in caplog.text


def test_a_folder_named_like_a_key_is_skipped_and_named(client, key_folder, caplog):
    (key_folder / "old keys.pem").mkdir()
    with caplog.at_level("ERROR"):
        published = client.get("/oidc/jwks")
    assert published.status_code == 200 and len(published.json["keys"]) == 1
    assert "old keys.pem cannot be read (Is a directory)" in caplog.text
    with pytest.raises(KeyFileError, match="old keys.pem cannot be read"):
        load_keys(key_folder, strict=True)     # the command line refuses, naming it


def test_with_no_good_key_the_token_endpoint_says_unavailable_and_keeps_the_code(
        client, auth, oidc_world, key_folder, caplog):
    auth.login()
    code, verifier, _ = get_code(client, oidc_world)
    for key in key_folder.glob("*.pem"):
        key.unlink()    # saved over by an editor: a new file in the folder
        key.write_text("overwritten by mistake")

    with caplog.at_level("ERROR"):
        refused = exchange(client, oidc_world, code, verifier)
        jwks = client.get("/oidc/jwks")
    for response in (refused, jwks):
        assert response.status_code == 503
        assert response.json["error"] == "temporarily_unavailable"
        assert response.headers["Cache-Control"] == "no-store"
    assert "is not an RSA private key" in caplog.text and "overwritten" not in caplog.text

    # A person who lands on an endpoint that needs the keys reads words, not a traceback.
    page = client.get("/oidc/logout?id_token_hint=x.y.z")
    assert page.status_code == 503
    assert "not working right now" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)

    # The administrator moves the broken file out; the app's retry with the same code works.
    for key in key_folder.glob("*.pem"):
        key.rename(key.with_suffix(".broken"))
    assert exchange(client, oidc_world, code, verifier).status_code == 200


def test_a_key_that_cannot_be_made_is_unavailable_not_a_crash(client, monkeypatch, tmp_path, caplog):
    # Found by the operations review: on a read-only folder the first key's lock raised
    # OSError: [Errno 30] Read-only file system, a 500 page with a traceback.
    import errno
    import os

    from portal.sso.oidc import keys as keys_module

    def read_only(self):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    with monkeypatch.context() as m:
        m.setattr(keys_module._FolderLock, "__enter__", read_only)
        with caplog.at_level("ERROR"):
            answer = client.get("/oidc/jwks")
    assert answer.status_code == 503 and answer.json["error"] == "temporarily_unavailable"
    assert "can't make the first OpenID signing key in" in caplog.text and "Read-only file system" in caplog.text
    # A full disk while it writes leaves no part of a key: the next request makes a whole one.
    folder = tmp_path / "oidc_keys"
    sync = os.fsync

    def full(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        sync(fd)
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", full)
        assert client.get("/oidc/jwks").status_code == 503
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]
    assert client.get("/oidc/jwks").status_code == 200
    assert len(list(folder.glob("*.pem"))) == 1


@pytest.mark.parametrize("made", [False, True], ids=["missing", "empty"])
def test_a_production_worker_never_makes_the_first_key(settings, app, tmp_path, caplog, made):
    # Found by the operations review: a mistyped PORTAL_OIDC_KEYS_DIR, or a shared folder not
    # mounted on one server, was made with a fresh key by whichever worker came first, so each
    # server signed with its own key and apps failed now and then.
    from portal import create_app
    folder = tmp_path / "oidc_keys"
    if made:
        folder.mkdir()
    production = create_app({"SETTINGS": replace(settings, env="production")})
    client = production.test_client()
    with caplog.at_level("ERROR"):
        for _ in range(3):
            answer = client.get("/oidc/jwks", base_url="https://portal.example")
            assert answer.status_code == 503 and answer.json["error"] == "temporarily_unavailable"
        health = client.get("/healthz", base_url="https://portal.example")
    # Not the worker's fault, and every worker's alike: the load balancer must not take them all
    # out (password and SAML sign-ins work); the log says it.
    assert (health.status_code, health.get_data(as_text=True)) == (200, "ok\n")
    assert (list(folder.iterdir()) == []) if made else not folder.exists()    # nothing made
    [said] = [r.getMessage() for r in caplog.records if "PORTAL_OIDC_KEYS_DIR" in r.getMessage()]
    assert f"PORTAL_OIDC_KEYS_DIR {folder} {'holds no key' if made else 'does not exist'}" in said
    assert "run `portal keys list` once" in said
    # The command README gives makes it, and the workers sign with it.
    made_key = production.test_cli_runner().invoke(args=["keys", "list"])
    assert made_key.exit_code == 0, made_key.output
    assert client.get("/oidc/jwks", base_url="https://portal.example").status_code == 200
    assert client.get("/healthz", base_url="https://portal.example").status_code == 200
