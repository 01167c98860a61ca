"""Every page begins with a link past its bar to its main content ("Skip to main content"), the
first stop of the keyboard: a child's sign-in page as a teacher's class page or an error page.
That it shows when it has the focus is tests/browser/test_accessibility.py's."""
from __future__ import annotations

from portal.models import Role
from tests.accessible import CONTROLS, accessible_name, page_of
from tests.auth.helpers import isolated_client
from tests.conftest import AuthActions


def test_every_page_begins_with_a_link_to_its_main_content(app, roster):
    school = roster.school()
    room = roster.section(school)
    roster.person("ada.lovelace", schools=[school], sections=[room])
    roster.person("mr.rogers", role=Role.teacher, schools=[school], sections=[room])
    visitor, student, teacher = (isolated_client(app) for _ in range(3))
    AuthActions(student).login()
    AuthActions(teacher).login(username="mr.rogers")
    for client, path, status in ((visitor, "/login", 200), (visitor, "/badge", 200),
                                 (visitor, "/no/such/page", 404), (student, "/", 200),
                                 (teacher, "/teacher/", 200), (teacher, f"/teacher/sections/{room.id}", 200),
                                 (teacher, "/admin/", 403)):
        response = client.get(path)
        assert response.status_code == status, path
        page = page_of(response)
        first = page.body.xpath(CONTROLS)[0]
        assert (first.get("href"), accessible_name(first, page)) == ("#main", "Skip to main content"), path
        assert [element.tag for element in page.xpath("//*[@id='main']")] == ["main"], path
