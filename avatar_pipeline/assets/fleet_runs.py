"""Many kits in one run: the ``kit_images`` step of a run over a range of kit partitions.

A backfill (the ``fleet regenerate`` command, or a backfill launched in the UI) runs
``kit_images`` under its backfill policy (``BackfillPolicy.multi_run(FLEET_KITS_PER_RUN)``): one
run per up to that many kits instead of a process per kit. Inside the run every kit is produced
concurrently on one event loop, one ``KitGenerator`` per kit, all drawing on the same
ImageService, so the process-wide limiter and the instance-wide provider budget (catalog
database) cap provider calls across kits and runs.

What Dagster records per kit:

- a slot that every kit of the run produced is one output, materialised for every kit's
  partition, each with that kit's metadata (``add_asset_metadata(partition_key=...)``);
- a slot that only some kits produced is recorded as an ``AssetMaterialization`` for each of
  those kits' partitions (the run then fails listing the others);
- a check is one evaluation for the run: it passes when it passes for every kit, and its
  metadata lists every kit's verdict (Dagster checks of a multi-partition step are per step,
  not per partition). A check that does not pass for some kits is a WARN naming them (and
  ``rejected_kits`` in its metadata), not a blocking ERROR: the gate has already withheld
  promotion kit by kit (a rejected image stays a failed candidate, the kit keeps its canonical
  image), while a failed blocking check would skip the run's ``consistency_report`` step for
  every kit of the run. A single-kit run keeps the blocking ERROR.

A single kit is still an ordinary one-partition run (``kit_images`` itself), unless the fleet
command made it (tag ``avatar/fleet``): then it is a fleet run of one kit, with the semantics
above.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from avatar_pipeline.assets.partitions import KitRef, lookup_kit
from avatar_pipeline.catalog.kit_lookup import KitLookupError
from avatar_pipeline.generation.outcomes import SlotOutcome, SlotStatus
from avatar_pipeline.generation.scheduling import PriorityGate
from avatar_pipeline.generation.slots import ALL_SLOTS


def kits_per_run() -> int:
    """How many kits a backfill puts in one run (AVATAR_FLEET_KITS_PER_RUN, default 16)."""
    try:
        return max(1, int(os.environ.get("AVATAR_FLEET_KITS_PER_RUN", "16")))
    except ValueError:
        return 16


FLEET_KITS_PER_RUN = kits_per_run()
# Tag of every run of a fleet (``avatar-pipeline fleet regenerate``): such a run is a fleet run
# even when it covers one kit (rejections are WARNs, the report is always written).
FLEET_TAG = "avatar/fleet"
FLEET_BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=FLEET_KITS_PER_RUN)


@dataclass
class KitResult:
    partition_key: str
    kit: KitRef | None = None
    outcomes: list[SlotOutcome] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        return self.kit.name if self.kit else self.partition_key


def produce_kits(
    context: dg.AssetExecutionContext,
    *,
    catalog: Any,
    make_generator: Callable[[KitRef], Any],
    slot_key: Callable[[Any], dg.AssetKey],
    outcome_metadata: Callable[[SlotOutcome], dict[str, Any]],
    severity: dict[str, dg.AssetCheckSeverity],
) -> Iterator[Any]:
    """The body of ``kit_images`` for a run over several kits (see the module docstring)."""
    keys = list(context.partition_keys)
    selected_keys = context.selected_asset_keys
    selected_checks = context.selected_asset_check_keys
    selected = [s for s in ALL_SLOTS if slot_key(s) in selected_keys]
    checks_only = [
        s
        for s in ALL_SLOTS
        if slot_key(s) not in selected_keys
        and any(c.asset_key == slot_key(s) for c in selected_checks)
    ]
    results = [KitResult(k) for k in keys]
    with catalog.session() as session:
        for result in results:
            try:
                result.kit = lookup_kit(session, result.partition_key)
            except KitLookupError as exc:
                result.error = str(exc)
    context.log.info(
        f"{len(keys)} kits in this run: "
        + ", ".join(r.label for r in results)
        + f"; {len(selected)} slots each"
    )

    # one scoring gate for every kit of the run: anchors of all kits before expressions
    scoring = PriorityGate(capacity=os.cpu_count() or 2)

    async def one(result: KitResult) -> None:
        if result.kit is None:
            return
        generator = make_generator(result.kit)
        generator.scoring_gate = scoring
        try:
            if selected:
                result.outcomes += await generator.run(result.kit.id, [s.name for s in selected])
            if checks_only:
                result.outcomes += await generator.recheck(
                    result.kit.id, [s.name for s in checks_only]
                )
        except Exception as exc:  # one kit's failure must not stop the others
            result.error = f"{type(exc).__name__}: {exc}"
            context.log.error(f"[{result.label}] {result.error}")

    async def all_kits() -> None:
        await asyncio.gather(*(one(r) for r in results))

    asyncio.run(all_kits())

    yield from _materializations(context, results, selected, slot_key, outcome_metadata)
    yield from _checks(results, selected_checks, slot_key, severity)

    failures = [f"{r.label}: {r.error}" for r in results if r.error]
    failures += [
        f"{r.label} {o.slot.name}: {o.reason}"
        for r in results
        for o in r.outcomes
        if o.status is SlotStatus.FAILED
    ]
    done = sum(1 for r in results if not r.error)
    context.log.info(f"{done}/{len(results)} kits produced without error")
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} slot(s) or kit(s) of this {len(results)}-kit run could "
            "not be generated; nothing was written for them, the other kits are recorded.",
            metadata={"failed": dg.MetadataValue.md("\n".join(f"- {f}" for f in failures))},
        )


def _materializations(
    context: dg.AssetExecutionContext,
    results: list[KitResult],
    selected: list[Any],
    slot_key: Callable[[Any], dg.AssetKey],
    outcome_metadata: Callable[[SlotOutcome], dict[str, Any]],
) -> Iterator[Any]:
    for slot in selected:
        key = slot_key(slot)
        made = [
            (r, o) for r in results for o in r.outcomes if o.slot.name == slot.name and o.has_image
        ]
        if made and len(made) == len(results):
            for r, o in made:
                context.add_asset_metadata(
                    outcome_metadata(o), asset_key=key, partition_key=r.partition_key
                )
            yield dg.MaterializeResult(asset_key=key, metadata={"kits_in_run": len(results)})
        else:
            for r, o in made:
                yield dg.AssetMaterialization(
                    asset_key=key, partition=r.partition_key, metadata=outcome_metadata(o)
                )


def _checks(
    results: list[KitResult],
    selected_checks: Any,
    slot_key: Callable[[Any], dg.AssetKey],
    severity: dict[str, dg.AssetCheckSeverity],
) -> Iterator[dg.AssetCheckResult]:
    verdicts: dict[dg.AssetCheckKey, list[tuple[KitResult, SlotOutcome, Any]]] = {}
    for r in results:
        for o in r.outcomes:
            if o.status in (SlotStatus.FAILED, SlotStatus.SKIPPED):
                continue
            for name, verdict in o.check_verdicts().items():
                check_key = dg.AssetCheckKey(slot_key(o.slot), name)
                if check_key in selected_checks:
                    verdicts.setdefault(check_key, []).append((r, o, verdict))
    for check_key, rows in verdicts.items():
        failing = [(r, v) for r, _, v in rows if not v.passed]
        rejected = [
            r.label
            for r, v in failing
            if severity.get(v.verdict, dg.AssetCheckSeverity.ERROR) == dg.AssetCheckSeverity.ERROR
        ]
        description = f"{len(rows) - len(failing)}/{len(rows)} kits pass"
        if failing:
            description += "; not passing: " + ", ".join(
                f"{r.label} ({v.verdict})" for r, v in failing
            )
        if rejected:
            description += (
                f". {len(rejected)} kit(s) had an image rejected: it was not promoted (their "
                "previous canonical image stays), see each kit's report"
            )
        # WARN, not ERROR, even for a rejection: the gate already withheld promotion per kit,
        # and a failed blocking check would stop every kit's report in this run, not just the
        # rejected kits'. A single-kit run keeps the blocking ERROR (kit_images).
        yield dg.AssetCheckResult(
            asset_key=check_key.asset_key,
            check_name=check_key.name,
            passed=not failing,
            severity=dg.AssetCheckSeverity.WARN,
            description=description,
            metadata={
                "rejected_kits": dg.MetadataValue.json(sorted(rejected)),
                "kits": dg.MetadataValue.json(
                    {
                        r.partition_key: {
                            "kit": r.label,
                            "verdict": v.verdict,
                            "why": v.why,
                            "asset_id": o.asset_id or "",
                            "promoted": o.promoted,
                        }
                        for r, o, v in rows
                    }
                ),
            },
        )
