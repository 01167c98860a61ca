"""A demo learning app that signs students in through the portal (SAML and OpenID Connect).

`portal dev` (and so `make run`) registers it and runs it on http://127.0.0.1:5001; see app.py.
"""
