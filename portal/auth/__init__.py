"""Sign-in: password login, logout, sessions and the role check."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from portal.auth import views  # noqa: E402,F401  (registers the routes)
