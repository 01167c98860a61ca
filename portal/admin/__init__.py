"""District administration: apps, grants, released fields, and what was shared (the pages in
views.py show; `portal apps ...` changes)."""
