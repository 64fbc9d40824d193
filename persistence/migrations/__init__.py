"""Alembic migrations of the store's schema; `persistence.schema` runs them."""
