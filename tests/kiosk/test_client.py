"""kiosk.client against the real portal on 127.0.0.1 (and, for answers the portal never gives,
the recording stand-in): what each call returns, and which error each refusal becomes."""
from __future__ import annotations

from dataclasses import replace

import pytest

from kiosk.client import (
    BadgeRefused, BindAgain, DeviceRefused, PairingRefused, PortalClient, PortalError,
    PortalUnreachable, TooManyTries, portal_base, same_portal,
)
from portal.badges.kiosks import create_pairing_code, revoke_device
from portal.db import db
from portal.devserver import free_port
from portal.models import KioskDevice
from tests.badges.conftest import issue, world  # noqa: F401  (the badge test school)
from tests.kiosk.helpers import RecordingPortal, bind_a_browser


@pytest.fixture
def device(live_server, redis_client, world):
    """A kiosk enrolled with the live portal through the client, its browser bound."""
    code = create_pairing_code(db.session, redis_client, world.school).code
    answer = PortalClient(live_server).enroll(code)
    bind_a_browser(live_server, answer["credential"])
    return PortalClient(live_server, answer["credential"]), answer


def test_a_device_whose_browser_is_not_bound_is_told_to_bind_it_again(live_server, redis_client,
                                                                      world):
    code = create_pairing_code(db.session, redis_client, world.school).code
    client = PortalClient(live_server, PortalClient(live_server).enroll(code)["credential"])
    with pytest.raises(BindAgain, match="browser to be set up again"):
        client.send_badge(issue(redis_client, world.student))


def test_enroll_returns_the_device_and_its_credential(device, world):
    _, answer = device
    assert set(answer) == {"device_id", "name", "school", "credential"}
    assert answer["school"] == world.school.name and answer["credential"].startswith("kd1_")


def test_enroll_with_a_wrong_code_is_refused(live_server):
    with pytest.raises(PairingRefused, match="That pairing code didn't work"):
        PortalClient(live_server).enroll("ABCD2345")


def test_bind_gives_a_one_time_link_on_the_portal(device, live_server):
    client, _ = device
    link = client.bind()
    assert link.url.startswith(f"{live_server}/kiosk/bind/") and link.expires_in == 30


def test_send_badge_gives_the_handoff_link(device, live_server, redis_client, world):
    client, _ = device
    link = client.send_badge(issue(redis_client, world.student))
    assert link.url.startswith(f"{live_server}/kiosk/handoff/") and link.expires_in == 30


def test_a_refused_badge_is_badge_refused(device, redis_client, world):
    client, _ = device
    with pytest.raises(BadgeRefused):
        client.send_badge(issue(redis_client, world.far_student))
    with pytest.raises(BadgeRefused):
        client.send_badge("spb1_not-a-badge")


def test_a_revoked_device_is_device_refused(device, redis_client):
    client, answer = device
    revoke_device(db.session, redis_client, db.session.get(KioskDevice, answer["device_id"]))
    with pytest.raises(DeviceRefused, match="enroll it again"):
        client.bind()


class TestLimits:
    @pytest.fixture
    def settings(self, base_settings):
        return replace(base_settings, badge_limit_per_device="1 per minute")

    def test_too_many_scans_say_when_to_try_again(self, device, redis_client, world):
        client, _ = device
        client.send_badge(issue(redis_client, world.student))
        with pytest.raises(TooManyTries) as caught:
            client.send_badge(issue(redis_client, world.classmate))
        assert 55 <= caught.value.retry_after <= 60      # when the limit frees up


def test_an_unreachable_portal_is_portal_unreachable():
    client = PortalClient(f"http://127.0.0.1:{free_port()}", "kd1_x", timeout=(1, 1))
    with pytest.raises(PortalUnreachable, match="could not reach the portal"):
        client.send_badge("spb1_x")


def test_links_open_on_the_enrolled_portal_whatever_host_they_name():
    with RecordingPortal() as portal:
        client = PortalClient(portal.url, portal.credential)
        # The stand-in names itself; a portal behind a proxy might name another host.
        link = client.send_badge("spb1_x")
    assert link.url.startswith(f"{portal.url}/kiosk/handoff/")


def test_a_badge_request_carries_the_token_its_number_and_the_credential_only():
    with RecordingPortal() as portal:
        PortalClient(portal.url, portal.credential).send_badge("spb1_token")
    (sent,) = portal.requests
    assert sent.json() == {"token": "spb1_token", "seq": 1}
    assert sent.headers["authorization"] == f"Bearer {portal.credential}"


def test_no_request_without_a_credential():
    with RecordingPortal() as portal:
        with pytest.raises(DeviceRefused):
            PortalClient(portal.url).send_badge("spb1_token")
    assert portal.requests == []


def test_netrc_cannot_replace_the_credential(tmp_path, monkeypatch):
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login someone password secret\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with RecordingPortal() as portal:
        PortalClient(portal.url, portal.credential).send_badge("spb1_token")
    assert portal.requests[0].headers["authorization"] == f"Bearer {portal.credential}"


@pytest.mark.parametrize("url, base", [
    ("https://portal.example.org", "https://portal.example.org"),
    ("https://portal.example.org/", "https://portal.example.org"),
    ("https://district.example/portal/", "https://district.example/portal"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("http://localhost:5000/", "http://localhost:5000"),
    ("http://[::1]:5000", "http://[::1]:5000"),
])
def test_portal_address_accepted(url, base):
    assert portal_base(url) == base


@pytest.mark.parametrize("url", [
    "http://portal.example.org", "http://10.0.0.5", "ftp://portal.example.org", "portal.example.org",
    "https://user:pw@portal.example.org", "https://portal.example.org/?next=x", "", "https://",
    "http://127.0.0.1.example.org",
])
def test_portal_address_refused(url):
    with pytest.raises(ValueError):
        portal_base(url)


def test_same_portal_ignores_default_ports_and_trailing_slashes():
    assert same_portal("https://portal.example.org/", "https://portal.example.org:443")
    assert not same_portal("https://portal.example.org", "https://portal.example.net")
    assert not same_portal("http://127.0.0.1:5000", "http://127.0.0.1:5001")


def test_errors_are_one_line():
    for error in (PortalUnreachable("a"), BadgeRefused("b"), PortalError("c")):
        assert "\n" not in str(error)
