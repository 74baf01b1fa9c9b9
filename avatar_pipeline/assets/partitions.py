"""One dynamic partition per avatar kit; the partition key is the kit id.

People type kit names ("mika-default") where Dagster wants a partition key; ``kit_for_run``
turns a partition key into the kit it names (its id, or a unique kit name) and otherwise stops
the run with a message that lists the matching kits, instead of a UUID-parsing traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from avatar_pipeline.catalog.kit_lookup import KitLookupError, resolve_kit

KITS_PARTITION_NAME = "avatar_kits"
kit_partitions = dg.DynamicPartitionsDefinition(name=KITS_PARTITION_NAME)

KIT_ID_TAG = "avatar/kit_id"
KIT_NAME_TAG = "avatar/kit_name"


@dataclass(frozen=True)
class KitRef:
    """The kit a run is for, as read from the catalog at the start of the run."""

    id: str
    name: str
    status: str
    partition_key: str

    @property
    def by_name(self) -> bool:
        return self.partition_key != self.id

    @property
    def tags(self) -> dict[str, str]:
        return kit_tags(self.id, self.name)

    def label(self) -> str:
        return f"{self.name!r} ({self.id})"


def kit_tags(kit_id: str, name: str) -> dict[str, str]:
    """Run tags that show the kit by name in the runs list (tag values: at most 63 chars)."""
    return {KIT_ID_TAG: kit_id, KIT_NAME_TAG: name[:63]}


def lookup_kit(session: Any, key: str, *, what: str = "partition key") -> KitRef:
    """The kit a partition key (id or unique name) names; KitLookupError otherwise."""
    kit = resolve_kit(session, key, what=what)
    return KitRef(str(kit.id), kit.name, kit.status, key)


def partition_key_of(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str:
    if not context.has_partition_key:
        raise dg.Failure(
            description="This run has no kit partition, so there is no kit to work on. Launch it "
            "for one kit: pick the kit's partition (its id) in the launch dialog, or use "
            "`avatar-pipeline kits request <kit name>`.",
            allow_retries=False,
        )
    return context.partition_key


def kit_for_run(context: dg.AssetExecutionContext | dg.OpExecutionContext, catalog: Any) -> KitRef:
    """Resolve the run's partition key to a kit, tag the run with the kit's name, and log it.

    A partition key that is a unique kit name (e.g. "mika-default" added by hand in the UI) is
    accepted and logged; anything else stops the run with a ``dg.Failure`` listing the matching
    kits (no retry: retrying cannot help).
    """
    key = partition_key_of(context)
    try:
        with catalog.session() as session:
            ref = lookup_kit(session, key)
    except KitLookupError as exc:
        raise dg.Failure(
            description=str(exc),
            metadata={"partition_key": key, "matching_kits": len(exc.matches)},
            allow_retries=False,
        ) from None
    if ref.by_name:
        context.log.warning(
            f"partition {key!r} is not a kit id; it names kit {ref.label()}, so this run works "
            f"on that kit. Its own partition is {ref.id}; the partition {key!r} can be deleted."
        )
    else:
        context.log.info(f"kit {ref.label()}, status {ref.status}")
    _tag_run(context, ref)
    return ref


def _tag_run(context: Any, ref: KitRef) -> None:
    try:
        missing = {k: v for k, v in ref.tags.items() if context.run.tags.get(k) != v}
        if missing:
            context.instance.add_run_tags(context.run_id, missing)
    except Exception as exc:  # a tag is a convenience; never fail a run for it
        context.log.debug(f"could not tag the run with the kit name: {exc}")


RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def kits_of_run(tags: Any, order: Sequence[str]) -> list[str]:
    """The kit partitions a run covers, from its tags: its partition, or every partition of its
    range in the kits' partition ``order`` (a fleet or backfill run over several kits)."""
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    start, end = tags.get(RANGE_START), tags.get(RANGE_END)
    if start in order and end in order:
        return list(order[order.index(start) : order.index(end) + 1])
    return []
