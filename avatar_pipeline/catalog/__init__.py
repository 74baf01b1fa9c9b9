"""The catalog: SQLAlchemy models of the spec's tables, Alembic migrations, repository functions.

Entry points: ``db`` (engines, sessions), ``migrate`` (upgrade/downgrade), ``models``,
``repository`` (plain functions taking a Session), ``legacy`` (the avatar_url data migration),
``errors``.
"""

from avatar_pipeline.catalog.db import (
    make_engine,
    make_session_factory,
    normalize_url,
    session_scope,
)
from avatar_pipeline.catalog.errors import (
    CatalogError,
    ConflictError,
    ConstraintViolationError,
    InvalidReferenceError,
    InvalidTransitionError,
    NotFoundError,
)
from avatar_pipeline.catalog.migrate import current_revision, downgrade_database, upgrade_database

__all__ = [
    "CatalogError",
    "ConflictError",
    "ConstraintViolationError",
    "InvalidReferenceError",
    "InvalidTransitionError",
    "NotFoundError",
    "current_revision",
    "downgrade_database",
    "make_engine",
    "make_session_factory",
    "normalize_url",
    "session_scope",
    "upgrade_database",
]
