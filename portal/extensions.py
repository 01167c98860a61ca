"""Module-level extension objects, wired to the app with init_app in create_app."""
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from portal.db import db
from portal.redis_store import redis_store

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = None  # the sign-in page explains itself
login_manager.session_protection = None  # the session id itself rotates at sign-in

csrf = CSRFProtect()

__all__ = ["db", "redis_store", "login_manager", "csrf"]
