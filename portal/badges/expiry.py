"""When badges stop working: pure date arithmetic, shared by config checks and services."""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone, tzinfo

TEMPORARY_MIN_HOURS = 1
TEMPORARY_MAX_HOURS = 12

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_DAYS = re.compile(r"^(\d{1,4})d$")


# The clock badge code takes (tests pass a settable one; the app, PORTAL_CLOCK or utcnow).
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The default clock: an aware UTC datetime."""
    return datetime.now(timezone.utc)


def parse_expiry(spec: str) -> tuple[str, tuple[int, int] | int]:
    """Read "MM-DD" (the last day badges work, every year) or "<N>d" (days after issue)."""
    spec = (spec or "").strip()
    match = _MONTH_DAY.match(spec)
    if match:
        month, day = int(match.group(1)), int(match.group(2))
        try:
            date(2024, month, day)  # a leap year, so 02-29 is accepted
        except ValueError:
            raise ValueError(f"{spec!r} is not a day of the year (use MM-DD, e.g. 07-31)") from None
        return "month_day", (month, day)
    match = _DAYS.match(spec)
    if match and 1 <= int(match.group(1)) <= 1000:
        return "days", int(match.group(1))
    raise ValueError(f"{spec!r} is neither MM-DD (e.g. 07-31) nor a number of days (e.g. 365d)")


def _last_day(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:  # 02-29 in a common year
        return date(year, month, day - 1)


def permanent_expiry(now: datetime, spec: str, zone: tzinfo = timezone.utc) -> datetime:
    """The moment a permanent badge issued at `now` stops (in UTC): the end of the next MM-DD
    in the district's time zone `zone` (the last school day ends at the district's midnight,
    not Greenwich's), or N days after `now`."""
    kind, value = parse_expiry(spec)
    if kind == "days":
        return now + timedelta(days=value)
    month, day = value
    year = now.astimezone(zone).year
    for year in (year, year + 1):
        last = _last_day(year, month, day)
        end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=zone)
        if end > now:
            break
    return end.astimezone(timezone.utc)


def last_day(expires_at: datetime, zone: tzinfo = timezone.utc) -> date:
    """The last day, in the district's time zone, on which a badge ending at `expires_at` works."""
    # The moment before, then where the district is: where midnight is skipped (clocks jump
    # to 01:00), the end reads as 01:00 of the next day, which is not a day the badge works.
    return (expires_at.astimezone(timezone.utc) - timedelta(microseconds=1)).astimezone(zone).date()


def temporary_expiry(now: datetime, hours: int) -> datetime:
    """The moment a temporary badge (1 to 12 hours, for a forgotten card) stops."""
    if not isinstance(hours, int) or not TEMPORARY_MIN_HOURS <= hours <= TEMPORARY_MAX_HOURS:
        raise ValueError(f"a temporary badge lasts {TEMPORARY_MIN_HOURS} to {TEMPORARY_MAX_HOURS} hours")
    return now + timedelta(hours=hours)
