"""``avatar-pipeline fleet``: re-generate many kits, many kits per run, and follow them.

``fleet regenerate (--kits KIT ... | --all) [--wait]`` cuts the kits (in partition order) into
ranges of at most ``AVATAR_FLEET_KITS_PER_RUN`` consecutive kit partitions (default 16) and
submits one ``kit_job`` run per range to the run queue (``commands.fleet_runs_launch``): the
same runs an asset backfill would make under ``kit_images``' backfill policy, started by the
daemon's run queue within a second instead of the backfill daemon's 30-second cadence.
``--backfill`` submits the asset backfill instead (the shape a backfill launched in the UI
has). Each run produces its kits concurrently on one provider budget (100 kits are a handful of
runs, not 100 processes) and then writes their reports; each kit's images and report show per
partition in Dagster. A gate rejection in a multi-kit run is a WARN naming the kit (see
``assets.fleet_runs``).

``--wait`` (or ``fleet status FLEET_ID``) shows kits done/total with a progress bar until the
runs end, then the kits with an image the gate rejected; the exit status is 0 only if no run
failed.
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


def prepare_kits(instance: Any, catalog: Any, kit_ids: Sequence[str]) -> list[str]:
    """Claim the kits for intake (so kit_sensor does not also start a new-kit run for one it
    has not seen yet) and add their partitions if missing; the partition order."""
    from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
    from avatar_pipeline.catalog import kit_intake

    if not kit_ids:
        raise FleetError("no kits to re-generate")
    with catalog.session() as session:
        kit_intake.claim_kits(session, kit_ids, CLAIMANT)
    known = list(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    present = set(known)
    missing = [k for k in dict.fromkeys(kit_ids) if k not in present]
    if missing:
        instance.add_dynamic_partitions(KITS_PARTITION_NAME, missing)
        known = list(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    return known


def _fleet_tags(trigger: str) -> dict[str, str]:
    # ahead of report and sensor runs in the run queue (measured: behind ~35 report runs a
    # fleet run waited 18 min for a slot)
    return {"avatar/trigger": trigger, "dagster/priority": FLEET_RUN_PRIORITY}


def _fleet_run_config(trigger: str) -> dict[str, Any]:
    return {"ops": {"kit_images": {"config": {"trigger": trigger}}}}


def launch_fleet_runs(
    instance: Any,
    catalog: Any,
    kit_ids: Sequence[str],
    *,
    trigger: str = FLEET_TRIGGER,
    workspace: str | None = None,
    per_run: int | None = None,
) -> tuple[str, list[str]]:
    """Submit the fleet as ``kit_job`` runs over ranges of kit partitions (see
    ``commands.fleet_runs_launch``); returns (fleet id, run ids)."""
    from avatar_pipeline.commands.fleet_runs_launch import kit_ranges, submit_fleet_runs

    order = prepare_kits(instance, catalog, kit_ids)
    ranges = kit_ranges(order, list(kit_ids), per_run or _kits_per_run())
    return submit_fleet_runs(
        instance,
        ranges,
        tags=_fleet_tags(trigger),
        run_config=_fleet_run_config(trigger),
        workspace=workspace,
    )


def fleet_run_progress(instance: Any, fleet_id: str) -> FleetProgress:
    """Kits done/failed of a fleet submitted as runs: a run's kits are done when it succeeded,
    failed when it failed or was canceled."""
    import dagster as dg

    from avatar_pipeline.commands.fleet_runs_launch import FLEET_SIZE_TAG, FLEET_TAG

    records = instance.get_run_records(dg.RunsFilter(tags={FLEET_TAG: fleet_id}))
    if not records:
        raise FleetError(f"no fleet or backfill {fleet_id!r} on this Dagster instance")
    from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME, kits_of_run

    order = list(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    done: list[str] = []
    failed: list[str] = []
    total = 0
    ended = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
    for record in records:
        run = record.dagster_run
        kits = kits_of_run(run.tags, order)
        total += int(run.tags.get(FLEET_SIZE_TAG, len(kits)))
        if run.status == dg.DagsterRunStatus.SUCCESS:
            done += kits
        elif run.status in ended:
            failed += kits
    finished = all(r.dagster_run.status in ended for r in records)
    status = "COMPLETED_FAILED" if failed else "COMPLETED_SUCCESS"
    if not finished:
        status = "REQUESTED"
    progress = FleetProgress(
        backfill_id=fleet_id,
        status=status,
        total=total,
        done=sorted(done),
        failed=sorted(failed),
        runs=len(records),
        failed_runs=sum(1 for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE),
    )
    if finished:
        progress.rejected = rejected_kits(instance, [r.dagster_run.run_id for r in records])
    return progress


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

    from avatar_pipeline.definitions import defs

    prepare_kits(instance, catalog, kit_ids)
    backfill_id = make_new_backfill_id()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id,
        asset_graph=defs.resolve_asset_graph(),
        partition_names=list(kit_ids),
        asset_selection=fleet_asset_keys(),
        backfill_timestamp=get_current_timestamp(),
        tags=_fleet_tags(trigger),
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title or f"fleet: re-generate {len(kit_ids)} kits",
        description=f"avatar-pipeline fleet regenerate ({trigger})",
        run_config=_fleet_run_config(trigger),
    )
    instance.add_backfill(backfill)
    return backfill_id


def fleet_progress(instance: Any, backfill_id: str) -> FleetProgress:
    """Kits done/failed of a fleet: a backfill (from its asset backfill data and its runs) or a
    fleet submitted as runs (``fleet_run_progress``)."""
    import dagster as dg

    backfill = instance.get_backfill(backfill_id)
    if backfill is None:
        return fleet_run_progress(instance, backfill_id)
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
            if args.backfill:
                backfill_id = launch_fleet_backfill(
                    instance, catalog, kit_ids, trigger=args.trigger
                )
                print(
                    f"backfill {backfill_id}: {len(kit_ids)} kits, up to {_kits_per_run()} kits "
                    "per run (the backfill daemon starts them within 30 s)"
                )
            else:
                backfill_id, run_ids = launch_fleet_runs(
                    instance, catalog, kit_ids, trigger=args.trigger, workspace=args.workspace
                )
                print(
                    f"fleet {backfill_id}: {len(kit_ids)} kits in {len(run_ids)} kit_job runs "
                    f"(up to {_kits_per_run()} kits per run), queued"
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
    fleet = sub.add_parser("fleet", help="re-generate many kits, many per run, with progress")
    actions = fleet.add_subparsers(dest="action", required=True)
    regen = actions.add_parser(
        "regenerate", help="re-generate kits (kit_job runs over kit ranges, or a backfill)"
    )
    regen.add_argument("--kits", nargs="+", metavar="KIT", help="kit ids or exact names")
    regen.add_argument("--all", action="store_true", help="every kit that is not archived")
    regen.add_argument("--trigger", default=FLEET_TRIGGER, help="recorded with every image")
    regen.add_argument("--wait", action="store_true", help="show progress until it ends")
    regen.add_argument("--poll", type=float, default=2.0, help="seconds between progress polls")
    regen.add_argument("--timeout", type=float, default=None, help="give up waiting after this")
    regen.add_argument(
        "--backfill",
        action="store_true",
        help="submit one Dagster asset backfill instead of the runs (the backfill daemon picks "
        "it up within 30 s)",
    )
    regen.add_argument(
        "--workspace",
        metavar="WORKSPACE_YAML",
        help="the workspace the daemon serves (default: what `dagster dev` here loads)",
    )
    status = actions.add_parser("status", help="kits done/total of a fleet (or backfill)")
    status.add_argument("backfill_id", metavar="FLEET_OR_BACKFILL_ID")
    return {"fleet": cmd_fleet}
