"""The kiosk program, run in this process with a real-time camera, a browser and a window of its
own: starting before the portal can be reached, a slow answer, a device the portal no longer
knows."""
from __future__ import annotations

import time

import pytest

import kiosk.__main__ as program
from kiosk import preview as screen
from kiosk.camera import frames
from portal.badges.kiosks import revoke_device
from portal.badges.token import mint_token
from portal.db import db
from portal.devserver import free_port
from portal.models import KioskDevice
from tests.badges.conftest import enroll_kiosk, issue, world  # noqa: F401  (fixtures)
from tests.kiosk.helpers import (
    FakeWindow, LinkBrowser, LiveCamera, RecordingPortal, run_kiosk_here, save_device, write_video,
)

TOKEN = mint_token()     # the stand-in portal takes any badge


def _run(monkeypatch, portal_url, folder, timeline, window=None, camera=None):
    window = window or FakeWindow()
    browser = LinkBrowser()
    status = run_kiosk_here(monkeypatch, ["--portal", portal_url, "--config-dir", str(folder)],
                            camera or LiveCamera(timeline), browser, window)
    return status, window, browser


def test_a_kiosk_started_before_the_network_keeps_trying_and_says_so(monkeypatch, tmp_path):
    """Started at boot before Wi-Fi: it used to stop at once (exit 1). It says "Can't reach the
    portal" in its window, tries again with a growing wait, and works once the portal answers."""
    port, credential = free_port(), "kd1_" + "c" * 43
    url, started = f"http://127.0.0.1:{port}", []

    def network_up():      # the portal listens only from now on
        started.append(RecordingPortal(port=port, credential=credential).__enter__())
    save_device(tmp_path, url, 7, credential)
    camera = LiveCamera([(4, None), (0.1, None, network_up), (6, [TOKEN])])
    try:
        status, window, _ = _run(monkeypatch, url, tmp_path, None, camera=camera)
    finally:
        for portal in started:
            portal.__exit__(None, None, None)
    assert status == 0
    # "Getting ready..." may not last a frame: the first try can fail before one is drawn.
    assert screen.OFFLINE in window.lines[:2] and window.lines[0] in (screen.STARTING, screen.OFFLINE)
    assert screen.SIGNED_IN in window.lines
    assert window.lines.index(screen.CHECKING) < window.lines.index(screen.SIGNED_IN)
    assert [r.path for r in started[0].requests if r.method == "POST"] == ["/kiosk/bind",
                                                                           "/kiosk/badge"]
    # A printed badge's modules are under a millimetre: the camera is asked for 1280x720.
    assert camera.asked == {"width": 1280, "height": 720}


def test_the_frame_size_asked_of_the_camera_may_be_set_and_is_checked():
    from kiosk.__main__ import _parsers
    run = _parsers()[1]
    assert run.parse_args(["--portal", "https://p.example"]).size == (1280, 720)
    assert run.parse_args(["--portal", "https://p.example", "--size", "640X480"]).size == (640, 480)
    for bad in ("720p", "1280x", "0x0", "99999x720", "１２８０x720"):
        with pytest.raises(SystemExit):
            run.parse_args(["--portal", "https://p.example", "--size", bad])


def test_a_slow_answer_shows_checking_and_the_picture_keeps_moving(monkeypatch, tmp_path):
    """The send no longer blocks the camera loop; and while the badge that was sent stays in
    view, its answer stays on screen (it went back to "Hold your badge inside the box")."""
    with RecordingPortal(badge_delay=2.0) as portal:
        save_device(tmp_path, portal.url, 7, portal.credential)
        status, window, _ = _run(monkeypatch, portal.url, tmp_path, [(1, None), (8, [TOKEN])])
    assert status == 0
    checking, answered = window.when(screen.CHECKING), window.when(screen.SIGNED_IN)
    assert 1.9 < answered - checking < 3
    frames_meanwhile = [t for t in window.shown if checking <= t < answered]
    assert len(frames_meanwhile) >= 20, len(frames_meanwhile)      # not frozen
    assert window.lines[window.lines.index(screen.SIGNED_IN):] == [screen.SIGNED_IN]
    assert len(portal.to("/kiosk/badge")) == 1


def _noted(monkeypatch, camera, window: FakeWindow):
    """Note in order each frame `camera` gives, each call of the real decoder (counted around
    it) and each line `window` shows; (the notes, the camera to run the kiosk with)."""
    seen: list[str] = []
    read_badge, show = program.read_badge, window.show

    def counted_read_badge(frame):
        seen.append("decode")
        return read_badge(frame)

    def noted_camera(source, **asked):
        for frame in camera(source, **asked):
            seen.append("frame")
            yield frame

    def noted_show(frame, message):
        seen.append(message)
        return show(frame, message)
    monkeypatch.setattr(program, "read_badge", counted_read_badge)
    window.show = noted_show
    return seen, noted_camera


def _nothing_read_once_it_says_so(seen: list[str]) -> None:
    held = seen[seen.index(screen.NOT_ENROLLED):]
    assert "decode" in seen[:len(seen) - len(held)]        # it read badges until then
    assert "frame" not in held and "decode" not in held, held.count("decode")
    assert set(held) == {screen.NOT_ENROLLED}        # drawn again meanwhile, nothing else


def test_a_device_the_portal_no_longer_knows_says_so_on_screen_with_its_camera_off(
        monkeypatch, tmp_path, app, redis_client, world, live_server):  # noqa: F811
    """While it said "set up again" (5 minutes) it went on reading the camera and decoding every
    frame, 10-15 ms of a Chromebook's CPU each, for a badge it could no longer send. Now it
    closes the camera first: the window keeps the message up, and nothing is read or decoded."""
    monkeypatch.setattr(program, "REVOKED_SHOW_SECONDS", 2.0, raising=False)
    kiosk = enroll_kiosk(app, redis_client, world.school)
    save_device(tmp_path, live_server, kiosk.device_id, kiosk.credential)

    def revoke():
        revoke_device(db.session, redis_client, db.session.get(KioskDevice, kiosk.device_id))
    # The child keeps holding the badge up after the answer: each frame would be decoded.
    window = FakeWindow()
    seen, camera = _noted(monkeypatch, LiveCamera([
        (1, None, revoke), (8, [issue(redis_client, world.student)])]), window)
    status, window, _ = _run(monkeypatch, live_server, tmp_path, None, window, camera)
    assert status == 3
    shown_from = window.when(screen.NOT_ENROLLED)
    assert window.lines[-1] == screen.NOT_ENROLLED
    assert 1.9 < window.closed_at - shown_from < 3
    _nothing_read_once_it_says_so(seen)


def test_a_device_refused_in_line_reads_no_further_frame(monkeypatch, tmp_path):
    """A video is read in line: the badge's answer is in before its frame is shown (so may a
    camera's be, on a busy machine). That frame was still shown, under the message, and one
    more read, before the camera was closed."""
    monkeypatch.setattr(program, "REVOKED_SHOW_SECONDS", 2.0, raising=False)
    video = write_video(tmp_path / "badge.avi", [TOKEN], count=30)
    window = FakeWindow()
    seen, camera = _noted(monkeypatch, frames, window)
    with RecordingPortal(badge_status=401) as portal:
        save_device(tmp_path, portal.url, 7, portal.credential)
        status = run_kiosk_here(monkeypatch, ["--portal", portal.url, "--config-dir", str(tmp_path),
                                              "--video", str(video)], camera, LinkBrowser(), window)
    assert status == 3 and len(portal.to("/kiosk/badge")) == 1
    _nothing_read_once_it_says_so(seen)


@pytest.mark.parametrize("closed_after", [0.5])
def test_closing_the_window_of_a_refused_device_stops_it_at_once(monkeypatch, tmp_path,
                                                                 closed_after):
    with RecordingPortal(badge_status=401) as portal:
        save_device(tmp_path, portal.url, 7, portal.credential)
        window = FakeWindow()
        real_show = window.show

        def show(frame, message):
            real_show(frame, message)
            return not (screen.NOT_ENROLLED in window.lines
                        and time.monotonic() - window.when(screen.NOT_ENROLLED) > closed_after)
        window.show = show
        started = time.monotonic()
        status, window, _ = _run(monkeypatch, portal.url, tmp_path, [(0.5, None), (20, [TOKEN])],
                                 window)
    assert status == 3 and time.monotonic() - started < 5


SECRET = "kd1_" + "s" * 43      # must never be shown or said


def _store(folder, stored: str) -> str:
    """Leave `folder`'s credential file `stored`; the line the kiosk then stops with."""
    path = folder / "device.json"
    hint = ("with a pairing code from a teacher or admin (My classes): "
            "python -m kiosk enroll --portal http://127.0.0.1:9 --code CODE")
    if stored == "missing":
        return f"kiosk: this device is not enrolled: enroll it {hint}"
    if stored == "folder":
        path.mkdir()
        return f"kiosk: {path} is not a file: move it away, then enroll this device again {hint}"
    if stored == "another portal":
        save_device(folder, "http://127.0.0.1:8", 7, SECRET)
        return (f"kiosk: this device is enrolled with http://127.0.0.1:8, not http://127.0.0.1:9: "
                f"enroll it again {hint}")
    # A power cut in the middle of a copy, a disk that lost it, a hand edit gone wrong.
    path.write_text({"empty": "", "damaged": '{"portal": "http://127.0.0.1:9", "credential": "'
                     + SECRET}[stored])
    return f"kiosk: {path} is damaged: enroll this device again {hint}"


STORED = ["missing", "empty", "damaged", "folder", "another portal"]


@pytest.mark.parametrize("stored", STORED)
def test_a_device_without_a_usable_credential_says_so_on_screen_before_it_stops(
        monkeypatch, tmp_path, capsys, stored):
    """It stopped at once with a line on stderr, which no one in a classroom reads: the child
    and the teacher saw nothing. Now its window says what a device the portal no longer knows
    says, as long, before it stops as before; it never opens the camera (nothing to read)."""
    monkeypatch.setattr(program, "REVOKED_SHOW_SECONDS", 2.0, raising=False)
    line = _store(tmp_path, stored)
    camera = LiveCamera([(20, None)])
    status, window, browser = _run(monkeypatch, "http://127.0.0.1:9", tmp_path, None,
                                   camera=camera)
    said = capsys.readouterr()
    assert status == 1
    assert window.lines == [screen.NOT_ENROLLED]
    assert not hasattr(camera, "asked")              # the camera was never opened
    assert 1.9 < window.closed_at - window.since[0] < 3
    assert said.err.strip().splitlines()[-1] == line
    assert browser.opened == [] and SECRET not in said.out + said.err


@pytest.mark.parametrize("stored", STORED)
def test_headless_a_device_without_a_usable_credential_still_stops_at_once(
        monkeypatch, tmp_path, capsys, stored):
    line = _store(tmp_path, stored)
    camera, started = LiveCamera([(20, None)]), time.monotonic()
    status = run_kiosk_here(monkeypatch, ["--portal", "http://127.0.0.1:9", "--config-dir",
                                          str(tmp_path)], camera, LinkBrowser(), None)
    said = capsys.readouterr()
    assert status == 1 and time.monotonic() - started < 1
    assert not hasattr(camera, "asked")              # the camera was never opened
    assert said.err.strip().splitlines() == [line] and said.out == ""
