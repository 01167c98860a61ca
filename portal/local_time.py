"""Times as staff read a clock: in the district's time zone (PORTAL_TIMEZONE), the one place
pages, messages and the command line turn the UTC times the portal keeps into it."""
from __future__ import annotations

from datetime import datetime

from flask import current_app


def local(moment: datetime) -> datetime:
    """`moment` (aware, as every UTCDateTime column gives it) on the district's clocks
    (PORTAL_TIMEZONE of the app in use). The pages' |local filter."""
    return moment.astimezone(current_app.config["SETTINGS"].zone)
