"""argon2id at OWASP parameters, upgraded transparently when the parameters change."""
import argon2
import pytest
from argon2 import PasswordHasher, Type

from portal.auth.passwords import WeakPassword, hash_password, hasher, needs_rehash, verify_password
from portal.db import db
from tests.factories import password_hash

WEAK = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)


def test_hashes_use_owasp_argon2id_parameters():
    params = argon2.extract_parameters(password_hash("correct horse battery"))
    assert params.type is Type.ID
    assert (params.memory_cost, params.time_cost, params.parallelism) == (19 * 1024, 2, 1)


def test_verify_refuses_wrong_missing_and_broken_hashes():
    good = password_hash("correct horse battery")
    assert verify_password(good, "correct horse battery")
    assert not verify_password(good, "correct horse batterY")
    assert not verify_password(None, "correct horse battery")
    assert not verify_password("not a hash", "correct horse battery")


def test_new_passwords_must_be_long_enough():
    with pytest.raises(WeakPassword):
        hash_password("short")


@pytest.mark.parametrize("password, advice", [
    ("short", "Type a longer one"), ("x" * 1025, "Type a shorter one"),
    ("\u200b" * 8, "Type it again without them"), ("line\nbreak", "Type it again without them"),
    ("\u200b\u200b", "Type it again without them"),    # what is wrong first, then the length
])
def test_a_new_password_is_one_a_student_can_type(password, advice):
    with pytest.raises(WeakPassword) as refused:
        hash_password(password)
    assert refused.value.advice == advice
    # A space inside is typed like any letter, and so are the joiners of Persian and Indic words.
    for fine in ("correct horse battery", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645-123"):
        assert verify_password(hash_password(fine), fine)


@pytest.mark.parametrize("password", ["old but long enough", "abc12"])
def test_weak_hash_is_upgraded_at_sign_in(client, auth, roster, password):
    # "abc12": passwords set before today's length rule must still sign in and upgrade.
    person = roster.person("ada.lovelace", password=None)
    person.password_hash = WEAK.hash(password)
    db.session.commit()
    assert needs_rehash(person.password_hash)

    assert auth.login(password=password).status_code == 302
    db.session.refresh(person)
    assert not needs_rehash(person.password_hash)
    params = argon2.extract_parameters(person.password_hash)
    assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == \
        (Type.ID, hasher.memory_cost, hasher.time_cost, hasher.parallelism)
    assert verify_password(person.password_hash, password)


def test_current_hash_is_left_alone(client, auth, roster):
    person = roster.person("ada.lovelace")
    before = person.password_hash
    assert auth.login().status_code == 302
    db.session.refresh(person)
    assert person.password_hash == before


def test_failed_sign_in_does_not_touch_a_weak_hash(client, auth, roster):
    person = roster.person("ada.lovelace", password=None)
    person.password_hash = weak = WEAK.hash("old but long enough")
    db.session.commit()
    assert auth.login(password="wrong guess here").status_code == 401
    db.session.refresh(person)
    assert person.password_hash == weak
