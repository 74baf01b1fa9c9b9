"""Find a kit by what a person types: its id, or its name (``Mika Default`` / ``mika-default``).

Dagster partitions, the approval job's config and the CLI take a kit *id*; people think in kit
names. ``resolve_kit`` accepts a name where exactly one kit has it, and otherwise raises a
``KitLookupError`` that lists the kits that match (or all kits, when none does) with their ids.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy.orm import Session

from avatar_pipeline.catalog.avatar_kits import get_kit, list_kits
from avatar_pipeline.catalog.errors import CatalogError, NotFoundError
from avatar_pipeline.catalog.models import AvatarKit

_NON_WORD = re.compile(r"[^a-z0-9]+")
MAX_LISTED = 10


class KitLookupError(CatalogError, LookupError):
    """The text names no kit, or several; the message lists the candidates with their ids."""

    def __init__(self, message: str, matches: list[AvatarKit]):
        self.matches = matches
        super().__init__(message)


def kit_slug(name: str) -> str:
    """``'Mika Default'`` -> ``'mika-default'`` (what people type into a partition box)."""
    return _NON_WORD.sub("-", name.casefold()).strip("-")


def describe_kit(kit: AvatarKit) -> str:
    return f"{kit.name!r} (id {kit.id}, {kit.status})"


def _listing(kits: list[AvatarKit]) -> str:
    shown = "; ".join(describe_kit(k) for k in kits[:MAX_LISTED])
    more = len(kits) - MAX_LISTED
    return shown + (f"; and {more} more (see `avatar-pipeline kits list`)" if more > 0 else "")


def resolve_kit(session: Session, text: str, *, what: str = "kit") -> AvatarKit:
    """The kit whose id is ``text``, or the one kit whose name (or its slug) is ``text``.

    ``what`` names the input in the message (e.g. "partition key"). Raises KitLookupError.
    """
    key = (text or "").strip()
    try:
        kit_id = uuid.UUID(key)
    except ValueError:
        kit_id = None
    if kit_id is not None:
        try:
            return get_kit(session, kit_id)
        except NotFoundError:
            raise KitLookupError(
                f"{what} {key!r} is a kit id, but no kit has it (deleted, or another catalog?); "
                "see `avatar-pipeline kits list`",
                [],
            ) from None
    kits = list_kits(session)
    slug = kit_slug(key)
    exact = [k for k in kits if k.name.casefold() == key.casefold() or kit_slug(k.name) == slug]
    live = [k for k in exact if k.status != "archived"]
    if len(live) == 1 or (len(exact) == 1 and not live):
        return (live or exact)[0]
    if exact:
        raise KitLookupError(
            f"{what} {key!r} is not a kit id and {len(exact)} kits have that name: "
            f"{_listing(exact)}. Use the id of the one you mean.",
            exact,
        )
    similar = [k for k in kits if slug and (slug in kit_slug(k.name) or slug in str(k.id))]
    if similar:
        hint = f"kits whose name or id contains it: {_listing(similar)}"
    elif kits:
        hint = f"no kit's name matches it; the kits are: {_listing(kits)}"
    else:
        hint = "the catalog has no kits yet; create one first"
    raise KitLookupError(
        f"{what} {key!r} is not a kit id and names no kit; {hint}. Kits are keyed by id "
        "(each kit's Dagster partition is its id, added by kit_sensor when the kit is created); "
        "a kit's exact name is accepted too.",
        similar,
    )
