"""Alembic's environment for the demo service: online migrations only, against
DATABASE_URL (a libpq URL, as the rest of the demo uses)."""
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def database_url() -> str:
    """DATABASE_URL with SQLAlchemy's driver name: postgres:// and postgresql://
    both mean psycopg2, the driver Debian's SQLAlchemy 1.4 uses."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("DATABASE_URL is not set")
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg2"
    return scheme + sep + rest


def run_migrations_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # transaction_per_migration: a failed revision leaves the ones before it applied.
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not set up for the demo")
run_migrations_online()
