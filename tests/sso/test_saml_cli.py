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
    dtd = tmp_path / "dtd.xml"
    dtd.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    idp_like = tmp_path / "idp.xml"
    idp_like.write_text('<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x">'
                        '<md:IDPSSODescriptor protocolSupportEnumeration="x"/></md:EntityDescriptor>')
    not_a_cert = tmp_path / "cert.pem"
    not_a_cert.write_text("hello")
    pipe = tmp_path / "metadata.xml"
    os.mkfifo(pipe)
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
