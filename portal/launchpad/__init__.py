"""The student's tiles page and /launch/<app>."""
from flask import Blueprint

bp = Blueprint("launchpad", __name__)

from portal.launchpad import views  # noqa: E402,F401
