"""Alembic environment: run by ``freshrank.evaluate.store`` on an open connection (never from a URL here)."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes["connection"]
prefix = config.attributes.get("table_prefix", "")

context.configure(connection=connection, version_table=f"{prefix}alembic_version", target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
