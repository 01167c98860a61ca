"""Changing the SAML signing key without a day on which every app must change at once: the next
key's certificate is published beside the one in use (PORTAL_SAML_NEXT_CERT_FILE), apps that read
the metadata then trust both, and once the new key signs they go on accepting the portal's
responses. Checked with python3-saml as the app, configured from the portal's metadata."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from portal.sso.saml.keys import generate_keys
from tests.sso.conftest import PeerSP, saml_response_of


def write_pair(folder, name, keys):
    key_file, cert_file = folder / f"{name}_key.pem", folder / f"{name}_cert.pem"
    key_file.write_bytes(keys.key_pem)
    cert_file.write_bytes(keys.cert_pem)
    return str(key_file), str(cert_file)


@pytest.fixture
def pairs(tmp_path):
    old, new = generate_keys("district 2026"), generate_keys("district 2027")
    return {"old": (old, *write_pair(tmp_path, "old", old)), "new": (new, *write_pair(tmp_path, "new", new))}


@pytest.fixture
def settings(base_settings, pairs):
    _, key_file, cert_file = pairs["old"]
    return replace(base_settings, saml_key_file=key_file, saml_cert_file=cert_file)


def restart(app, **changes):
    """What restarting the workers with other settings does: the keys are read again."""
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], **changes)
    app.extensions.pop("saml_keys", None)


def signing_certs(metadata: str) -> list[str]:
    idp = OneLogin_Saml2_IdPMetadataParser.parse(metadata)["idp"]
    if "x509certMulti" in idp:
        return idp["x509certMulti"]["signing"]
    return [idp["x509cert"]]


def launch(client, peer) -> list[str]:
    """The app's errors on the portal's answer to its sign-in request ([] when it accepts it)."""
    url, request_id = peer.redirect_login()
    result = peer.consume(saml_response_of(client.get(url)).fields["SAMLResponse"], request_id)
    return result.get_errors()


def test_apps_that_read_the_metadata_with_the_next_certificate_accept_the_new_key(
        app, client, auth, saml_world, pairs):
    old, new = pairs["old"][0], pairs["new"][0]
    auth.login()
    before = saml_world.peer                     # read the metadata before the change began
    assert signing_certs(saml_world.idp_metadata) == [old.cert_base64]

    restart(app, saml_next_cert_file=pairs["new"][2])          # step 1: publish the next one
    published = client.get("/saml/metadata").get_data(as_text=True)
    assert signing_certs(published) == [old.cert_base64, new.cert_base64]
    assert not isinstance(OneLogin_Saml2_XML.validate_xml(published.encode(), "saml-schema-metadata-2.0.xsd"), str)
    ready = PeerSP(published, saml_world.peer.keys)            # an app that read it again
    assert launch(client, ready) == [] and launch(client, before) == []   # the old key still signs

    _, new_key, new_cert = pairs["new"]                        # step 2: the new key signs
    restart(app, saml_key_file=new_key, saml_cert_file=new_cert)   # NEXT left set: harmless
    assert signing_certs(client.get("/saml/metadata").get_data(as_text=True)) == [new.cert_base64]
    assert launch(client, ready) == []
    # An app that never read the metadata again refuses the new key, as python3-saml must:
    # what the published next certificate is for.
    assert "invalid_response" in launch(client, before)


def expired_cert(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=400))
            .not_valid_after(now - timedelta(days=35)).sign(key, hashes.SHA256()))
    path = tmp_path / "expired.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, f"ended on {cert.not_valid_after_utc:%Y-%m-%d}"


def weak_cert(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "weak")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    path = tmp_path / "weak.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, "is not for an RSA key of at least 2048 bits"


def unloadable_key_cert(tmp_path):
    """A certificate for an EC key on secp112r1, a curve cryptography cannot load (found by review:
    reading its key raised UnsupportedAlgorithm, uncaught, and every SAML sign-in was a 500). Made
    now by the openssl command, which still knows the curve (cryptography cannot make one)."""
    import shutil
    import subprocess
    key, cert = tmp_path / "secp112r1.key", tmp_path / "secp112r1.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command (Debian package openssl)")
    for command in ([openssl, "ecparam", "-name", "secp112r1", "-genkey", "-noout", "-out", str(key)],
                    [openssl, "req", "-x509", "-new", "-key", str(key), "-subj", "/CN=x", "-days", "30",
                     "-out", str(cert)]):
        made = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if made.returncode:
            pytest.skip(f"this openssl cannot make a secp112r1 certificate: {made.stderr.strip()[:200]}")
    key.unlink()
    return cert


def test_an_unusable_next_certificate_is_logged_and_sign_ins_go_on(app, client, auth, saml_world, pairs,
                                                                  tmp_path, caplog):
    auth.login()
    old = pairs["old"][0]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [(tmp_path / "missing.pem", "can't be read: No such file or directory"),
             (garbage, "is not a PEM certificate"),
             (pairs["new"][1], "is not a PEM certificate"),           # the new KEY file, by mistake
             expired_cert(tmp_path), weak_cert(tmp_path)]
    cases.append((unloadable_key_cert(tmp_path), "is not for an RSA key of at least 2048 bits"))
    for path, reason in cases:
        caplog.clear()
        restart(app, saml_next_cert_file=str(path))
        with caplog.at_level("ERROR"):
            metadata = client.get("/saml/metadata").get_data(as_text=True)
        assert signing_certs(metadata) == [old.cert_base64], path
        assert f"{path} (PORTAL_SAML_NEXT_CERT_FILE) {reason}" in caplog.text, caplog.text
        assert "PRIVATE KEY" not in caplog.text and "not a certificate" not in caplog.text
        assert launch(client, saml_world.peer) == [], path
