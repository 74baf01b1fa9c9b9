"""Errors the catalog raises, each saying what was wrong, with which input, and what to do.

Domain errors pass through unchanged: ``domain.prompts.InvalidPromptError`` (an empty or
over-long prompt) and ``storage.keys.InvalidKeyError`` (an unsafe bucket/path); both are
``ValueError``s.
"""

from __future__ import annotations

import uuid


class CatalogError(Exception):
    """Base class of every error the catalog layer raises on purpose."""


class NotFoundError(CatalogError, LookupError):
    """No row of ``kind`` with that id (or not one the caller may see)."""

    def __init__(self, kind: str, ident: uuid.UUID | str, hint: str | None = None) -> None:
        self.kind = kind
        self.ident = ident
        message = f"no {kind} with id {ident}"
        if hint:
            message = f"{message}; {hint}"
        super().__init__(message)


class ConflictError(CatalogError):
    """The write would break a uniqueness rule (one default kit per character, unique email)."""


class InvalidReferenceError(CatalogError, ValueError):
    """A reference points at the wrong thing: an anchor from another kit, an asset of the wrong
    type, a kit that does not belong to the character, a scene for someone else's episode."""


class InvalidTransitionError(CatalogError):
    """A status change the kit's current state does not allow (e.g. approving without anchors)."""


class ConstraintViolationError(CatalogError, ValueError):
    """A value breaks a CHECK rule (status, asset_type, source_type...) or a required field.

    ``constraint`` is the database constraint's name (``ck_avatar_kits_status``) when the rule is
    one, else a short rule name (``expression_required``).
    """

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        self.constraint = constraint
        super().__init__(message)
