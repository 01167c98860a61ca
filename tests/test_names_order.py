"""Lists in the order a teacher or a child expects (portal.names): by name as a dictionary orders
it, not by the bytes (which put every accented or lower-case name after "Z", on SQLite and on
PostgreSQL under the C collation)."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone

from portal.access import apps_for
from portal.admin.services import add_link_app, grant_app
from portal.db import db
from portal.models import App, Enrollment, Role, Section
from portal.names import by_name, folded
from portal.teacher.classes import class_rows, classes_for

# (given, family) in the order a class list should show them; one "Ñúñez" typed composed, the
# other exported decomposed (NFD), as some Mac tools do.
CLASS = [("Ann", "Adams"), ("Minh", "Đặng"), ("Carlos", "de la Cruz"), ("Émile", "Été"), ("Lucía", "López"),
         ("Minh", "Nguyễn"), ("Renée", unicodedata.normalize("NFD", "Ñúñez")), ("José", "Ñúñez-García"),
         ("Dan", "O'Brien"), ("Hans", "Ørsted"), ("Gerard", "'t Hooft"), ("Zoe", "Zimmerman"), ("Zoë", "Zimmerman"),
         ("Zoey", "Zimmerman")]


def test_folded_compares_as_a_dictionary_does():
    assert folded("Ñúñez") == folded(unicodedata.normalize("NFD", "Ñúñez")) == "nunez"
    assert folded("'t Hooft") == "t hooft" and folded("de la Cruz") == "de la cruz"
    assert folded("ＺＯＥ") == "zoe"            # full width, as an input method types it
    assert folded("李") == "李" and folded("") == ""
    assert [folded(n) for n in ("Đặng", "Łukasz", "Işık", "Ørsted", "Æsir")] == \
        ["dang", "lukasz", "isik", "orsted", "aesir"]


def test_a_class_list_is_in_dictionary_order(app, roster):
    school = roster.school()
    section = roster.section(school)
    for given, family in reversed(CLASS):
        roster.person(f"{given}.{family}".replace(" ", "").replace("'", ""), schools=[school],
                      sections=[section], given=given, family=family)
    rows, _ = class_rows(db.session, section, datetime.now(timezone.utc))
    assert [(r.person.given_name, r.person.family_name) for r in rows] == CLASS
    assert [(p.given_name, p.family_name) for p in by_name(r.person for r in reversed(rows))] == CLASS


def test_tiles_and_classes_are_in_dictionary_order(app, roster):
    school = roster.school("sch-maple")
    titles = ["Art", "écriture", "Math", "Zoology"]
    for title in reversed(titles):
        roster.section(school, title=title)
    teacher = roster.person("tess.teacher", role=Role.teacher, schools=[school])
    for title in titles:       # the teacher teaches each class
        section = db.session.scalar(db.select(Section).where(Section.title == title))
        db.session.add(Enrollment(sourced_id=f"e-{title}", person_id=teacher.id, section_id=section.id,
                                  role="teacher", primary=True))
    student = roster.person("ada.lovelace", schools=[school])
    names = ["Epic", "iReady", "Math Garden", "Zearn", "Écoute"]
    for name in names:
        add_link_app(db.session, name, f"https://{len(name)}.test/")
        grant_app(db.session, name, school="sch-maple")
    assert [a.name for a in apps_for(db.session, student)] == ["Écoute", "Epic", "iReady", "Math Garden", "Zearn"]
    assert [s.title for s in classes_for(db.session, teacher)] == titles


def test_the_admins_app_list_and_a_persons_opt_outs_are_in_dictionary_order(app, roster, runner):
    # Found by review: the tiles were in dictionary order, the admin's lists beside them not.
    from portal.admin.optouts import opt_out, opted_out_apps
    from portal.admin.services import list_apps, remove_app
    student = roster.person("ada.lovelace", schools=[roster.school()])
    for name in ("Zoom", "edpuzzle", "Émoji Lab", "iReady", "Math"):
        add_link_app(db.session, name, f"https://{len(name)}.test/")
    remove_app(db.session, "Math", now=datetime.now(timezone.utc))
    assert [a.name for a in list_apps(db.session, removed=True)] == ["edpuzzle", "Émoji Lab", "iReady", "Zoom", "Math"]
    for name in ("Zoom", "edpuzzle", "Émoji Lab"):
        opt_out(db.session, student, db.session.scalar(db.select(App).where(App.name == name)), actor=None,
                now=datetime.now(timezone.utc))
    assert [a.name for a in opted_out_apps(db.session, student)] == ["edpuzzle", "Émoji Lab", "Zoom"]
