"""Badges: tokens, QR sheets and badge sign-in."""


def plural(count: int, one: str, many: str) -> str:
    """"1 student", "3 students": how the teacher pages and the commands count."""
    return f"{count} {one if count == 1 else many}"
