"""Alembic migrations of the store's schema; `persistence.schema_upgrade` runs them."""
