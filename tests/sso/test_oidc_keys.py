"""Signing keys on disk: generated once (mode 0600), rotated beside the old one (published before
it signs), published by kid."""
from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from portal.sso.oidc.keys import _STAMP as STAMP
from portal.sso.oidc.keys import PUBLISH_AHEAD, KeyFileError, load_keys, rotate_keys

# How long a key's tokens may be presented after it stops signing: PORTAL_SESSION_MAX_HOURS's
# default (presentable_for).
KEEP = timedelta(hours=12)


def key_files(folder):
    return sorted(folder.glob("*.pem"))


def later(folder, seconds):
    """Let `seconds` pass for the keys: each file is named for when its key signs."""
    for path in key_files(folder):
        then = datetime.strptime(path.stem, STAMP) - timedelta(seconds=seconds)
        path.rename(folder / f"{then.strftime(STAMP)}.pem")


def signer(token, ring):
    return jwt.decode(token, ring.public_key_set()).header["kid"]


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


def test_a_rotated_key_is_published_before_it_signs(tmp_path):
    first = load_keys(tmp_path)
    old_token = first.sign({"sub": "a"})
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP)
    new_kid = ring.kids[0]
    assert retired == [] and ring.kids == [new_kid, first.kids[0]]
    # Published now, signing only after apps have had the time to fetch it.
    assert [k["kid"] for k in ring.public_jwks()["keys"]] == ring.kids
    assert signer(ring.sign({"sub": "b"}), ring) == first.kids[0]
    assert [k.kid for k in ring.waiting()] == [new_kid]
    soon = datetime.now(timezone.utc) + timedelta(seconds=PUBLISH_AHEAD + 1)
    assert ring.signing_key(soon).kid == new_kid
    # Another process (a worker) sees the rotation without restarting.
    assert load_keys(tmp_path).kids == ring.kids

    later(tmp_path, PUBLISH_AHEAD + 1)
    ring = load_keys(tmp_path)
    assert signer(ring.sign({"sub": "c"}), ring) == new_kid and ring.waiting() == []
    assert jwt.decode(old_token, ring.public_key_set()).claims == {"sub": "a"}


def test_rotation_keeps_the_key_before_the_signing_one_and_retires_older(tmp_path):
    first = load_keys(tmp_path).kids[0]
    second = rotate_keys(tmp_path, keep_for=KEEP)[0].kids[0]
    later(tmp_path, PUBLISH_AHEAD + 1)
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP)
    third = ring.kids[0]
    # The first key signed until the second's time came: its tokens must still verify.
    assert retired == [] and ring.kids == [third, second, first]
    later(tmp_path, KEEP.total_seconds())      # a session's time after the first stopped signing
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP)
    assert retired == [first] and ring.kids[1:] == [third, second]
    assert len(key_files(tmp_path)) == 3


def test_rotating_again_before_the_new_key_signs_keeps_the_signing_one(tmp_path):
    first = load_keys(tmp_path).kids[0]
    rotate_keys(tmp_path, keep_for=KEEP)
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP)
    assert retired == [] and len(ring.kids) == 3 and ring.signing_key().kid == first


def test_rotating_at_once_signs_with_the_new_key_now(tmp_path):
    first = load_keys(tmp_path).kids[0]
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP, at_once=True)
    assert retired == [] and ring.kids[1] == first and ring.signing_key().kid == ring.kids[0]
    later(tmp_path, KEEP.total_seconds())
    again, retired = rotate_keys(tmp_path, keep_for=KEEP, at_once=True)
    assert retired == [first] and again.signing_key().kid == again.kids[0] and again.kids[1] == ring.kids[0]
    assert len(key_files(tmp_path)) == 2


def test_a_key_that_stopped_signing_lately_stays_published_until_its_tokens_cannot_be_presented(tmp_path):
    # `--now` soon after another rotation withdrew the key that had signed until seconds before:
    # its ID tokens (presented as id_token_hint while a session lasts) stopped verifying.
    first = load_keys(tmp_path)
    token = first.sign({"sub": "a"})
    second = rotate_keys(tmp_path, keep_for=KEEP)[0].kids[0]
    later(tmp_path, PUBLISH_AHEAD + 5)              # the scheduled key took over 5 seconds ago
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP, at_once=True)
    third = ring.kids[0]
    assert retired == [] and ring.kids == [third, second, first.kids[0]]
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP, at_once=True)     # and again at once
    fourth = ring.kids[0]
    assert retired == [] and ring.kids == [fourth, third, second, first.kids[0]]
    assert jwt.decode(token, ring.public_key_set()).claims == {"sub": "a"}
    later(tmp_path, KEEP.total_seconds() - 60)      # the first stopped signing KEEP - 55 s ago
    assert rotate_keys(tmp_path, keep_for=KEEP, at_once=True)[1] == []
    later(tmp_path, 61)
    # Now the first, second and third stopped signing more than KEEP ago; the fourth stopped a
    # minute ago, when the fifth (now the one before the signing key) began.
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP, at_once=True)
    assert retired == [third, second, first.kids[0]] and ring.kids[2:] == [fourth]


def test_retiring_at_once_withdraws_the_leaked_key_and_what_it_signed(tmp_path):
    ring = load_keys(tmp_path)
    leaked = ring.kids[0]
    stolen = ring.sign({"sub": "x"})
    with pytest.raises(ValueError):
        rotate_keys(tmp_path, keep_for=KEEP, retire=True)          # the old key must sign until a new one does
    assert load_keys(tmp_path).kids == [leaked]
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP, at_once=True, retire=True)
    assert retired == [leaked] and ring.kids == [ring.signing_key().kid] and len(key_files(tmp_path)) == 1
    with pytest.raises(Exception):
        jwt.decode(stolen, ring.public_key_set())


def test_a_key_file_named_otherwise_signs_since_it_was_written(tmp_path):
    first = load_keys(tmp_path).kids[0]
    own = tmp_path / "district-key.pem"
    own.write_bytes(RSAKey.generate_key(2048, private=True).as_pem(private=True))
    ring = load_keys(tmp_path)
    assert ring.kids[1] == first and ring.signing_key().kid == ring.kids[0] != first
    ring, retired = rotate_keys(tmp_path, keep_for=KEEP)
    assert retired == [] and ring.kids[1:] == [load_keys(tmp_path).signing_key().kid, first]


@pytest.mark.parametrize("content", ["garbage", "public"])
def test_a_file_that_is_not_a_private_key_is_named_and_rotation_adds_nothing(tmp_path, content):
    load_keys(tmp_path)
    stray = tmp_path / "stray.pem"
    key = RSAKey.generate_key(2048, private=True)
    stray.write_bytes(b"garbage" if content == "garbage" else key.as_pem(private=False))
    before = key_files(tmp_path)
    with pytest.raises(KeyFileError, match="stray.pem is not an RSA private key"):
        load_keys(tmp_path, strict=True)
    with pytest.raises(KeyFileError, match="stray.pem"):
        rotate_keys(tmp_path, keep_for=KEEP)
    assert key_files(tmp_path) == before


def test_the_portal_skips_a_file_that_is_not_a_key_and_names_it_once(tmp_path, caplog):
    good = load_keys(tmp_path).signing_key()
    (tmp_path / "stray.pem").write_bytes(b"not really a key\n")
    with caplog.at_level("ERROR", logger="portal.sso.oidc.keys"):
        rings = [load_keys(tmp_path) for _ in range(3)]
    assert all(ring.kids == [good.kid] for ring in rings)
    assert signer(rings[0].sign({"sub": "x"}), rings[0]) == good.kid
    named = [r.getMessage() for r in caplog.records]
    assert len(named) == 1 and "stray.pem is not an RSA private key" in named[0]
    assert "not really" not in caplog.text


def test_with_no_good_key_left_the_portal_refuses_to_sign_and_says_why(tmp_path):
    (tmp_path / "stray.pem").write_text("garbage")
    for _ in range(2):      # the answer is kept until the folder changes
        with pytest.raises(KeyFileError, match="no file in .* is an RSA private key"):
            load_keys(tmp_path)
    (tmp_path / "stray.pem").unlink()
    assert len(load_keys(tmp_path).kids) == 1    # the folder changed: read again, first key made
