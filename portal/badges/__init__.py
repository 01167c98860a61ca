"""Badges: tokens, QR sheets and badge sign-in."""
