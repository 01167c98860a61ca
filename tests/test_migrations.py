"""Migrations keep data: upgrading a database that has rows loses none of them."""
from sqlalchemy import create_engine, text

from portal.migrate import upgrade


def test_upgrading_keeps_every_grant(tmp_path):
    # SQLite copies a table to alter it; with foreign keys on, dropping the old copy of `app`
    # used to cascade and delete every grant (0004 changed app.icon's type).
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0003_badges")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO district (id, sourced_id, name) VALUES (1, 'd1', 'D')"))
        conn.execute(text(
            "INSERT INTO app (id, slug, name, kind, url, icon, settings, released_fields) "
            "VALUES (1, 'library', 'Library', 'link', 'https://l.example/', '', '{}', '[]')"))
        conn.execute(text("INSERT INTO app_grant (id, app_id, district_id) VALUES (1, 1, 1)"))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app_grant")).scalar() == 1
        assert conn.execute(text("SELECT name FROM app")).scalar() == "Library"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_upgrading_gives_existing_icons_their_version(tmp_path):
    from portal.admin.icons import icon_version
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0004_app_icon_text")
    icon = "data:image/png;base64,iVBORw0KGgo="
    with engine.begin() as conn:
        for app_id, slug, value in ((1, "library", icon), (2, "math", "")):
            conn.execute(text(
                "INSERT INTO app (id, slug, name, kind, url, icon, settings, released_fields) "
                "VALUES (:id, :slug, :slug, 'link', 'https://l.example/', :icon, '{}', '[]')"),
                {"id": app_id, "slug": slug, "icon": value})
    upgrade(engine)
    with engine.connect() as conn:
        versions = dict(conn.execute(text("SELECT slug, icon_version FROM app")).all())
    assert versions == {"library": icon_version(icon), "math": ""}
    engine.dispose()
