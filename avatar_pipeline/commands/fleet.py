"""``avatar-pipeline fleet``: re-generate many kits as one Dagster backfill, and follow it.

``fleet regenerate (--kits KIT ... | --all) [--wait]`` submits an asset backfill of the kit
image assets over the kits' partitions. The Dagster daemon (``dagster dev`` or
``dagster-daemon run``) executes it under ``kit_images``' backfill policy: up to
``AVATAR_FLEET_KITS_PER_RUN`` kits (default 16) per run, each run producing its kits
concurrently on one provider budget — 100 kits are a handful of runs, not 100 processes. Each
kit's images and its report show per partition in Dagster (materialisations); the report is a
second step of the same run (a run stopped by a blocking check skips it, and
``report_refresh_sensor`` writes those reports afterwards).

``--wait`` (or ``fleet status BACKFILL_ID``) shows kits done/total with a progress bar until the
backfill ends; the exit status is 0 only if every kit succeeded.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from avatar_pipeline.settings import Settings

FLEET_TRIGGER = "fleet-regenerate"
FLEET_RUN_PRIORITY = "5"
CLAIMANT = "fleet"
BACKFILL_TAG = "dagster/backfill"


class FleetError(Exception):
    """A fleet command cannot proceed; the message says what to do."""


@dataclass
class FleetProgress:
    backfill_id: str
    status: str
    total: int
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    runs: int = 0
    failed_runs: int = 0
    # kits (names) with an image the gate rejected (not promoted; read when the backfill ends)
    rejected: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in {
            "COMPLETED",
            "COMPLETED_SUCCESS",
            "COMPLETED_FAILED",
            "FAILED",
            "CANCELED",
        }

    def bar(self, width: int = 30) -> str:
        finished = len(self.done) + len(self.failed)
        filled = round(width * finished / self.total) if self.total else width
        failed = f", {len(self.failed)} failed" if self.failed else ""
        if self.rejected:
            failed += f", {len(self.rejected)} with a rejected image"
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.total} kits{failed} "
            f"({self.runs} runs, {self.status.lower()})"
        )


def image_asset_keys() -> list[Any]:
    from avatar_pipeline.assets.kit_images import KIT_IMAGE_SPECS

    return [spec.key for spec in KIT_IMAGE_SPECS]


def fleet_asset_keys() -> list[Any]:
    """What a fleet backfill materialises per kit: its image assets and its report (the report
    shares kit_images' backfill policy, so each run writes its own kits' reports)."""
    import dagster as dg

    return [*image_asset_keys(), dg.AssetKey(["consistency_report"])]


def resolve_kits(session: Any, names: Sequence[str] | None, *, all_kits: bool) -> list[str]:
    """Kit ids to re-generate: the named kits (id or exact name), or every kit not archived."""
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.kit_lookup import KitLookupError, resolve_kit

    if all_kits:
        return [str(k.id) for k in repo.list_kits(session) if k.status != "archived"]
    ids = []
    for name in names or []:
        try:
            kit = resolve_kit(session, name, what="kit")
        except KitLookupError as exc:
            raise FleetError(str(exc)) from None
        if kit.status == "archived":
            raise FleetError(f"kit {kit.name!r} ({kit.id}) is archived; nothing to re-generate")
        ids.append(str(kit.id))
    return list(dict.fromkeys(ids))


def launch_fleet_backfill(
    instance: Any,
    catalog: Any,
    kit_ids: Sequence[str],
    *,
    trigger: str = FLEET_TRIGGER,
    title: str | None = None,
) -> str:
    """Submit one asset backfill of every kit image asset and the kit report over ``kit_ids``;
    returns its id.

    The kits are claimed for intake first (so kit_sensor does not also start a new-kit run for
    one it has not seen yet) and their partitions added if missing.
    """
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._time import get_current_timestamp

    from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
    from avatar_pipeline.catalog import kit_intake
    from avatar_pipeline.definitions import defs

    if not kit_ids:
        raise FleetError("no kits to re-generate")
    with catalog.session() as session:
        kit_intake.claim_kits(session, kit_ids, CLAIMANT)
    known = set(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    missing = [k for k in kit_ids if k not in known]
    if missing:
        instance.add_dynamic_partitions(KITS_PARTITION_NAME, missing)
    backfill_id = make_new_backfill_id()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id,
        asset_graph=defs.resolve_asset_graph(),
        partition_names=list(kit_ids),
        asset_selection=fleet_asset_keys(),
        backfill_timestamp=get_current_timestamp(),
        # ahead of report and sensor runs in the run queue (measured: behind ~35 report runs a
        # fleet run waited 18 min for a slot)
        tags={"avatar/trigger": trigger, "dagster/priority": FLEET_RUN_PRIORITY},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title or f"fleet: re-generate {len(kit_ids)} kits",
        description=f"avatar-pipeline fleet regenerate ({trigger})",
        run_config={"ops": {"kit_images": {"config": {"trigger": trigger}}}},
    )
    instance.add_backfill(backfill)
    return backfill_id


def fleet_progress(instance: Any, backfill_id: str) -> FleetProgress:
    """Kits done/failed of a fleet backfill, from its asset backfill data and its runs."""
    import dagster as dg

    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        raise FleetError(f"no backfill {backfill_id!r} on this Dagster instance")
    data = backfill.asset_backfill_data
    targets: dict[str, int] = {}
    finished: dict[str, int] = {}
    failed: set[str] = set()
    if data is not None:
        for akpk in data.target_subset.iterate_asset_partitions():
            targets[akpk.partition_key] = targets.get(akpk.partition_key, 0) + 1
        for akpk in data.materialized_subset.iterate_asset_partitions():
            finished[akpk.partition_key] = finished.get(akpk.partition_key, 0) + 1
        for akpk in data.failed_and_downstream_subset.iterate_asset_partitions():
            finished[akpk.partition_key] = finished.get(akpk.partition_key, 0) + 1
            failed.add(akpk.partition_key)
    records = instance.get_run_records(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id}))
    done = sorted(k for k, n in targets.items() if k not in failed and finished.get(k, 0) >= n)
    progress = FleetProgress(
        backfill_id=backfill_id,
        status=backfill.status.value,
        total=len(targets),
        done=done,
        failed=sorted(k for k in failed if k in targets),
        runs=len(records),
        failed_runs=sum(1 for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE),
    )
    if progress.finished:
        progress.rejected = rejected_kits(instance, [r.dagster_run.run_id for r in records])
    return progress


def rejected_kits(instance: Any, run_ids: Sequence[str]) -> list[str]:
    """Kits whose image a multi-kit run's check rejected (its ``rejected_kits`` metadata)."""
    import dagster as dg

    names: set[str] = set()
    for run_id in run_ids:
        events = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        for record in events:
            data = record.event_log_entry.dagster_event.event_specific_data
            value = data.metadata.get("rejected_kits") if data is not None else None
            names.update(getattr(value, "value", None) or [])
    return sorted(names)


def wait_for_backfill(
    instance: Any,
    backfill_id: str,
    *,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    show: Callable[[FleetProgress], None] | None = None,
) -> FleetProgress:
    started = time.monotonic()
    while True:
        progress = fleet_progress(instance, backfill_id)
        if show:
            show(progress)
        if progress.finished:
            return progress
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise FleetError(f"backfill {backfill_id} still {progress.status} after {timeout_s}s")
        time.sleep(poll_s)


def _printer() -> Callable[[FleetProgress], None]:
    tty = sys.stdout.isatty()
    last = [""]

    def show(progress: FleetProgress) -> None:
        line = progress.bar()
        if tty:
            print(f"\r{line}", end="" if not progress.finished else "\n", flush=True)
        elif line != last[0]:
            print(line, flush=True)
        last[0] = line

    return show


def _daemon_warning(instance: Any) -> str | None:
    try:
        from dagster._daemon.controller import get_daemon_statuses

        statuses = get_daemon_statuses(instance, ["BACKFILL"], ignore_errors=True)
        if not statuses["BACKFILL"].healthy:
            return (
                "no healthy Dagster daemon on this instance: the backfill waits until one runs "
                "(`dagster dev`, or `dagster-daemon run` with the same DAGSTER_HOME)"
            )
    except Exception as exc:  # a status probe must never stop the command
        return f"could not check the Dagster daemon: {exc}"
    return None


def cmd_fleet(settings: Settings, args: argparse.Namespace) -> int:
    import dagster as dg

    from avatar_pipeline.instance_home import dagster_home as _dagster_home
    from avatar_pipeline.resources import resources_for_environment

    _dagster_home(settings)
    try:
        with dg.DagsterInstance.get() as instance:
            if args.action == "status":
                progress = fleet_progress(instance, args.backfill_id)
                print(progress.bar())
                for kit in progress.failed:
                    print(f"  failed: {kit}")
                return 0 if not progress.failed else 1
            if not args.kits and not args.all:
                raise FleetError("name the kits (--kits NAME_OR_ID ...) or pass --all")
            catalog = resources_for_environment(settings)["catalog"]
            with catalog.session() as session:
                kit_ids = resolve_kits(session, args.kits, all_kits=args.all)
            backfill_id = launch_fleet_backfill(instance, catalog, kit_ids, trigger=args.trigger)
            print(
                f"backfill {backfill_id}: {len(kit_ids)} kits, up to {_kits_per_run()} kits per run"
            )
            warning = _daemon_warning(instance)
            if warning:
                print(warning, file=sys.stderr)
            if not args.wait:
                print(f"follow it: avatar-pipeline fleet status {backfill_id}")
                return 0
            progress = wait_for_backfill(
                instance, backfill_id, poll_s=args.poll, timeout_s=args.timeout, show=_printer()
            )
            for kit in progress.failed:
                print(f"  failed: {kit}")
            for kit in progress.rejected:
                print(f"  an image rejected by the gate (not promoted; see its report): {kit}")
            return 0 if not progress.failed and progress.status != "FAILED" else 1
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 2


def _kits_per_run() -> int:
    from avatar_pipeline.assets.fleet_runs import FLEET_KITS_PER_RUN

    return FLEET_KITS_PER_RUN


def register(sub: argparse._SubParsersAction) -> dict[str, Callable[[Settings, Any], int]]:
    fleet = sub.add_parser("fleet", help="re-generate many kits as one backfill, with progress")
    actions = fleet.add_subparsers(dest="action", required=True)
    regen = actions.add_parser("regenerate", help="re-generate kits (a Dagster backfill)")
    regen.add_argument("--kits", nargs="+", metavar="KIT", help="kit ids or exact names")
    regen.add_argument("--all", action="store_true", help="every kit that is not archived")
    regen.add_argument("--trigger", default=FLEET_TRIGGER, help="recorded with every image")
    regen.add_argument("--wait", action="store_true", help="show progress until it ends")
    regen.add_argument("--poll", type=float, default=2.0, help="seconds between progress polls")
    regen.add_argument("--timeout", type=float, default=None, help="give up waiting after this")
    status = actions.add_parser("status", help="kits done/total of a fleet backfill")
    status.add_argument("backfill_id")
    return {"fleet": cmd_fleet}
