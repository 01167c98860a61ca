"""The provider's settings: production needs a fixed issuer and a shared key folder."""
from __future__ import annotations

import pytest

from portal.config import ConfigError, load_settings


@pytest.fixture
def production(monkeypatch, tmp_path):
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    for name in ("SECRET_KEY", "PAIRWISE_KEY"):
        monkeypatch.setenv(f"PORTAL_{name}", "x" * 40)
    monkeypatch.setenv("PORTAL_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"sqlite:///{tmp_path / 'portal.sqlite3'}")
    monkeypatch.setenv("PORTAL_SAML_KEY_FILE", str(tmp_path / "k.pem"))
    monkeypatch.setenv("PORTAL_SAML_CERT_FILE", str(tmp_path / "c.pem"))
    monkeypatch.setenv("PORTAL_OIDC_KEYS_DIR", str(tmp_path / "oidc"))
    monkeypatch.setenv("PORTAL_OIDC_ISSUER", "https://portal.example.org/")
    return monkeypatch


def test_production_reads_the_oidc_settings(production, tmp_path):
    settings = load_settings()
    assert settings.oidc_issuer == "https://portal.example.org"
    assert settings.oidc_keys_dir == str(tmp_path / "oidc")
    assert (settings.oidc_code_seconds, settings.oidc_token_seconds) == (60, 600)


@pytest.mark.parametrize("name, value, words", [
    ("OIDC_KEYS_DIR", None, "not set .*\\n  PORTAL_OIDC_KEYS_DIR: "),
    ("OIDC_ISSUER", None, "not set .*\\n  PORTAL_OIDC_ISSUER: "),
    ("OIDC_ISSUER", "http://portal.example.org", "https://"),
    ("OIDC_ISSUER", "https://portal.example.org/?x=1", "https://"),
    ("OIDC_CODE_SECONDS", "600", "between 1 and 60"),
    ("OIDC_TOKEN_SECONDS", "0", "between 60 and 3600"),
])
def test_bad_oidc_settings_stop_start_up(production, name, value, words):
    if value is None:
        production.delenv(f"PORTAL_{name}")
    else:
        production.setenv(f"PORTAL_{name}", value)
    with pytest.raises(ConfigError, match=words.replace("?", r"\?")):
        load_settings()


@pytest.mark.parametrize("value, words", [
    ("https://www.district.example/portal", "has a path ./portal.: serve the portal on a host name of its own"),
    ("https://www.district.example/portal/", "has a path ./portal.: serve the portal on a host name of its own"),
    ("http://localhost:5000", "names this machine .localhost.: apps and browsers elsewhere cannot reach it"),
    ("https://127.0.0.1", "names this machine .127.0.0.1."),
    ("https://[::1]:8443", "names this machine .::1."),
    ("https://[portal", "must be the portal.s https:// address"),
])
def test_an_issuer_the_endpoints_would_not_match_stops_start_up(production, value, words):
    # Found by the deployment walkthrough: an issuer with a path gave tokens its path while the
    # endpoints and the SAML entity ID were made from the host alone; and production took
    # http://localhost, an address no app or browser elsewhere reaches.
    production.setenv("PORTAL_OIDC_ISSUER", value)
    with pytest.raises(ConfigError, match=f"PORTAL_OIDC_ISSUER {words}"):
        load_settings()


def test_development_may_name_this_machine_but_no_path(production):
    production.setenv("PORTAL_ENV", "development")
    production.setenv("PORTAL_OIDC_ISSUER", "http://127.0.0.1:5000/")
    assert load_settings().oidc_issuer == "http://127.0.0.1:5000"
    production.setenv("PORTAL_OIDC_ISSUER", "http://127.0.0.1:5000/portal")
    with pytest.raises(ConfigError, match="has a path"):
        load_settings()


def test_configured_issuer_names_every_endpoint(settings):
    from dataclasses import replace

    from portal import create_app
    app = create_app({"SETTINGS": replace(settings, oidc_issuer="https://portal.example.org")})
    doc = app.test_client().get("/.well-known/openid-configuration").json
    assert doc["issuer"] == "https://portal.example.org"
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "end_session_endpoint"):
        assert doc[name].startswith("https://portal.example.org/oidc/"), doc[name]
