"""Alembic environment: run programmatically by ``Store.migrate()`` (no alembic.ini).

``Store.migrate`` passes its open connection in ``config.attributes["connection"]``; the
``alembic`` command line can still be used with ``-x url=...`` for hand-made revisions.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from service.store.database import Base

# Any 64-bit number, the same in every instance: serialises concurrent start-ups on PostgreSQL.
_PG_MIGRATION_LOCK = 0x524F424F43414C4C  # "ROBOCALL"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=sqlite:///path.db ...")
    with create_engine(url).begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
_main()
