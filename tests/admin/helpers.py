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


def at_the_same_moment(app, model, *calls) -> list:
    """Run each call as a request of its own (a thread, an app context, a database session), all
    of them past their checks before any writes: each waits at its first flush of a new `model`
    row (or of one it deletes) until every call got there, as two admins pressing at the same
    moment. Returns what each call returned, or the exception it raised."""
    import threading

    from sqlalchemy import event
    from sqlalchemy.orm import Session

    everyone, waited = threading.Barrier(len(calls)), threading.local()

    def wait_for_the_others(session, *_):
        if not getattr(waited, "done", False) and any(isinstance(o, model) for o in (*session.new, *session.deleted)):
            waited.done = True
            everyone.wait(timeout=20)

    results = [None] * len(calls)

    def run(i):
        with app.app_context():
            try:
                results[i] = calls[i]()
            except Exception as e:  # noqa: BLE001  (the caller asserts on it)
                results[i] = e

    event.listen(Session, "before_flush", wait_for_the_others)
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        event.remove(Session, "before_flush", wait_for_the_others)
    return results
