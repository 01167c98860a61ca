"""Names from the SAML 2.0 and XML-DSig specifications, and our limits."""
from __future__ import annotations

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
NSMAP = {"samlp": SAMLP, "saml": SAML, "md": MD, "ds": DS}

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
STATUS_NO_AUTHN_CONTEXT = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
STATUS_PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
STATUS_REQUEST_DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
STATUS_INVALID_NAMEID_POLICY = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"

CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_ENCRYPTED = "urn:oasis:names:tc:SAML:2.0:nameid-format:encrypted"

ATTRNAME_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
ATTRNAME_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"

# AuthnContextClassRef: how the student signed in (authn_context.py maps session["auth_method"]).
# A password over HTTPS is PasswordProtectedTransport. A QR badge is a printed card that can be
# photocopied, so no standard class fits it honestly (Smartcard would claim a PKI card the student
# does not have): badges have classes of this portal's own, under a URN the README documents.
AC_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
AC_PASSWORD_PLAIN = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"  # no word on the transport
AC_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
AC_PORTAL = "urn:student-portal:ac:classes:"
AC_BADGE = AC_PORTAL + "badge"
AC_BADGE_PICTURE = AC_PORTAL + "badge-picture"  # a badge, then three pictures picked in order
AC_BADGE_PIN = AC_PORTAL + "badge-pin"  # a badge, then a PIN of 4 to 6 digits

# XML-DSig algorithms we sign with, and those we accept on requests.
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED_SIGNATURE = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
REDIRECT_SIG_ALGS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": "sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": "sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": "sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": "sha512",
}
# What a request may be signed with, for our metadata (SAML V2.0 Metadata Extension for Algorithm
# Support): the digests signxml is allowed for an HTTP-POST signature (requests.py).
ALG = "urn:oasis:names:tc:SAML:metadata:algsupport"
REQUEST_DIGESTS = (
    DIGEST_SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
)
SHA1_SIG_ALGS = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#dsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
}
SHA1_DIGESTS = frozenset({"http://www.w3.org/2000/09/xmldsig#sha1"})

# Limits. Clocks may differ by up to a minute; what we issue is short-lived.
CLOCK_SKEW_SECONDS = 60
ASSERTION_LIFETIME_SECONDS = 300
REPLAY_TTL_SECONDS = 2 * CLOCK_SKEW_SECONDS + 60
PENDING_TTL_SECONDS = 600
MAX_MESSAGE_BYTES = 64 * 1024  # an AuthnRequest is a few kilobytes; a bigger one is not a request
MAX_RELAY_STATE = 2048  # the spec says 80 bytes; many apps send more, none sends this much
MAX_ID_LENGTH = 256
