"""Run `portal ...` commands in tests: ones that must work, and ones that must refuse."""
from __future__ import annotations


def cli(runner, *args) -> str:
    """Run a command that must succeed; return its output."""
    result = runner.invoke(args=[str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def refused(runner, *args) -> str:
    """Run a command that must fail; return its one-line reason."""
    result = runner.invoke(args=[str(a) for a in args])
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]
