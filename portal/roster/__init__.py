"""OneRoster 1.1 CSV import: parse -> diff -> apply in one transaction (see importer.py)."""
from portal.roster.importer import import_roster
from portal.roster.problems import RosterError
from portal.roster.summary import ImportSummary

__all__ = ["import_roster", "RosterError", "ImportSummary"]
