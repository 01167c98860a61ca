"""AssertionConsumerServiceIndex names the ACS by the index the app's metadata gave it, not by a
position in our list; with --acs-url registrations the index is the position."""
from __future__ import annotations

import pytest

from portal.admin.services import AdminError
from portal.db import db
from portal.sso.saml import constants as c
from portal.sso.saml.metadata import BadMetadata, read_sp_metadata
from portal.sso.saml.registry import build_sp
from portal.sso.saml.sp import ServiceProvider
from tests.sso.conftest import register_and_grant, saml_response_of
from tests.sso.test_saml_http import assert_plain_refusal, request_xml
from tests.sso.test_saml_requests import redirect_query

SP = "https://idx.test/sp"
ZERO, ONE, TWO = "https://idx.test/acs-zero", "https://idx.test/acs-one", "https://idx.test/acs-two"


def sp_metadata(*services: str) -> bytes:
    return (f'<md:EntityDescriptor xmlns:md="{c.MD}" entityID="{SP}">'
            f'<md:SPSSODescriptor protocolSupportEnumeration="{c.SAMLP}">{"".join(services)}'
            f'</md:SPSSODescriptor></md:EntityDescriptor>').encode()


def acs(location: str, index, binding=c.BINDING_POST, default=None) -> str:
    index_attr = f' index="{index}"' if index is not None else ""
    default_attr = f' isDefault="{default}"' if default is not None else ""
    return (f'<md:AssertionConsumerService Binding="{binding}" Location="{location}"'
            f'{index_attr}{default_attr}/>')


ARTIFACT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
INDEXED = sp_metadata(acs(ZERO, 0), acs(ONE, 1, default="true"),
                      acs("https://idx.test/artifact", 2, binding=ARTIFACT), acs(TWO, 5))


def by_index(index) -> str:
    return request_xml(issuer=SP, acs=None, attrs=f' AssertionConsumerServiceIndex="{index}"')


def test_metadata_keeps_the_apps_own_indexes():
    md = read_sp_metadata(INDEXED)
    assert md.acs_urls == (ONE, ZERO, TWO)  # the default first
    assert md.acs_index == {0: ZERO, 1: ONE, 5: TWO}  # the Artifact endpoint is not ours to use


def test_default_acs_follows_the_metadata_spec():
    assert read_sp_metadata(sp_metadata(acs(ZERO, 3, default="false"), acs(ONE, 1))).acs_urls[0] == ONE
    assert read_sp_metadata(sp_metadata(acs(ZERO, 3, default="false"), acs(ONE, 1, default="false"))
                            ).acs_urls[0] == ZERO


@pytest.mark.parametrize("services", [
    (acs(ZERO, None),), (acs(ZERO, "one"),), (acs(ZERO, 1), acs(ONE, 1)), (acs(ZERO, 70000),),
], ids=["missing", "not-a-number", "repeated", "out-of-range"])
def test_metadata_with_unusable_indexes_is_refused(services):
    with pytest.raises(BadMetadata, match="index"):
        read_sp_metadata(sp_metadata(*services))


def test_request_for_an_index_is_answered_at_that_index(client, auth, roster):
    school = roster.school()
    roster.person("ada.lovelace", schools=[school])
    register_and_grant(db.session, school=school, entity_id=None, acs_urls=[], metadata=INDEXED)
    auth.login()
    for index, expected in ((0, ZERO), (1, ONE), (5, TWO)):
        form = saml_response_of(client.get("/saml/sso?" + redirect_query(by_index(index).replace(
            'ID="_req-1"', f'ID="_req-{index}"'))))
        assert form.action == expected, index
    no_index = request_xml(issuer=SP, acs=None, request_id="_no-index")
    assert saml_response_of(client.get("/saml/sso?" + redirect_query(no_index))).action == ONE
    for index in (2, 3, 65535):  # the Artifact endpoint's, and ones the app never numbered
        assert_plain_refusal(client.get("/saml/sso?" + redirect_query(by_index(index))))


def test_with_acs_url_registrations_the_index_is_the_position(client, auth, roster):
    school = roster.school()
    roster.person("ada.lovelace", schools=[school])
    app = register_and_grant(db.session, school=school, entity_id=SP, acs_urls=[ZERO, ONE])
    assert app.settings["acs_index"] == {"0": ZERO, "1": ONE}
    auth.login()
    assert saml_response_of(client.get("/saml/sso?" + redirect_query(by_index(1)))).action == ONE
    assert_plain_refusal(client.get("/saml/sso?" + redirect_query(by_index(2).replace("_req-1", "_req-2"))))


def test_acs_url_arguments_replace_the_metadatas_indexes(roster):
    app = register_and_grant(db.session, entity_id=None, acs_urls=[TWO], metadata=INDEXED)
    assert app.settings["acs_urls"] == [TWO] and app.settings["acs_index"] == {"0": TWO}
    with pytest.raises(AdminError, match="not one of"):
        build_sp(SP, [ZERO], acs_index={0: ONE})


def test_apps_registered_before_indexes_were_kept_use_positions(app):
    from portal.models import App
    legacy = ServiceProvider.from_app(App(client_id=SP, settings={"acs_urls": [ZERO, ONE]}))
    assert legacy.acs_for_index(1) == ONE and legacy.acs_for_index(2) is None
