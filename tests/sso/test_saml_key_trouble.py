"""A broken SAML key file: launches and metadata answer "unavailable" in plain words, and the log
names the file and the reason (never its contents)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from portal.db import db
from portal.sso.saml.keys import generate_keys
from tests.sso.conftest import register_and_grant


@pytest.fixture
def settings(base_settings, tmp_path):
    """The district's key file was saved over by mistake; its certificate is still there."""
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    key_file.write_text("saved over by mistake\n")
    cert_file.write_bytes(generate_keys().cert_pem)
    return replace(base_settings, saml_key_file=str(key_file), saml_cert_file=str(cert_file))


def test_a_broken_key_file_reads_as_unavailable_and_is_named_in_the_log(client, auth, roster, caplog):
    school = roster.school("sch-maple")
    roster.person("ada.lovelace", schools=[school], sections=[roster.section(school, "sec-4")])
    slug = register_and_grant(db.session, school=school).slug
    assert auth.login().status_code == 302
    with caplog.at_level("ERROR"):
        for path in (f"/launch/{slug}", "/saml/metadata"):
            answer = client.get(path)
            words = answer.get_data(as_text=True)
            assert answer.status_code == 503 and "not working right now" in words
            assert "SAMLResponse" not in words and "Traceback" not in words
    # Said once, with the file and the reason; not again at every request that meets it.
    said = [r.getMessage() for r in caplog.records if "SAML is unavailable" in r.getMessage()]
    assert len(said) == 1 and "k.pem" in said[0]
    assert "saved over" not in caplog.text
