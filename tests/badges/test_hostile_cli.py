"""Every administrator command, given hostile arguments (another script's digits, a number past
the database's, a name too long for the file system, path and quote characters): a refusal in
one line, never a traceback."""
from __future__ import annotations

from tests.badges.test_hostile_routes import HOSTILE


def commands(value: str) -> list[list[str]]:
    return [
        ["kiosk", "pair", value], ["kiosk", "list", value], ["kiosk", "revoke", value],
        ["badges", "policy", value], ["badges", "policy", "maple", "--grades", value],
        ["badges", "policy", "maple", "--factor", value],
        ["badges", "sheet", value, "--out", "/dev/null"], ["badges", "void", "--section", value],
        ["badges", "void", "--student", value], ["badges", "unlock", value],
        ["apps", "grant", value, "--school", value], ["apps", "grant", value, "--grade", value],
        ["apps", "release", value, value], ["apps", "add-link", value, value],
        ["apps", "add-oidc", value, "--redirect-uri", value, "--login-uri", value],
        ["apps", "add-saml", value, "--entity-id", value, "--acs-url", value],
        ["users", "set-password", value], ["roster", "import", value],
    ]


def test_no_command_answers_a_hostile_argument_with_a_traceback(runner, world):
    failures, tried = [], 0
    for value in [v for v in HOSTILE if "\x00" not in v] + ["..", "\u00e9" * 200]:
        for args in commands(value):
            result = runner.invoke(args=args, input="a long enough password\n")
            tried += 1
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                failures.append(f"portal {' '.join(a[:20] for a in args)}: "
                                f"{type(result.exception).__name__}: {result.exception}")
    assert tried > 200
    assert failures == []
