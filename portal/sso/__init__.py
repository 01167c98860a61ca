"""Single sign-on: the SAML 2.0 identity provider (portal.sso.saml) and the OpenID Provider (portal.sso.oidc)."""
