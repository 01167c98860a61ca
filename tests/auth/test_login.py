from portal.models import Role


def test_student_signs_in_and_sees_tiles(client, auth, roster):
    school = roster.school()
    roster.person("ada.lovelace", schools=[school])
    response = auth.login()
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "Hi, Ada!" in page.get_data(as_text=True)


def test_wrong_password_and_unknown_user_read_the_same(client, auth, roster):
    roster.person("ada.lovelace")
    wrong = auth.login(password="not it at all")
    unknown = auth.login(username="nobody.here")
    assert wrong.status_code == unknown.status_code == 401
    def problem(r):
        html = r.get_data(as_text=True)
        return html[html.index('id="problem"'):html.index("</div>", html.index('id="problem"'))]
    assert problem(wrong) == problem(unknown)
