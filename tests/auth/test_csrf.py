"""Every state-changing request is a POST that carries the session's CSRF token."""
from tests.conftest import csrf_token


def test_login_without_token_is_refused_plainly(client, roster):
    roster.person("ada.lovelace")
    client.get("/login")
    response = client.post("/login", data={"username": "ada.lovelace",
                                           "password": "correct horse battery"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "This page was open too long" in html
    assert "Traceback" not in html and "CSRF" not in html
    assert client.get("/").status_code == 302  # not signed in


def test_login_with_another_sessions_token_is_refused(app, client, roster):
    roster.person("ada.lovelace")
    other = app.test_client()
    token = csrf_token(other)
    client.get("/login")
    response = client.post("/login", data={"username": "ada.lovelace",
                                           "password": "correct horse battery", "csrf_token": token})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_logout_without_token_changes_nothing(client, auth, roster):
    roster.person("ada.lovelace")
    auth.login()
    response = client.post("/logout")
    assert response.status_code == 400
    assert "This page was open too long" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200  # still signed in


def test_sign_in_replaces_the_token(client, auth, roster):
    roster.person("ada.lovelace")
    before = csrf_token(client)
    auth.login()
    # The anonymous page's token does not work in the signed-in session.
    response = client.post("/logout", data={"csrf_token": before})
    assert response.status_code == 400
    assert client.get("/").status_code == 200
