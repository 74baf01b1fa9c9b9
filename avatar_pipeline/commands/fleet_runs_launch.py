"""Fleet work as ``kit_job`` runs over ranges of kit partitions, submitted straight to the queue.

An asset backfill is Dagster's own shape for this (``fleet regenerate --backfill``), but the
backfill daemon looks at new backfills every 30 seconds, so a fleet waited 0-30 s before its
first run existed (measured 6-30 s in ``bench/bench_fleet.py``). ``fleet regenerate`` therefore
creates the runs itself, exactly as the backfill would under ``kit_images``' backfill policy:
the kits in partition order, cut into ranges of consecutive partitions of at most
``AVATAR_FLEET_KITS_PER_RUN`` kits, each range one ``kit_job`` run (images and report) tagged
with ``dagster/asset_partition_range_start``/``_end``. They are submitted to the instance's run
coordinator: the daemon dequeues them within its dequeue interval (1 s in the shipped
instance), under the same run and pool limits as every other run.

The runs are created from the code location that ``dagster dev`` in the current directory
loads (``workspace.yaml``, else ``pyproject.toml``), or the one ``--workspace`` names, so their
origin names the location the daemon serves. All the fleet's runs carry ``avatar/fleet`` (the
fleet id ``fleet status`` takes).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from avatar_pipeline.assets.fleet_runs import FLEET_TAG
from avatar_pipeline.assets.partitions import RANGE_END, RANGE_START

FLEET_SIZE_TAG = "avatar/fleet-kits"
KIT_JOB = "kit_job"

__all__ = ["FLEET_TAG", "kit_ranges", "submit_fleet_runs"]


def kit_ranges(order: Sequence[str], kit_ids: Sequence[str], per_run: int) -> list[list[str]]:
    """``kit_ids`` in partition ``order``, cut into runs of consecutive partitions of at most
    ``per_run`` kits (a range run covers every partition between its ends, so a kit that is
    not in the fleet ends a range)."""
    position = {key: i for i, key in enumerate(order)}
    missing = [k for k in kit_ids if k not in position]
    if missing:
        raise ValueError(f"kits without a partition: {', '.join(missing)}")
    ranges: list[list[str]] = []
    for kit in sorted(set(kit_ids), key=position.__getitem__):
        current = ranges[-1] if ranges else None
        if (
            current is not None
            and len(current) < per_run
            and position[kit] == position[current[-1]] + 1
        ):
            current.append(kit)
        else:
            ranges.append([kit])
    return ranges


@contextlib.contextmanager
def _workspace(instance: Any, workspace: str | None) -> Iterator[Any]:
    from dagster import __version__
    from dagster._cli.workspace.cli_target import WorkspaceOpts, get_workspace_from_cli_opts

    opts = WorkspaceOpts(workspace=[workspace]) if workspace else WorkspaceOpts()
    with get_workspace_from_cli_opts(
        instance, version=__version__, workspace_opts=opts, allow_in_process=True
    ) as context:
        yield context


def submit_fleet_runs(
    instance: Any,
    ranges: Sequence[Sequence[str]],
    *,
    tags: dict[str, str],
    run_config: dict[str, Any],
    workspace: str | None = None,
) -> tuple[str, list[str]]:
    """Create and submit one ``kit_job`` run per range; returns (fleet id, run ids)."""
    from dagster._cli.job import _create_run
    from dagster._cli.workspace.cli_target import (
        get_code_location_from_workspace,
        get_remote_job_from_remote_repo,
        get_remote_repository_from_code_location,
    )

    fleet_id = uuid.uuid4().hex[:12]
    run_ids: list[str] = []
    with _workspace(instance, workspace) as context:
        location = get_code_location_from_workspace(context, None)
        repository = get_remote_repository_from_code_location(location, None)
        job = get_remote_job_from_remote_repo(repository, KIT_JOB)
        for kits in ranges:
            run_tags = {
                **tags,
                FLEET_TAG: fleet_id,
                FLEET_SIZE_TAG: str(len(kits)),
                RANGE_START: kits[0],
                RANGE_END: kits[-1],
            }
            if len(kits) == 1:  # a single kit is an ordinary one-partition run
                run_tags = {k: v for k, v in run_tags.items() if k not in (RANGE_START, RANGE_END)}
                run_tags["dagster/partition"] = kits[0]
            run = _create_run(
                instance=instance,
                code_location=location,
                remote_repo=repository,
                remote_job=job,
                run_config=run_config,
                tags=run_tags,
                op_selection=None,
                run_id=None,
            )
            instance.submit_run(run.run_id, context)
            run_ids.append(run.run_id)
    return fleet_id, run_ids
