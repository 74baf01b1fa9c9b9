"""Which asset keys a run for some slots of a kit selects (always with the kit's report)."""

from collections.abc import Iterable

import dagster as dg
from sqlalchemy.orm import Session

from avatar_pipeline.assets.kit_images import slot_asset_key
from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.models import AvatarKit
from avatar_pipeline.domain.vocab import AssetType
from avatar_pipeline.generation.slots import ALL_SLOTS, slot_named

REPORT_KEY = dg.AssetKey(["consistency_report"])

SCOPES: dict[str, tuple[AssetType, ...]] = {
    "kit": tuple(AssetType),
    "anchors": (AssetType.ANCHOR_PORTRAIT, AssetType.ANCHOR_FULLBODY),
    "expressions": (AssetType.EXPRESSION,),
    "poses": (AssetType.POSE,),
}


def slot_names_for_scope(scope: str, slots: Iterable[str] | None = None) -> list[str]:
    if slots:
        return [slot_named(s).name for s in slots]
    types = SCOPES[scope]
    return [s.name for s in ALL_SLOTS if s.asset_type in types]


def selection_for(slot_names: Iterable[str]) -> list[dg.AssetKey]:
    names = set(slot_names)
    return [slot_asset_key(s) for s in ALL_SLOTS if s.name in names] + [REPORT_KEY]


def kit_run_config(trigger: str, **options: object) -> dict:
    """Run config of kit_images (``options``: other KitRunConfig fields, e.g. new_take)."""
    return {"ops": {"kit_images": {"config": {"trigger": trigger, **options}}}}


def partitioned_kits(instance: dg.DagsterInstance, session: Session) -> list[AvatarKit]:
    """Kits that are not archived and already have their Dagster partition."""
    known = set(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    return [k for k in repo.list_kits(session) if k.status != "archived" and str(k.id) in known]
