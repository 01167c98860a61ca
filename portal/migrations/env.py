"""Alembic environment: runs on the connection the portal hands it, or on a URL."""
from alembic import context
from sqlalchemy import create_engine

import portal.models  # noqa: F401  (fills the metadata)
from portal.db import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), hide_parameters=True)
    with engine.begin() as conn:
        _run(conn)


def _run(connection) -> None:
    applied = config.attributes.get("applied")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
        compare_type=True,
        # portal.migrate names the migration that failed: the one after the last applied.
        on_version_apply=() if applied is None else (
            lambda step, **_: applied.append(step.up_revision_id),),
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
