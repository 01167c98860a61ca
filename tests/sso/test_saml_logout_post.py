"""SAML Single Logout with an app whose logout address takes only HTTP-POST (Spring Security's
default): it hears of the student's sign-out by a form the browser posts, its own posted sign-out
signs the student out, and a round over Redirect and POST apps reaches each in turn."""
from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest
from lxml import etree
from onelogin.saml2.constants import OneLogin_Saml2_Constants as C

from portal.sso.saml import constants as c
from tests.badges.conftest import new_client
from tests.sso.conftest import SP_ENTITY_ID, SP_SLO, SP_TARGET, PeerSP, read_post_form, register_and_grant
from tests.sso.test_saml_logout import OTHER_ACS, OTHER_ENTITY_ID, OTHER_SLO, _launch, _path, _signed_in


@pytest.fixture
def client(app):
    return new_client(app)   # each request in its own app context, as under a real server


def _posting_peer(metadata: str, keys, **kwargs) -> PeerSP:
    return PeerSP(metadata, keys, slo=SP_SLO, slo_binding=C.BINDING_HTTP_POST, **kwargs)


@pytest.fixture
def post_world(app, client, roster, saml_sp_keys):
    """Ada; Reading Garden, registered from metadata whose only SingleLogoutService is HTTP-POST;
    Math Meadow, whose logout address takes HTTP-Redirect; their python3-saml SPs."""
    from portal.db import db
    school = roster.school("sch-maple")
    student = roster.person("ada.lovelace", schools=[school])
    metadata = client.get("/saml/metadata").get_data(as_text=True)
    posting = _posting_peer(metadata, saml_sp_keys)
    assert b"HTTP-POST" in posting.metadata() and b"HTTP-Redirect" not in posting.metadata()
    first = register_and_grant(db.session, school=school, metadata=posting.metadata())
    second = register_and_grant(db.session, "Math Meadow", school=school, entity_id=OTHER_ENTITY_ID,
                                acs_urls=[OTHER_ACS], sp_cert=saml_sp_keys.cert_pem, slo_url=OTHER_SLO)
    redirecting = PeerSP(metadata, saml_sp_keys, entity_id=OTHER_ENTITY_ID, acs=OTHER_ACS,
                         slo=OTHER_SLO)
    return {"student": student, "post": first, "redirect": second, "metadata": metadata,
            "peers": {first.slug: posting, second.slug: redirecting}}


def _post_from_the_apps_site(app, client, fields: dict):
    """The app's site posts a logout message: a cross-site POST, without the portal's cookies
    (SameSite=Lax); the browser then comes round by a same-site GET that carries them."""
    parked = new_client(app).post("/saml/slo", data=fields)
    assert parked.status_code == 303, parked.data[:300]
    name, value = parked.headers["Set-Cookie"].split(";")[0].split("=", 1)
    client.set_cookie(name, value, path="/saml")
    return client.get("/saml/slo")


def _form_to_the_app(page):
    """The page that posts a logout message to the app: a form, submitted by its one script."""
    assert page.status_code == 200, page.data[:300]
    html = page.get_data(as_text=True)
    assert 'id="saml-post"' in html and "Signing you out of" in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in policy and "unsafe-inline" not in policy
    assert page.headers["Cache-Control"] == "no-store"
    return read_post_form(html)


def _codes(fields: dict, param: str) -> list[str]:
    root = etree.fromstring(base64.b64decode(fields[param]))
    return [e.get("Value") for e in root.iter(f"{{{c.SAMLP}}}StatusCode")]


# --- registration ---------------------------------------------------------------------------------

def test_metadata_with_only_a_post_logout_service_is_kept(saml_sp_keys, client):
    from portal.sso.saml.metadata import read_sp_metadata
    metadata = client.get("/saml/metadata").get_data(as_text=True)
    md = read_sp_metadata(_posting_peer(metadata, saml_sp_keys).metadata())
    assert (md.slo_url, md.slo_response_url, md.slo_binding) == (SP_SLO, "", c.BINDING_POST)


def _sp_metadata(*services: tuple[str, str, str]) -> bytes:
    slo = "".join(f'<md:SingleLogoutService Binding="{b}" Location="{loc}"'
                  + (f' ResponseLocation="{answer}"' if answer else "") + "/>"
                  for b, loc, answer in services)
    return (f'<md:EntityDescriptor xmlns:md="{c.MD}" entityID="{SP_ENTITY_ID}">'
            f'<md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}">{slo}'
            f'<md:AssertionConsumerService Binding="{c.BINDING_POST}" '
            f'Location="https://sp.test/acs" index="0"/></md:SPSSODescriptor>'
            f'</md:EntityDescriptor>').encode()


def test_metadata_prefers_redirect_and_keeps_a_post_response_location():
    from portal.sso.saml.metadata import read_sp_metadata
    soap = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP"
    both = read_sp_metadata(_sp_metadata((soap, "https://sp.test/soap", ""),
                                         (c.BINDING_POST, "https://sp.test/post", "https://sp.test/post-back"),
                                         (c.BINDING_REDIRECT, "https://sp.test/get", "")))
    assert (both.slo_url, both.slo_response_url, both.slo_binding) == (
        "https://sp.test/get", "", c.BINDING_REDIRECT)
    posted = read_sp_metadata(_sp_metadata((soap, "https://sp.test/soap", ""),
                                           (c.BINDING_POST, "https://sp.test/post", "https://sp.test/post-back")))
    assert (posted.slo_url, posted.slo_response_url, posted.slo_binding) == (
        "https://sp.test/post", "https://sp.test/post-back", c.BINDING_POST)
    assert read_sp_metadata(_sp_metadata((soap, "https://sp.test/soap", ""))).slo_url == ""


def test_add_saml_takes_the_logout_binding(runner, app, tmp_path):
    from portal.db import db
    from portal.models import App
    result = runner.invoke(args=["apps", "add-saml", "Reading", "--entity-id", SP_ENTITY_ID,
                                 "--acs-url", "https://sp.test/acs", "--slo-url", SP_SLO,
                                 "--slo-binding", "post"])
    assert result.exit_code == 0, result.output
    assert f"hears of sign-outs at {SP_SLO} by HTTP-POST" in result.output
    path = tmp_path / "sp.xml"
    path.write_bytes(_sp_metadata((c.BINDING_POST, OTHER_SLO, "")).replace(
        SP_ENTITY_ID.encode(), OTHER_ENTITY_ID.encode()))
    result = runner.invoke(args=["apps", "add-saml", "Math", "--metadata", str(path)])
    assert result.exit_code == 0, result.output
    assert f"hears of sign-outs at {OTHER_SLO} by HTTP-POST" in result.output
    with app.app_context():
        reading = db.session.query(App).filter_by(name="Reading").one()
        math = db.session.query(App).filter_by(name="Math").one()
        assert reading.settings["slo_binding"] == math.settings["slo_binding"] == c.BINDING_POST
    # `portal apps logout-uri` keeps the binding the app's address had (found by review: it
    # switched a POST-only app to HTTP-Redirect, which it does not take, and said nothing),
    # and changes it when asked.
    def binding_of(name):
        with app.app_context():
            return db.session.query(App).filter_by(name=name).one().settings["slo_binding"]
    moved = runner.invoke(args=["apps", "logout-uri", "math", OTHER_SLO + "/new"])
    assert moved.exit_code == 0 and f"hears at {OTHER_SLO}/new by HTTP-POST" in moved.output
    assert binding_of("Math") == c.BINDING_POST
    changed = runner.invoke(args=["apps", "logout-uri", "math", OTHER_SLO, "--slo-binding", "redirect"])
    assert changed.exit_code == 0 and "by HTTP-Redirect" in changed.output
    assert binding_of("Math") == c.BINDING_REDIRECT
    for args, words in ((["math", "--slo-binding", "post"], "give the address too"),
                        (["math", OTHER_SLO, "--slo-binding", "soap"], "is not one of")):
        refused = runner.invoke(args=["apps", "logout-uri", *args])
        assert refused.exit_code != 0 and words in refused.output, refused.output
    assert binding_of("Math") == c.BINDING_REDIRECT


@pytest.mark.parametrize("args, words", [
    (["--slo-binding", "post"], "give --slo-url too"),
    (["--slo-url", SP_SLO, "--slo-binding", "soap"], "is not one of 'redirect', 'post'"),
    (["--metadata", "ftp"], "logout URL"),
])
def test_bad_post_logout_settings_are_refused_plainly(runner, app, tmp_path, args, words):
    if args == ["--metadata", "ftp"]:   # a POST logout address that is not http(s)
        path = tmp_path / "sp.xml"
        path.write_bytes(_sp_metadata((c.BINDING_POST, "ftp://sp.test/slo", "")))
        args = ["--metadata", str(path)]
    else:
        args = ["--entity-id", SP_ENTITY_ID, "--acs-url", "https://sp.test/acs"] + args
    result = runner.invoke(args=["apps", "add-saml", "Reading"] + args)
    assert result.exit_code != 0 and words in result.output, result.output
    assert "Traceback" not in result.output


# --- the portal's sign-out --------------------------------------------------------------------------

def test_a_post_only_app_hears_of_the_students_sign_out(app, client, auth, post_world):
    posting = post_world["post"]
    peer = post_world["peers"][posting.slug]
    auth.login()
    got = _launch(client, posting, peer)
    page = auth.logout()
    assert page.status_code == 303 and not _signed_in(client)
    form = _form_to_the_app(client.get(_path(page.headers["Location"])))
    asked, answer = peer.receive_logout_post(form)
    assert asked["name_id"] == got.get_nameid()
    assert asked["session_indexes"] == [got.get_session_index()]
    back = _post_from_the_apps_site(app, client, answer)   # the app answers by POST too
    assert back.status_code == 303 and back.headers["Location"].endswith("/saml/slo/next")
    done = client.get(_path(back.headers["Location"]))
    assert done.status_code == 303 and urlsplit(done.headers["Location"]).path == "/login"


def test_a_round_over_redirect_and_post_apps_reaches_each_in_turn(app, client, auth, post_world):
    posting, redirecting = post_world["post"], post_world["redirect"]
    peers = post_world["peers"]
    auth.login()
    got = {a.slug: _launch(client, a, peers[a.slug]) for a in (redirecting, posting)}
    location = auth.logout().headers["Location"]
    # First the app launched first, by HTTP-Redirect ...
    hop = client.get(_path(location))
    assert hop.status_code == 302 and hop.headers["Location"].startswith(OTHER_SLO + "?SAMLRequest=")
    result, answer = peers[redirecting.slug].receive_logout(hop.headers["Location"])
    assert result.get_errors() == [], result.get_last_error_reason()
    back = client.get(_path(answer))
    # ... then the other, by HTTP-POST.
    form = _form_to_the_app(client.get(_path(back.headers["Location"])))
    asked, answer = peers[posting.slug].receive_logout_post(form)
    assert asked["name_id"] == got[posting.slug].get_nameid()
    back = _post_from_the_apps_site(app, client, answer)
    done = client.get(_path(back.headers["Location"]))
    assert done.status_code == 303 and urlsplit(done.headers["Location"]).path == "/login"


# --- the app's own sign-out ---------------------------------------------------------------------------

def test_a_post_only_apps_own_sign_out_signs_the_student_out(app, client, auth, post_world):
    """Its LogoutRequest comes by POST; the other (Redirect) app hears; the answer goes back to
    it by POST, signed, with its RelayState and no partial logout."""
    from portal.sso.saml.keys import generate_keys
    posting, redirecting = post_world["post"], post_world["redirect"]
    peers = post_world["peers"]
    auth.login()
    got = {a.slug: _launch(client, a, peers[a.slug]) for a in (posting, redirecting)}
    # A forged one (another key) changes nothing ...
    forger = _posting_peer(post_world["metadata"], generate_keys("forger"))
    fields, _ = forger.logout_post(got[posting.slug].get_nameid(), got[posting.slug].get_session_index())
    assert _post_from_the_apps_site(app, client, fields).status_code == 400
    assert _signed_in(client)
    # ... the genuine one signs her out.
    fields, request_id = peers[posting.slug].logout_post(got[posting.slug].get_nameid(),
                                                         got[posting.slug].get_session_index())
    page = _post_from_the_apps_site(app, client, fields)
    assert page.status_code == 303 and not _signed_in(client)
    hop = client.get(_path(page.headers["Location"]))
    result, answer = peers[redirecting.slug].receive_logout(hop.headers["Location"])
    assert result.get_errors() == [], result.get_last_error_reason()
    form = _form_to_the_app(client.get(_path(client.get(_path(answer)).headers["Location"])))
    assert form.fields["RelayState"] == SP_TARGET
    assert _codes(form.fields, "SAMLResponse") == [c.STATUS_SUCCESS]
    status, _ = peers[posting.slug].receive_logout_post(form, request_id)
    assert status == {"status": c.STATUS_SUCCESS}


def test_a_posted_sign_out_with_a_bad_signature_changes_nothing(app, client, auth, post_world):
    posting = post_world["post"]
    peer = post_world["peers"][posting.slug]
    auth.login()
    got = _launch(client, posting, peer)
    fields, _ = peer.logout_post(got.get_nameid(), got.get_session_index())
    xml = base64.b64decode(fields["SAMLRequest"])
    changed = xml.replace(got.get_session_index().encode(), b"_another-session")
    assert changed != xml
    page = _post_from_the_apps_site(app, client, dict(fields, SAMLRequest=base64.b64encode(changed).decode()))
    assert page.status_code == 400 and b"Traceback" not in page.data
    assert _signed_in(client)
    # The genuine one still works (it was not used up).
    answer = _post_from_the_apps_site(app, client, fields)
    assert answer.status_code == 200 and not _signed_in(client)
    assert _codes(_form_to_the_app(answer).fields, "SAMLResponse") == [c.STATUS_SUCCESS]
