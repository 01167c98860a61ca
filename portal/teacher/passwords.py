"""A teacher (or an admin) gives one of their students a new password.

The new password is one the teacher types, or one made here that a young child can read and
type: two short words and two digits, like "green-otter-42". There are 64 x 64 x 100 = 409,600
of those (18.6 bits); at the per-account sign-in limit (10 tries per 15 minutes by default)
guessing one takes about seven months on average, and the teacher can type a longer one.
The student's sessions end and their failed sign-ins are forgiven; the reset is recorded in
the audit log with who made it, never with the password.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session

from portal.auth.services import LoginLimits, narrow_username, set_password
from portal.badges.permissions import may_manage_student
from portal.errors import PortalError
from portal.models import Person


class NotYourStudent(PortalError):
    status = 403
    title = "You can't change that student's password"
    advice = "Only their teachers and their school's admins can."

COLOURS_AND_MOODS = (
    "red", "blue", "green", "gold", "pink", "gray", "tan", "mint", "plum", "rose", "ruby", "jade",
    "navy", "teal", "lime", "sky", "sunny", "happy", "brave", "calm", "kind", "proud", "quick",
    "quiet", "silly", "smart", "shy", "cozy", "comfy", "jolly", "lucky", "merry", "busy", "fancy",
    "funny", "gentle", "giant", "tiny", "little", "big", "tall", "soft", "warm", "cool", "fresh",
    "shiny", "sparkly", "fluffy", "bouncy", "sleepy", "snowy", "rainy", "windy", "stormy", "misty",
    "frosty", "sandy", "rocky", "leafy", "magic", "super", "swift", "noble", "wise",
)
ANIMALS = (
    "ant", "bat", "bear", "bee", "bird", "cat", "cow", "crab", "deer", "dog", "duck", "eagle", "eel",
    "elk", "emu", "fish", "fox", "frog", "goat", "goose", "hawk", "hen", "horse", "koala", "lamb",
    "lion", "llama", "mole", "moose", "mouse", "newt", "otter", "owl", "panda", "pig", "pony",
    "puppy", "rabbit", "robin", "seal", "shark", "sheep", "sloth", "snail", "snake", "squid", "swan",
    "tiger", "toad", "trout", "turtle", "whale", "wolf", "worm", "yak", "zebra", "beaver", "camel",
    "gecko", "hippo", "kitten", "lizard", "parrot", "puffin",
)


def friendly_password() -> str:
    """Two words and two digits from the CSPRNG, e.g. "green-otter-42"."""
    return (f"{secrets.choice(COLOURS_AND_MOODS)}-{secrets.choice(ANIMALS)}-"
            f"{secrets.randbelow(100):02d}")


@dataclass(frozen=True)
class NewPassword:
    password: str
    # What the teacher must hear with it: "" when all went well (see reset_student_password).
    note: str = ""


def reset_student_password(db: Session, client: redis.Redis, limits: LoginLimits, actor: Person,
                           student: Person, password: str | None = None) -> NewPassword:
    """Give `student` a new password (`password`, or a friendly one made here) and return it.

    Raises NotYourStudent when `actor` may not manage the student, WeakPassword for a password too
    short or too long, and redis.RedisError when Redis is down before anything changed (nothing
    changes then: the old sessions must not outlive the old password). Once the password is
    committed it is returned whatever Redis does next: were it not shown, nobody would know it.
    Should Redis fail then (gone, or full), its note says what was not done.
    """
    if not may_manage_student(db, actor, student):
        raise NotYourStudent()
    new = password or friendly_password()
    notes = []
    if not set_password(db, client, student, new, actor=actor):
        notes.append("The old password no longer works, but the portal could not sign "
                     f"{student.display_name} out everywhere just now: a sign-in already open with "
                     "their badge, or in an app, may last until it times out.")
    try:
        limits.account.clear(narrow_username(student.username))   # what sign-ins count under
    except redis.RedisError:
        notes.append("If they typed a wrong password too often, they may have to wait a while "
                     "before the new one works.")
    return NewPassword(new, " ".join(notes))
