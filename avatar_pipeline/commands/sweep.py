"""``avatar-pipeline sweep [--apply]``: list (default) or remove orphan objects and rows, and
runs whose process died (marked failed, their pool slots freed). See catalog/orphans.py."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from avatar_pipeline.settings import Settings


def cmd_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from avatar_pipeline.catalog.db import make_engine, make_session_factory
    from avatar_pipeline.catalog.migrate import upgrade_database
    from avatar_pipeline.catalog.orphans import find_orphans, remove_orphans
    from avatar_pipeline.storage.factory import build_object_store

    upgrade_database(settings.catalog_url)
    engine = make_engine(settings.catalog_url)
    try:
        factory = make_session_factory(engine)
        store = build_object_store(settings)
        busy = _kits_with_runs_in_progress(settings, apply=args.apply)
        report = find_orphans(factory, store, exclude_kits=busy)
        for line in report.lines():
            print(line)
        if busy:
            print(f"skipped {len(busy)} kit(s) with a run in progress")
        if report.clean:
            print("no orphans")
            return 0
        if not args.apply:
            print(
                f"{len(report.objects)} orphan object(s), {len(report.rows)} orphan row(s); "
                "dry run: nothing removed (run with --apply to remove them)"
            )
            return 0
        remove_orphans(factory, store, report)
        print(
            f"removed {len(report.removed_objects)} object(s) and {len(report.removed_rows)} row(s)"
        )
        for line in report.kept:
            print(f"kept {line}")
        return 1 if report.kept else 0
    finally:
        engine.dispose()


def _kits_with_runs_in_progress(settings: Settings, *, apply: bool) -> set[str]:
    """Reap dead in-process runs, then the kits (partitions) of runs still in progress."""
    import os

    if not os.environ.get("DAGSTER_HOME") and not (settings.var_dir / "dagster").exists():
        return set()
    import dagster as dg

    from avatar_pipeline.instance_home import dagster_home as _dagster_home
    from avatar_pipeline.run_hygiene import kits_in_progress, reap_dead_runs

    _dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        for run in reap_dead_runs(instance, apply=apply):
            verb = "marked failed" if apply else "would mark failed"
            print(f"dead run       {run.run_id} ({run.job_name}, process {run.pid}): {verb}")
        return kits_in_progress(instance)


def register(
    sub: argparse._SubParsersAction,
) -> dict[str, Callable[[Settings, argparse.Namespace], int]]:
    sweep = sub.add_parser(
        "sweep",
        help="list orphan objects/rows and dead runs (dry run); --apply removes them",
    )
    sweep.add_argument(
        "--apply", action="store_true", help="remove what is listed (default: dry run)"
    )
    return {"sweep": cmd_sweep}
