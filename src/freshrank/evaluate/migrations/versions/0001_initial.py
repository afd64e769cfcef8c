"""Judgments, their audit trail and evaluation runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _prefix() -> str:
    return str(context.config.attributes.get("table_prefix", ""))


def _key(length: int) -> sa.types.TypeEngine[str]:
    # Binary collation on MySQL/MariaDB: '#Christmas' and '#christmas ' are different trends there too.
    return sa.String(length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def _time() -> sa.types.TypeEngine[datetime]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    p = _prefix()
    op.create_table(
        f"{p}judgments",
        sa.Column("trend", _key(255), primary_key=True),
        sa.Column("genre", _key(100), primary_key=True),
        sa.Column("doc_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("grade", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
    )
    op.create_table(
        f"{p}judgment_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("trend", _key(255), nullable=False),
        sa.Column("genre", _key(100), nullable=False),
        sa.Column("doc_id", sa.BigInteger, nullable=False),
        sa.Column("old_grade", sa.Integer, nullable=True),
        sa.Column("new_grade", sa.Integer, nullable=True),
        sa.Column("who", sa.String(100), nullable=False),
        sa.Column("at", _time(), nullable=False),
        sa.Column("source", sa.String(500), nullable=False, server_default=""),
    )
    op.create_index(f"{p}ix_changes_key", f"{p}judgment_changes", ["trend", "genre", "doc_id"])
    op.create_table(
        f"{p}evaluation_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("classifier", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("catalog_size", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("trends", sa.JSON, nullable=False),
        sa.Column("mean", sa.JSON, nullable=False),
        sa.Column("baseline_mean", sa.JSON, nullable=False),
        sa.Column("per_query", sa.JSON, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index(f"{p}ix_runs_kind", f"{p}evaluation_runs", ["kind", "id"])


def downgrade() -> None:
    p = _prefix()
    op.drop_table(f"{p}evaluation_runs")
    op.drop_table(f"{p}judgment_changes")
    op.drop_table(f"{p}judgments")
