"""Shared helpers of the repository modules: id parsing, lookups, guarded flushes that turn
database integrity errors into catalog errors a person can act on."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from avatar_pipeline.catalog.errors import (
    CatalogError,
    ConflictError,
    ConstraintViolationError,
    InvalidReferenceError,
    NotFoundError,
)

T = TypeVar("T")

# SQLite names the columns of a failed UNIQUE rule, not the index; map them back.
_SQLITE_UNIQUE_NAMES = {
    "avatar_kits.character_id": "idx_avatar_kits_default",
    "users.email": "uq_users_email",
}
_PG_CLASSES = {"23505": "unique", "23514": "check", "23503": "foreign_key", "23502": "not_null"}
_SLOT_NAME = re.compile(r"[a-z0-9_-]{1,64}")


def as_uuid(value: uuid.UUID | str, kind: str) -> uuid.UUID:
    """Accept a UUID or its text; anything else is "no such <kind>"."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFoundError(kind, value, "that is not a valid UUID") from None


def require(session: Session, model: type[T], ident: uuid.UUID | str, kind: str) -> T:
    """``session.get`` or NotFoundError naming the kind and the id."""
    row = session.get(model, as_uuid(ident, kind))
    if row is None:
        raise NotFoundError(kind, ident)
    return row


def check_choice(value: str, allowed: tuple[str, ...], *, field: str, constraint: str) -> str:
    """Validate an enum column in Python before the database CHECK sees it."""
    if value not in allowed:
        raise ConstraintViolationError(
            f"{field} {value!r} is not allowed; use one of {', '.join(allowed)}",
            constraint=constraint,
        )
    return value


def check_slot_name(value: str, *, field: str) -> str:
    """Expression/pose names become storage key segments: lower-case letters, digits, _ or -."""
    if not _SLOT_NAME.fullmatch(value):
        raise ConstraintViolationError(
            f"{field} {value!r} must be 1-64 lower-case letters, digits, '_' or '-' "
            "(it becomes part of the storage path)",
            constraint=f"{field}_name",
        )
    return value


def check_text(value: str | None, *, field: str) -> str:
    if value is None or not value.strip():
        raise ConstraintViolationError(f"{field} must not be empty", constraint=f"{field}_required")
    return value.strip()


def classify_integrity_error(exc: IntegrityError) -> tuple[str, str | None]:
    """(kind, constraint name) of an IntegrityError on PostgreSQL (psycopg2) or SQLite."""
    orig = exc.orig
    pgcode = getattr(orig, "pgcode", None)
    if pgcode:
        diag = getattr(orig, "diag", None)
        return _PG_CLASSES.get(pgcode, "integrity"), getattr(diag, "constraint_name", None)
    message = str(orig)
    if match := re.search(r"CHECK constraint failed: (\w+)", message):
        return "check", match.group(1)
    if match := re.search(r"UNIQUE constraint failed: ([\w.]+(?:, [\w.]+)*)", message):
        return "unique", _SQLITE_UNIQUE_NAMES.get(match.group(1), match.group(1))
    if "PRIMARY KEY" in message:
        return "unique", None
    if "FOREIGN KEY constraint failed" in message:
        return "foreign_key", None
    if "NOT NULL constraint failed" in message:
        return "not_null", message.rsplit(":", 1)[-1].strip()
    return "integrity", None


def translate_integrity_error(
    exc: IntegrityError, what: str, conflicts: Mapping[str, Callable[[], str]] | None = None
) -> CatalogError:
    kind, name = classify_integrity_error(exc)
    if kind == "unique":
        if conflicts and name in conflicts:
            return ConflictError(conflicts[name]())
        return ConflictError(f"{what} conflicts with an existing row ({name or 'unique key'})")
    if kind == "check":
        return ConstraintViolationError(
            f"{what} was rejected by the database rule {name}", constraint=name
        )
    if kind == "foreign_key":
        return InvalidReferenceError(
            f"{what} references a row that does not exist ({name or 'foreign key'})"
        )
    if kind == "not_null":
        return ConstraintViolationError(f"{what} is missing a required value ({name})")
    return ConstraintViolationError(f"{what} was rejected by the database: {exc.orig}")


@contextmanager
def guarded(
    session: Session, what: str, conflicts: Mapping[str, Callable[[], str]] | None = None
) -> Iterator[None]:
    """Run the block and flush inside a SAVEPOINT; on an integrity error the savepoint (only)
    rolls back, the session stays usable, and a CatalogError replaces the IntegrityError.

    ``conflicts`` maps a unique constraint's name to a function building the message (called
    after the rollback, so it may query)."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError as exc:
        raise translate_integrity_error(exc, what, conflicts) from exc


def clean_dict(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value) if value else {}
