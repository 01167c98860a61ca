"""Password hashing with argon2id at OWASP's recommended parameters."""
from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from portal.models.roster import typeable_username

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32,
                        salt_len=16, type=Type.ID)

# A real hash to verify against when the username is unknown, so that a wrong username
# costs the same time as a wrong password.
_DUMMY_HASH = hasher.hash("not a password anyone has")

MIN_LENGTH = 8
MAX_LENGTH = 1024


class WeakPassword(ValueError):
    """The new password is not acceptable; the message says why, and `advice` what to type
    instead ("Type a longer one"), for a page to finish as it needs."""

    def __init__(self, message: str, advice: str):
        super().__init__(message)
        self.advice = advice


def hash_password(password: str) -> str:
    """Hash a new password, refusing ones too short, absurdly long, or that no one could type
    at the sign-in page (a line break, a tab, a zero-width or other invisible character: the
    same rule as a username's)."""
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"A password can have at most {MAX_LENGTH} characters.", "Type a shorter one")
    if not typeable_username(password):
        raise WeakPassword("A password can only have characters a keyboard types: no line breaks, tabs "
                           "or invisible characters.", "Type it again without them")
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"A password needs at least {MIN_LENGTH} characters.", "Type a longer one")
    return hasher.hash(password)


def rehash_password(password: str) -> str:
    """Hash a password already in use with today's parameters (it passed the rules of its day)."""
    return hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Check a password against a stored hash in constant work whether or not one exists."""
    try:
        return hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with parameters older than today's."""
    return hasher.check_needs_rehash(stored_hash)
