"""Repository functions over the catalog: plain functions taking a ``Session`` first.

The caller owns the transaction (``db.session_scope``) unless a function says otherwise. Writes
flush inside a SAVEPOINT, so a rejected write raises a ``CatalogError`` and leaves the session
usable with nothing of that write applied. Python validates values before the database's CHECK
rules see them. The functions live in modules named after their tables (``people``,
``avatar_kits``, ``avatar_assets``, ``scenes``, ``generation_requests``); this module is the one
place callers import them from.
"""

from __future__ import annotations

from avatar_pipeline.catalog.avatar_assets import (
    canonical_assets,
    deactivate_asset,
    find_asset_by_fingerprint,
    get_asset,
    list_assets,
    promote_to_canonical,
    register_asset,
    set_primary_anchor,
    set_secondary_anchor,
    slot_of,
    update_asset,
)
from avatar_pipeline.catalog.avatar_kits import (
    approve_kit,
    archive_kit,
    create_kit,
    get_kit,
    kit_prompts,
    kit_total_cost,
    list_kits,
    set_active_kit,
    update_kit,
)
from avatar_pipeline.catalog.generation_requests import (
    mark_generation_request,
    pending_generation_requests,
    request_generation,
)
from avatar_pipeline.catalog.kit_approval import (
    missing_slots_for_approval,
    pending_promotions,
    required_slots_for_approval,
)
from avatar_pipeline.catalog.people import (
    create_character,
    create_episode,
    create_user,
    get_character,
    get_user,
)
from avatar_pipeline.catalog.reviews import list_decisions, record_decision
from avatar_pipeline.catalog.scenes import (
    create_scene_image,
    get_scene_image,
    list_episode_scenes,
    list_memories,
    set_scene_memory,
)

__all__ = [
    "approve_kit",
    "archive_kit",
    "canonical_assets",
    "create_character",
    "create_episode",
    "create_kit",
    "create_scene_image",
    "create_user",
    "deactivate_asset",
    "find_asset_by_fingerprint",
    "get_asset",
    "get_character",
    "get_kit",
    "get_scene_image",
    "get_user",
    "kit_prompts",
    "kit_total_cost",
    "list_assets",
    "list_decisions",
    "list_episode_scenes",
    "list_kits",
    "list_memories",
    "mark_generation_request",
    "missing_slots_for_approval",
    "pending_generation_requests",
    "pending_promotions",
    "promote_to_canonical",
    "record_decision",
    "register_asset",
    "request_generation",
    "required_slots_for_approval",
    "set_active_kit",
    "set_primary_anchor",
    "set_scene_memory",
    "set_secondary_anchor",
    "slot_of",
    "update_asset",
    "update_kit",
]
