"""District administration: apps, grants, released fields (web pages arrive in a later issue)."""
