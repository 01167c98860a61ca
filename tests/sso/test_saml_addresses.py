"""The IdP's addresses come from configuration, never from the client's Host or X-Forwarded-Host:
otherwise anyone could make the metadata, and the Issuer of signed Responses, name an address of
their choosing."""
from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from lxml import etree

from portal.sso.saml import constants as c
from tests.sso.conftest import SP_ACS, saml_response_of

PUBLIC = "https://portal.district.example"
# The portal trusts one proxy: a client-sent X-Forwarded-Host reaches ProxyFix as the proxy's.
SPOOFED = [{}, {"Host": "evil.example"}, {"X-Forwarded-Host": "evil.example"},
           {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}]


@pytest.fixture
def settings(base_settings):
    return replace(base_settings, oidc_issuer=PUBLIC, trusted_proxies=1)


def _addresses(page) -> dict:
    root = etree.fromstring(page.data)
    return {"entity": root.get("entityID"),
            "sso": {e.get("Location") for e in root.iter(f"{{{c.MD}}}SingleSignOnService")},
            "slo": {e.get("Location") for e in root.iter(f"{{{c.MD}}}SingleLogoutService")}}


@pytest.mark.parametrize("headers", SPOOFED)
def test_metadata_names_the_configured_address_whatever_the_host(client, headers):
    page = client.get("/saml/metadata", headers=headers)
    assert page.status_code == 200
    assert _addresses(page) == {"entity": f"{PUBLIC}/saml/metadata", "sso": {f"{PUBLIC}/saml/sso"},
                                "slo": {f"{PUBLIC}/saml/slo"}}
    assert page.headers["Cache-Control"] == "public, max-age=300"


def test_an_entity_id_setting_still_wins(app, client):
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], saml_entity_id="urn:district:portal")
    assert _addresses(client.get("/saml/metadata", headers={"Host": "evil.example"}))["entity"] == \
        "urn:district:portal"


@pytest.mark.parametrize("headers", SPOOFED)
def test_a_signed_response_names_the_configured_issuer(client, auth, saml_world, headers):
    auth.login()
    form = saml_response_of(client.get(f"/launch/{saml_world.app.slug}", headers=headers))
    root = etree.fromstring(base64.b64decode(form.fields["SAMLResponse"]))
    issuers = [e.text for e in root.iter(f"{{{c.SAML}}}Issuer")]
    assert issuers == [f"{PUBLIC}/saml/metadata"] * 2       # the Response's and the Assertion's
    assert root.get("Destination") == SP_ACS
    # The app, configured from the metadata, accepts it.
    result = saml_world.peer.consume(form.fields["SAMLResponse"])
    assert result.is_authenticated(), result.get_last_error_reason()


@pytest.mark.parametrize("headers", SPOOFED)
def test_a_request_to_the_configured_address_is_accepted_however_it_arrived(
        client, auth, saml_world, headers):
    # The app addresses its request to the SSO URL of the metadata; the portal checks the
    # Destination against that, not against the Host this request came with.
    auth.login()
    url, request_id = saml_world.peer.redirect_login()
    form = saml_response_of(client.get(url, headers=headers))
    assert saml_world.peer.consume(form.fields["SAMLResponse"], request_id).is_authenticated()
