"""Signing keys on disk: generated once (mode 0600), rotated beside the old one, published by kid."""
from __future__ import annotations

import stat

from joserfc import jwt

from portal.sso.oidc.keys import KEEP, load_keys, rotate_keys


def key_files(folder):
    return sorted(folder.glob("*.pem"))


def test_first_key_is_made_once_and_private(tmp_path):
    folder = tmp_path / "keys"
    ring = load_keys(folder)
    assert len(ring.kids) == 1
    files = key_files(folder)
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert load_keys(folder).kids == ring.kids and key_files(folder) == files


def test_jwks_publishes_public_halves_with_kids(tmp_path):
    ring = load_keys(tmp_path)
    jwks = ring.public_jwks()
    assert [k["kid"] for k in jwks["keys"]] == ring.kids
    for key in jwks["keys"]:
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_rotation_signs_with_the_newest_and_keeps_the_previous(tmp_path):
    first = load_keys(tmp_path)
    old_token = first.sign({"sub": "a"})
    ring, retired = rotate_keys(tmp_path)
    assert retired == [] and len(ring.kids) == 2 and ring.kids[1] == first.kids[0]
    new_token = ring.sign({"sub": "b"})
    assert jwt.decode(new_token, ring.public_key_set()).header["kid"] == ring.kids[0]
    assert jwt.decode(old_token, ring.public_key_set()).claims == {"sub": "a"}
    # Another process (a worker) sees the rotation without restarting.
    assert load_keys(tmp_path).kids == ring.kids

    again, retired = rotate_keys(tmp_path)
    assert retired == [first.kids[0]] and len(again.kids) == KEEP == 2
    assert len(key_files(tmp_path)) == 2
