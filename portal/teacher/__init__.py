"""Teacher pages: a staff member's classes, and each class's badges."""
from portal.teacher.views import bp

__all__ = ["bp"]
