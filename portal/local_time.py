"""Times as staff read a clock: in the district's time zone (PORTAL_TIMEZONE), the one place
pages, messages and the command line turn the UTC times the portal keeps into it."""
from __future__ import annotations

from datetime import datetime, tzinfo

from flask import current_app


def district_zone() -> tzinfo:
    """The district's time zone (PORTAL_TIMEZONE) of the app in use."""
    return current_app.config["SETTINGS"].zone


def local(moment: datetime, zone: tzinfo | None = None) -> datetime:
    """`moment` (aware, as every UTCDateTime column gives it) on the district's clocks: those of
    `zone`, else of the app in use. The pages' |local filter."""
    return moment.astimezone(zone or district_zone())
