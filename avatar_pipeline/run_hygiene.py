"""Dagster runs that died without saying so, and the pool slots they hold.

A run worker killed with ``kill -9`` (or an in-process run whose process died: the demo, a
test, ``dagster asset materialize``) stays STARTED for good and keeps its ``image_provider``
pool slot, so after a few kills every later kit run waits in the queue forever.

- The shipped instance configuration turns on run monitoring (the daemon marks runs whose worker
  died as failed, and frees the slots of ended runs after ``free_slots_after_run_end_seconds``).
- In-process runs have no worker the daemon can check: :func:`tag_in_process_run` records the
  process id and host in the run's tags, and :func:`reap_dead_runs` marks a STARTED run whose
  process is gone as failed and frees its pool slots. The sweep (command and job) and the demo
  call it before they start.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import dagster as dg

logger = logging.getLogger(__name__)

PID_TAG = "avatar/pid"
HOST_TAG = "avatar/host"


def in_process_tags() -> dict[str, str]:
    """Tags that let :func:`reap_dead_runs` tell whether an in-process run's process lives."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (killed, not yet reaped by its parent) is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


@dataclass
class ReapedRun:
    run_id: str
    job_name: str
    pid: int
    freed_slots: bool


def reap_dead_runs(instance: dg.DagsterInstance, *, apply: bool = True) -> list[ReapedRun]:
    """Mark STARTED/STARTING runs of this host whose recorded process is gone as failed, and free
    the concurrency (pool) slots they hold. Returns what was (or, with ``apply=False``, would be)
    reaped."""
    host = socket.gethostname()
    reaped = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    for record in records:
        run = record.dagster_run
        if run.tags.get(HOST_TAG) != host or not run.tags.get(PID_TAG, "").isdigit():
            continue
        pid = int(run.tags[PID_TAG])
        if pid == os.getpid() or _alive(pid):
            continue
        freed = False
        if apply:
            instance.report_run_failed(
                run,
                message=f"the run's process {pid} on {host} died (killed?); marked failed and "
                "its pool slots freed",
            )
            freed = _free_slots(instance, run.run_id)
            logger.warning("reaped dead run %s (process %d)", run.run_id, pid)
        reaped.append(ReapedRun(run.run_id, run.job_name, pid, freed))
    return reaped


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> bool:
    storage = instance.event_log_storage
    free = getattr(storage, "free_concurrency_slots_for_run", None)
    if free is None or not getattr(storage, "supports_global_concurrency_limits", False):
        return False
    free(run_id)
    return True


def held_pool_slots(instance: dg.DagsterInstance, pool: str) -> list[str]:
    """Run ids holding a slot of ``pool`` (for tests and the sweep's listing)."""
    storage = instance.event_log_storage
    if not getattr(storage, "supports_global_concurrency_limits", False):
        return []
    info = storage.get_concurrency_info(pool)
    return [s.run_id for s in info.claimed_slots]


def fail_own_runs(instance: dg.DagsterInstance, reason: str) -> list[str]:
    """Mark this process's STARTED in-process runs failed and free their slots (on an
    interrupt: Ctrl-C during the demo must not leave a run STARTED for good)."""
    failed = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
            tags={PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
        )
    )
    for record in records:
        run = record.dagster_run
        instance.report_run_failed(run, message=reason)
        _free_slots(instance, run.run_id)
        failed.append(run.run_id)
    return failed


def kits_in_progress(instance) -> set[str]:  # type: ignore[no-untyped-def]
    """Kits a queued or running run covers (the sweep leaves their objects alone)."""
    import dagster as dg

    from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME, kits_of_run

    records = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
                dg.DagsterRunStatus.CANCELING,
            ]
        )
    )
    # a run over a range of kits (fleet, backfill) covers every kit of its range
    order = list(instance.get_dynamic_partitions(KITS_PARTITION_NAME))
    return {kit for r in records for kit in kits_of_run(r.dagster_run.tags, order)}
