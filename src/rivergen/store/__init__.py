"""Metadata store: SQLAlchemy base, engine and sessions, Alembic migrations."""
