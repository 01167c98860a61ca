"""All models, importable from one place so Alembic and the app see the same metadata."""
from portal.models.roster import District, School, Section, Person, PersonSchool, Enrollment, Role
from portal.models.apps import App, AppOptOut, Grant, AppKind
from portal.models.audit import Event
from portal.models.badges import Badge, BadgeFactor, BadgeKind, BadgePolicy, FactorKind, KioskDevice
from portal.models.deletions import DeletionRequest

__all__ = [
    "District", "School", "Section", "Person", "PersonSchool", "Enrollment", "Role",
    "App", "AppOptOut", "Grant", "AppKind", "Event",
    "Badge", "BadgeFactor", "BadgeKind", "BadgePolicy", "FactorKind", "KioskDevice",
    "DeletionRequest",
]
