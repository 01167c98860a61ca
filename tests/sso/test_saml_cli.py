"""`portal apps add-saml`: registration by arguments or metadata; bad input is one line, non-zero."""
from __future__ import annotations

import os

from sqlalchemy import select

from portal.models import App, AppKind
from portal.sso.saml import constants as c
from tests.sso.conftest import SP_ACS, SP_ENTITY_ID, PeerSP


def add_saml(runner, *args):
    return runner.invoke(args=["apps", "add-saml", *args])


def stored(app, name) -> App:
    from portal.db import db
    with app.app_context():
        return db.session.scalar(select(App).where(App.name == name))


def bad_files(folder):
    """Metadata with an external entity, an IdP's metadata, a certificate that is not one, a pipe."""
    dtd = folder / "dtd.xml"
    dtd.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    idp_like = folder / "idp.xml"
    idp_like.write_text('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">'
                        '<md:IDPSSODescriptor protocolSupportEnumeration="x"/></md:EntityDescriptor>')
    not_a_cert = folder / "cert.pem"
    not_a_cert.write_text("hello")
    pipe = folder / "metadata.xml"
    os.mkfifo(pipe)
    return dtd, idp_like, not_a_cert, pipe


def test_add_saml_with_arguments(runner, app, tmp_path, saml_sp_keys):
    cert = tmp_path / "sp.pem"
    cert.write_bytes(saml_sp_keys.cert_pem)
    result = add_saml(runner, "Reading Garden", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS,
                      "--acs-url", SP_ACS + "-2", "--nameid", "username",
                      "--attribute", "given_name=urn:oid:2.5.4.42", "--relay-state", "https://sp.test/home",
                      "--require-signed-requests", "--sp-cert", str(cert))
    assert result.exit_code == 0, result.output
    assert "added Reading Garden (reading-garden)" in result.output
    registered = stored(app, "Reading Garden")
    assert registered.kind is AppKind.saml and registered.client_id == SP_ENTITY_ID
    assert registered.settings == {
        "acs_urls": [SP_ACS, SP_ACS + "-2"], "acs_index": {"0": SP_ACS, "1": SP_ACS + "-2"},
        "nameid": "username",
        "attributes": {"given_name": "urn:oid:2.5.4.42"}, "relay_state": "https://sp.test/home",
        "require_signed_requests": True, "sp_cert": saml_sp_keys.cert_pem.decode(),
        "slo_url": "", "slo_response_url": "", "slo_binding": c.BINDING_REDIRECT,
        "ignore_requested_context": False,
    }
    # The NameID source is released with it; otherwise the least-data default.
    assert registered.released_fields == ["given_name", "family_name_initial", "username"]


def test_add_saml_from_metadata(runner, app, client, tmp_path, saml_sp_keys):
    idp_metadata = client.get("/saml/metadata").get_data(as_text=True)
    peer = PeerSP(idp_metadata, saml_sp_keys, sign_requests=True)
    metadata = tmp_path / "sp.xml"
    metadata.write_bytes(peer.metadata())
    result = add_saml(runner, "Math Meadow", "--metadata", str(metadata))
    assert result.exit_code == 0, result.output
    registered = stored(app, "Math Meadow")
    assert registered.client_id == SP_ENTITY_ID
    assert registered.settings["acs_urls"] == [SP_ACS]
    assert registered.settings["require_signed_requests"] is True  # AuthnRequestsSigned="true"
    assert "".join(registered.settings["sp_cert"].split()) == "".join(saml_sp_keys.cert_pem.decode().split())
    assert registered.settings["nameid"] == "subject"


def test_bad_input_exits_non_zero_with_one_line(runner, app, tmp_path):
    dtd, idp_like, not_a_cert, pipe = bad_files(tmp_path)
    huge = tmp_path / "federation.xml"
    with open(huge, "wb") as f:
        f.truncate(3 * 1024 * 1024)     # sparse: no disk used
    base = ["--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS]
    cases = {
        "no ACS": ["X", "--entity-id", SP_ENTITY_ID],
        "no entity": ["X", "--acs-url", SP_ACS],
        "bad ACS": ["X", "--entity-id", SP_ENTITY_ID, "--acs-url", "javascript:alert(1)"],
        "bad relay": ["X", *base, "--relay-state", "ftp://x"],
        "unknown field": ["X", *base, "--attribute", "shoe_size=size"],
        "bad mapping": ["X", *base, "--attribute", "given_name"],
        "clashing names": ["X", *base, "--attribute", "given_name=family_name"],
        "bad nameid": ["X", *base, "--nameid", "password"],
        "signed without cert": ["X", *base, "--require-signed-requests"],
        "bad cert": ["X", *base, "--sp-cert", str(not_a_cert)],
        "missing file": ["X", "--metadata", str(tmp_path / "nope.xml")],
        "hostile metadata": ["X", "--metadata", str(dtd)],
        "idp metadata": ["X", "--metadata", str(idp_like)],
        "huge metadata": ["X", "--metadata", str(huge)],
        "endless metadata": ["X", "--metadata", "/dev/zero"],
        "endless cert": ["X", *base, "--sp-cert", "/dev/zero"],
        "pipe metadata": ["X", "--metadata", str(pipe)],
        "empty name": ["", *base],
    }
    for label, args in cases.items():
        result = add_saml(runner, *args)
        assert result.exit_code != 0, label
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) <= 3 and "Traceback" not in result.output, (label, result.output)
        assert lines[-1].startswith("Error:"), (label, result.output)
        if label.startswith("huge"):    # refused by size, before reading it all
            assert "is over 1024 KB" in lines[-1], (label, result.output)
        if label.startswith(("endless", "pipe")):   # refused before reading: it would not end
            assert "is not a file (a device or a pipe)" in lines[-1], (label, result.output)


def test_duplicates_refused(runner, app):
    assert add_saml(runner, "One", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS).exit_code == 0
    again = add_saml(runner, "Two", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS)
    assert again.exit_code != 0 and "exists already" in again.output
    same_name = add_saml(runner, "One", "--entity-id", "https://other.test", "--acs-url", SP_ACS)
    assert same_name.exit_code != 0 and "exists already" in same_name.output


def test_metadata_and_arguments_must_agree(runner, app, client, tmp_path, saml_sp_keys):
    peer = PeerSP(client.get("/saml/metadata").get_data(as_text=True), saml_sp_keys)
    metadata = tmp_path / "sp.xml"
    metadata.write_bytes(peer.metadata())
    result = add_saml(runner, "X", "--metadata", str(metadata), "--entity-id", "https://other.test/sp")
    assert result.exit_code != 0 and "does not match" in result.output


def test_registered_app_launches(runner, app, client, auth, roster, saml_sp_keys):
    school = roster.school("sch-1")
    roster.person("ada.lovelace", schools=[school])
    assert add_saml(runner, "Reading Garden", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS).exit_code == 0
    assert runner.invoke(args=["apps", "grant", "Reading Garden", "--school", "sch-1"]).exit_code == 0
    listed = runner.invoke(args=["apps", "list"])
    assert "Reading Garden\tsaml" in listed.output
    auth.login()
    page = client.get("/launch/reading-garden")
    assert page.status_code == 200 and 'name="SAMLResponse"' in page.get_data(as_text=True)


def test_expired_sp_certificate_refused(runner, app, tmp_path):
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "old sp")])
    past = datetime.now(timezone.utc) - timedelta(days=30)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(past - timedelta(days=365)).not_valid_after(past)
            .sign(key, hashes.SHA256()))
    pem = tmp_path / "old.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    result = add_saml(runner, "Old", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS, "--sp-cert", str(pem))
    assert result.exit_code != 0 and "expired on" in result.output


def set_saml(runner, *args):
    return runner.invoke(args=["apps", "set-saml", *args])


def _launch_events(app, kind="app_settings_changed") -> list[dict]:
    from portal.db import db
    from portal.models import Event
    with app.app_context():
        return [e.data for e in db.session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id))]


def test_set_saml_replaces_a_mistyped_acs_url_and_the_relay_state(runner, app, client, auth, roster):
    from tests.sso.conftest import SP_TARGET, saml_response_of
    from tests.sso.test_saml_http import assert_plain_refusal
    roster.person("ada.lovelace", schools=[roster.school("sch-1")])
    assert add_saml(runner, "Reading Garden", "--entity-id", SP_ENTITY_ID,
                    "--acs-url", "https://sp.test/saml/acss").exit_code == 0
    assert runner.invoke(args=["apps", "grant", "Reading Garden", "--school", "sch-1"]).exit_code == 0
    peer = PeerSP(client.get("/saml/metadata").get_data(as_text=True))
    auth.login()
    assert_plain_refusal(client.get(peer.redirect_login()[0]))    # its ACS URL is not the one registered

    result = set_saml(runner, "Reading Garden", "--acs-url", SP_ACS, "--acs-url", SP_ACS + "-2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["changed Reading Garden (reading-garden):",
                                          f"ACS URLs: {SP_ACS}, {SP_ACS}-2"]
    path, request_id = peer.redirect_login()
    form = saml_response_of(client.get(path))
    assert form.action == SP_ACS and peer.consume(form.fields["SAMLResponse"], request_id).is_authenticated()

    result = set_saml(runner, "reading-garden", "--relay-state", SP_TARGET)
    assert result.output.splitlines() == ["changed Reading Garden (reading-garden):", f"relay state: {SP_TARGET}"]
    assert saml_response_of(client.get("/launch/reading-garden")).fields["RelayState"] == SP_TARGET
    again = set_saml(runner, "Reading Garden", "--relay-state", SP_TARGET)
    assert again.exit_code == 0 and again.output == "Reading Garden had these settings already; nothing changed\n"
    assert _launch_events(app) == [
        {"changed": ["acs_urls", "acs_index"], "acs_urls": [SP_ACS, SP_ACS + "-2"]},
        {"changed": ["relay_state"], "relay_state": SP_TARGET}]


def test_set_saml_takes_the_apps_new_certificate(runner, app, client, auth, roster, saml_sp_keys, tmp_path):
    from portal.sso.saml.keys import generate_keys
    from tests.sso.conftest import saml_response_of
    from tests.sso.test_saml_http import assert_plain_refusal
    roster.person("ada.lovelace", schools=[roster.school("sch-1")])
    old_cert, new_cert = tmp_path / "old.pem", tmp_path / "new.pem"
    old_cert.write_bytes(saml_sp_keys.cert_pem)
    renewed = generate_keys("peer SP, renewed")
    new_cert.write_bytes(renewed.cert_pem)
    assert add_saml(runner, "Reading Garden", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS,
                    "--sp-cert", str(old_cert), "--require-signed-requests").exit_code == 0
    assert runner.invoke(args=["apps", "grant", "Reading Garden", "--school", "sch-1"]).exit_code == 0
    idp_metadata = client.get("/saml/metadata").get_data(as_text=True)
    old_peer = PeerSP(idp_metadata, saml_sp_keys, sign_requests=True)
    new_peer = PeerSP(idp_metadata, renewed, sign_requests=True)
    auth.login()
    saml_response_of(client.get(old_peer.redirect_login()[0]))
    assert_plain_refusal(client.get(new_peer.redirect_login()[0]))

    result = set_saml(runner, "Reading Garden", "--sp-cert", str(new_cert))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].startswith("signing certificate: the new one, valid until 20")
    path, request_id = new_peer.redirect_login()
    form = saml_response_of(client.get(path))
    assert new_peer.consume(form.fields["SAMLResponse"], request_id).is_authenticated()
    assert_plain_refusal(client.get(old_peer.redirect_login()[0]))     # the old key no longer signs for it
    assert stored(app, "Reading Garden").settings["require_signed_requests"] is True
    assert _launch_events(app) == [{"changed": ["sp_cert"]}]


def test_set_saml_from_new_metadata(runner, app, client, tmp_path, saml_sp_keys):
    from tests.sso.conftest import SP_SLO
    assert add_saml(runner, "Math Meadow", "--entity-id", SP_ENTITY_ID,
                    "--acs-url", "https://sp.test/old-acs").exit_code == 0
    idp_metadata = client.get("/saml/metadata").get_data(as_text=True)
    metadata = tmp_path / "sp.xml"
    metadata.write_bytes(PeerSP(idp_metadata, saml_sp_keys, sign_requests=True, slo=SP_SLO).metadata())
    result = set_saml(runner, "Math Meadow", "--metadata", str(metadata))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == ["changed Math Meadow (math-meadow):", f"ACS URLs: {SP_ACS}"]
    assert lines[2] == "signed requests: required"
    assert lines[3].startswith("signing certificate: the new one, valid until ")
    assert lines[4:] == [f"hears of sign-outs at {SP_SLO}"]
    settings = stored(app, "Math Meadow").settings
    assert settings["acs_urls"] == [SP_ACS] and settings["slo_url"] == SP_SLO
    assert "".join(settings["sp_cert"].split()) == "".join(saml_sp_keys.cert_pem.decode().split())
    again = set_saml(runner, "Math Meadow", "--metadata", str(metadata))
    assert again.output == "Math Meadow had these settings already; nothing changed\n"

    other = tmp_path / "other.xml"
    other.write_text(PeerSP(idp_metadata, entity_id="https://other.test/sp").metadata())
    refused = set_saml(runner, "Math Meadow", "--metadata", str(other))
    assert refused.exit_code != 0 and len(refused.output.splitlines()) == 1
    assert "the metadata is for entity ID 'https://other.test/sp', not Math Meadow's" in refused.output
    assert stored(app, "Math Meadow").settings == settings


def test_set_saml_bad_input_is_one_line_and_changes_nothing(runner, app, tmp_path):
    dtd, idp_like, not_a_cert, pipe = bad_files(tmp_path)
    assert add_saml(runner, "Reading", "--entity-id", SP_ENTITY_ID, "--acs-url", SP_ACS).exit_code == 0
    assert runner.invoke(args=["apps", "add-link", "Library", "https://library.test/"]).exit_code == 0
    before = dict(stored(app, "Reading").settings)
    cases = {
        "nothing to change": (["Reading"], "say what to change"),
        "unknown app": (["Nope", "--acs-url", SP_ACS], "there is no app called 'Nope'"),
        "a link": (["Library", "--acs-url", SP_ACS], "Library does not sign in with SAML"),
        "bad ACS": (["Reading", "--acs-url", "javascript:alert(1)"], "ACS URL must start with https://"),
        "bad relay": (["Reading", "--relay-state", "ftp://x"], "relay state URL"),
        "bad cert": (["Reading", "--sp-cert", str(not_a_cert)], "not a PEM X.509 certificate"),
        "missing cert": (["Reading", "--sp-cert", str(tmp_path / "nope.pem")], "can't read the certificate file"),
        "missing file": (["Reading", "--metadata", str(tmp_path / "nope.xml")], "can't read the metadata file"),
        "hostile metadata": (["Reading", "--metadata", str(dtd)], "metadata"),
        "idp metadata": (["Reading", "--metadata", str(idp_like)], "SPSSODescriptor"),
        "endless metadata": (["Reading", "--metadata", "/dev/zero"], "is not a file (a device or a pipe)"),
        "pipe metadata": (["Reading", "--metadata", str(pipe)], "is not a file (a device or a pipe)"),
    }
    for label, (args, words) in cases.items():
        result = set_saml(runner, *args)
        assert result.exit_code != 0, label
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:") and words in lines[0], (label, result.output)
    assert stored(app, "Reading").settings == before
    assert _launch_events(app) == []
