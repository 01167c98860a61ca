"""The login rush's district: a demo district imported with the roster importer, passwords for the
students who sign in, and apps (with vendor-sized icons) granted to them among grants to others."""
from __future__ import annotations

import random
from pathlib import Path

PASSWORD = "rush-hour-otter-42"
TARGET_GRADE = "03"


def app_icon(seed: int) -> str:
    """A 128-pixel PNG icon as the portal keeps it (a data: URL), with enough detail to weigh
    what a vendor's icon does (about 25 KB)."""
    import base64

    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    icon = np.zeros((128, 128, 3), np.uint8)
    icon[:] = rng.integers(40, 220, 3)
    for _ in range(12):
        cv2.circle(icon, tuple(int(v) for v in rng.integers(0, 128, 2)), int(rng.integers(6, 40)),
                   tuple(int(v) for v in rng.integers(0, 255, 3)), -1, cv2.LINE_AA)
    icon = cv2.add(icon, rng.integers(0, 6, icon.shape, dtype=np.uint8))  # a little texture
    ok, png = cv2.imencode(".png", icon)
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()


def build_district(app, folder: Path, students_total: int, n_signers: int, n_apps: int) -> list[str]:
    """Import a demo district through the roster importer, then give N students passwords and
    N_APPS apps; return the usernames of the students who sign in."""
    from sqlalchemy import insert, select, update

    from portal.admin.icons import icon_version
    from portal.auth.passwords import hash_password
    from portal.db import db
    from portal.migrate import upgrade
    from portal.models import App, District, Grant, Person, PersonSchool, School, Section
    from portal.roster import import_roster
    from portal.roster.demo import write_bundle

    rng = random.Random(2025)
    with app.app_context():
        upgrade(db.engine)
        write_bundle(folder, students_total)
        import_roster(db.session, folder)
        session = db.session

        # The signers: grade 03 students, school by school.
        rows = session.execute(
            select(Person.id, Person.username, PersonSchool.school_id)
            .join(PersonSchool, PersonSchool.person_id == Person.id)
            .where(Person.role == "student", Person.grades == TARGET_GRADE, Person.enabled.is_(True))
            .order_by(PersonSchool.school_id, Person.id).limit(n_signers)).all()
        if len(rows) < n_signers:
            raise SystemExit(f"only {len(rows)} grade {TARGET_GRADE} students: lower --n")
        ids = [r.id for r in rows]
        session.execute(update(Person).where(Person.id.in_(ids))
                        .values(password_hash=hash_password(PASSWORD)))  # one hash: same cost
        signer_schools = sorted({r.school_id for r in rows})

        district = session.scalar(select(District.id))
        schools = list(session.scalars(select(School.id)))
        others = [s for s in schools if s not in signer_schools] or schools
        sections = list(session.scalars(select(Section.id).where(Section.school_id.in_(others[:50]))))
        apps, grants = [], []
        for a in range(1, n_apps + 1):
            icon = app_icon(a)
            apps.append({"id": a, "slug": f"app-{a:03d}", "name": f"App {a:03d}", "kind": "link",
                         "client_id": None, "url": f"https://apps.example/{a}", "icon": icon,
                         "icon_version": icon_version(icon),
                         "settings": {}, "released_fields": ["given_name", "family_name_initial"]})
            # Every signer sees every app, each through a different kind of grant ...
            kind = a % 6
            if kind == 0:
                grants.append({"district_id": district})
            elif kind == 1:
                grants.append({"grade": TARGET_GRADE})
            elif kind == 2:
                grants.append({"role": "student"})
            elif kind == 3:
                grants.append({"grade": TARGET_GRADE, "role": "student"})
            else:
                grants += [{"school_id": s, **({"grade": TARGET_GRADE} if kind == 5 else {})}
                           for s in signer_schools]
            # ... and each app is also granted to other groups, as a real district's would be.
            grants += [{"school_id": rng.choice(others)}, {"section_id": rng.choice(sections)},
                       {"section_id": rng.choice(sections)},
                       {"grade": f"{rng.choice([1, 2, 4, 5, 6, 7, 8]):02d}", "role": "student"}]
            for g in grants:
                g.setdefault("app_id", a)
        session.execute(insert(App.__table__), apps)
        columns = ("district_id", "school_id", "section_id", "grade", "role")
        session.execute(insert(Grant.__table__),
                        [{"app_id": g["app_id"], **{c: g.get(c) for c in columns}} for g in grants])
        session.commit()
        db.session.remove()
        db.engine.dispose()
    return [r.username for r in rows]
