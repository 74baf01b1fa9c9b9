"""Fleet re-generation through the Dagster daemon on a dagster-postgres instance.

What it does, in one run (several minutes; not part of the test suite):

1. Creates two fresh PostgreSQL databases on 127.0.0.1:5432 (the catalog and the Dagster
   instance), a DAGSTER_HOME with dagster-postgres storage and the queued run coordinator, and
   starts the project's fake Replicate server (``avatar_pipeline_tests/fakes``) with LATENCY_S
   per prediction.
2. Starts a real ``dagster-daemon run`` on the repository's workspace (the code location is
   configured through AVATAR_* variables: Replicate provider pointed at the fake server, 16
   calls in flight and 600 creates/minute as the instance-wide budget in the catalog).
3. One kit, then 32 kits, each submitted exactly as ``avatar-pipeline fleet regenerate`` does
   (``kit_job`` runs over ranges of at most 16 kit partitions, queued for the daemon; with
   ``--backfill``, one asset backfill as ``fleet regenerate --backfill`` does), and waits for
   each to end.
4. Reports wall time against the provider-bound floor (creates / concurrency x latency, never
   below one kit's critical path of 3 layers x latency), failed runs, what the fake provider saw
   (most predictions processing at once, most creates in any minute), and each run worker's
   fixed cost (wall, CPU and peak RSS read from /proc, minus the kit step's own time).

Usage: .venv/bin/python bench/bench_fleet.py [--kits 32] [--latency 2] [--keep] [--backfill]
       [--profile FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get("AVATAR_TEST_POSTGRES_URL") or (
    "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
CONCURRENCY = 16
CREATES_PER_MINUTE = 600
SLOTS_PER_KIT = 14
LAYERS = 3  # portrait -> full body + expressions -> poses


def _admin_engine() -> Any:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    return create_engine(ADMIN_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def create_database(name: str) -> str:
    from sqlalchemy.engine import make_url

    with _admin_engine().connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    with _admin_engine().connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dagster_yaml(db: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(ADMIN_URL)
    pg = f"""\
    postgres_db:
      hostname: {url.host or "127.0.0.1"}
      port: {url.port or 5432}
      username: {url.username or "postgres"}
      password: "{url.password or ""}"
      db_name: {db}
      scheme: postgresql+psycopg2
"""
    storages = "".join(
        f"{kind}_storage:\n  module: avatar_pipeline.instance_storage\n"
        f"  class: PooledPostgres{cls}Storage\n  config:\n{pg}"
        for kind, cls in (("run", "Run"), ("event_log", "EventLog"), ("schedule", "Schedule"))
    )
    return f"""\
{storages}run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: 8
  pools:
    default_limit: 4
telemetry:
  enabled: false
"""


# -- run workers, read from /proc -------------------------------------------------------------


@dataclass
class Worker:
    pid: int
    run_id: str
    first_seen: float
    last_seen: float
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0


@dataclass
class WorkerSampler:
    """Samples every run worker (a spawned child of the code server) every ``interval`` seconds."""

    interval: float = 0.1
    workers: dict[int, Worker] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> WorkerSampler:
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._stop.is_set():
            now = time.time()
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                pid = int(entry)
                try:
                    if pid not in self.workers and not _is_run_worker(pid):
                        continue
                    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                cpu = (int(stat[11]) + int(stat[12])) / tick
                hwm = next(
                    (
                        int(line.split()[1])
                        for line in status.splitlines()
                        if line.startswith("VmHWM")
                    ),
                    0,
                )
                worker = self.workers.get(pid)
                if worker is None:
                    worker = self.workers[pid] = Worker(pid, "", now, now)
                worker.last_seen = now
                worker.cpu_s = max(worker.cpu_s, cpu)
                worker.peak_rss_mb = max(worker.peak_rss_mb, hwm / 1024)
            time.sleep(self.interval)


def _is_run_worker(pid: int) -> bool:
    """A run worker: a multiprocessing child of the code server (``dagster api grpc``)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"spawn_main" not in cmd or b"resource_tracker" in cmd:
            return False
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        parent = Path(f"/proc/{ppid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return False
    return b"grpc" in parent


def match_workers(sampler: WorkerSampler, records: list[Any]) -> None:
    """Each run gets the worker first seen closest before its start (workers carry no id)."""
    free = sorted((w for w in sampler.workers.values() if not w.run_id), key=lambda w: w.first_seen)
    for r in sorted(records, key=lambda r: r.start_time or 0):
        before = [w for w in free if r.start_time and w.first_seen <= r.start_time + 0.5]
        if before:
            before[-1].run_id = r.dagster_run.run_id
            free.remove(before[-1])


# -- the bench ---------------------------------------------------------------------------------


def seed_kits(catalog_url: str, n: int, prefix: str) -> list[str]:
    """Kits written with their intake claim in the same transaction (the bench launches them)."""
    from avatar_pipeline.catalog import kit_intake
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope

    engine = make_engine(catalog_url)
    ids = []
    with session_scope(make_session_factory(engine)) as session:
        for i in range(n):
            character = repo.create_character(session, name=f"{prefix} {i}")
            kit = repo.create_kit(
                session,
                name=f"{prefix} {i:03d}",
                appearance_prompt=f"character number {i}, short hair, round glasses, green coat",
                style_prompt="anime style, soft cel shading",
                negative_prompt="photorealistic, multiple people",
                character_id=character.id,
            )
            ids.append(str(kit.id))
        kit_intake.claim_kits(session, ids, "bench")
    engine.dispose()
    return ids


def phase(
    instance: Any,
    catalog: Any,
    kit_ids: list[str],
    sampler: WorkerSampler,
    latency: float,
    backfill: bool = False,
) -> dict[str, Any]:
    import dagster as dg

    from avatar_pipeline.commands.fleet import (
        launch_fleet_backfill,
        launch_fleet_runs,
        wait_for_backfill,
    )

    submitted = time.time()
    own_cpu = time.process_time()  # this process: the fake provider's threads, and polling
    if backfill:
        backfill_id = launch_fleet_backfill(instance, catalog, kit_ids, title="bench")
        run_filter = dg.RunsFilter(tags={"dagster/backfill": backfill_id})
    else:  # what `avatar-pipeline fleet regenerate` does
        backfill_id, _ = launch_fleet_runs(
            instance, catalog, kit_ids, workspace=str(ROOT / "workspace.yaml")
        )
        run_filter = dg.RunsFilter(tags={"avatar/fleet": backfill_id})
    last = [""]

    def show(p: Any) -> None:
        line = p.bar()
        if line != last[0]:
            print(f"  {time.time() - submitted:6.1f}s {line}", flush=True)
            last[0] = line

    progress = wait_for_backfill(instance, backfill_id, poll_s=0.5, timeout_s=3600, show=show)
    records = instance.get_run_records(run_filter)
    starts = [r.start_time for r in records if r.start_time]
    ends = [r.end_time for r in records if r.end_time]
    created = [r.create_timestamp.timestamp() for r in records]
    creates = len(kit_ids) * SLOTS_PER_KIT
    critical = LAYERS * latency
    floor = max(creates / CONCURRENCY * latency, critical)
    wall_submit = max(ends) - submitted
    wall_runs = max(ends) - min(created)
    runs = []
    time.sleep(0.5)
    match_workers(sampler, records)
    for r in records:
        worker = next(
            (w for w in sampler.workers.values() if w.run_id == r.dagster_run.run_id), None
        )
        step = _step_seconds(instance, r.dagster_run.run_id)
        runs.append(
            {
                "run_id": r.dagster_run.run_id[:8],
                "status": r.dagster_run.status.value,
                "kits": _kits_in(r.dagster_run.tags),
                "run_wall_s": round((r.end_time or 0) - (r.start_time or 0), 2),
                "kit_step_s": round(step, 2),
                "worker_wall_s": round(worker.last_seen - worker.first_seen, 2) if worker else None,
                "worker_cpu_s": round(worker.cpu_s, 2) if worker else None,
                "worker_peak_rss_mb": round(worker.peak_rss_mb) if worker else None,
            }
        )
    return {
        "kits": len(kit_ids),
        "fleet": backfill_id,
        "submitted_as": "asset backfill" if backfill else "kit_job runs (fleet regenerate)",
        "status": progress.status,
        "kits_done": len(progress.done),
        "kits_failed": len(progress.failed),
        # images the gate rejected (not promoted; the run goes on): a WARN, not a failed run
        "kits_with_a_rejected_image": len(progress.rejected),
        "runs": len(records),
        "failed_runs": sum(1 for r in records if r.dagster_run.status.value == "FAILURE"),
        "runs_stopped_only_by_the_gate": sum(
            1
            for r in records
            if r.dagster_run.status.value == "FAILURE"
            and _gate_only_failure(instance, r.dagster_run.run_id)
        ),
        "creates": creates,
        "floor_s": round(floor, 1),
        # CPU the fake provider took on this machine (a real provider's is not ours)
        "bench_process_cpu_s": round(time.process_time() - own_cpu, 1),
        "wall_from_submit_s": round(wall_submit, 1),
        "ratio_from_submit": round(wall_submit / floor, 2),
        "daemon_pickup_s": round(min(created) - submitted, 1),
        "wall_first_run_to_last_end_s": round(wall_runs, 1),
        "ratio_runs": round(wall_runs / floor, 2),
        "first_start_to_last_end_s": round(max(ends) - min(starts), 1),
        "run_details": runs,
    }


def _gate_only_failure(instance: Any, run_id: str) -> bool:
    """True when the run's only failure is blocking consistency checks (kept as candidates)."""
    import dagster as dg

    failures = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_FAILURE
    ).records
    return bool(failures) and all(
        "DagsterAssetCheckFailedError" in str(rec.event_log_entry.dagster_event.event_specific_data)
        for rec in failures
    )


def _kits_in(tags: Any) -> str:
    start = tags.get("dagster/asset_partition_range_start")
    return "range" if start else tags.get("dagster/partition", "?")


def _step_seconds(instance: Any, run_id: str) -> float:
    import dagster as dg

    stats = instance.get_run_step_stats(run_id)
    for s in stats:
        if s.step_key == "kit_images" and s.start_time and s.end_time:
            return s.end_time - s.start_time
    del dg
    return 0.0


def _stop_code_servers(marker: str) -> None:
    """The daemon's code server (``dagster api grpc``) outlives it: stop ours (by its home)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"api\0grpc" in cmd and marker.encode() in cmd:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry), signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kits", type=int, default=32)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--megapixels", type=float, default=0.25)
    parser.add_argument("--keep", action="store_true", help="keep the databases and files")
    parser.add_argument(
        "--backfill",
        action="store_true",
        help="submit asset backfills (fleet regenerate --backfill) instead of the runs",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="sample the daemon and every process it starts (run workers) with py-spy into FILE "
        "(raw collapsed stacks; needs `pip install py-spy`); inflates wall times",
    )
    args = parser.parse_args()

    from avatar_pipeline_tests.fakes.replicate_server import DEFAULT_TOKEN, FakeReplicateServer

    tag = uuid.uuid4().hex[:8]
    catalog_db, dagster_db = f"fleet_bench_{tag}_catalog", f"fleet_bench_{tag}_dagster"
    tmp = Path(tempfile.mkdtemp(prefix="bench_fleet_"))
    catalog_url = create_database(catalog_db)
    create_database(dagster_db)
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(dagster_yaml(dagster_db))
    fake = FakeReplicateServer(processing_s=args.latency, megapixels=args.megapixels).start()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "AVATAR_ENVIRONMENT": "local",
        "AVATAR_VAR_DIR": str(tmp / "var"),
        "AVATAR_DATABASE_URL": catalog_url,
        "AVATAR_IMAGE_PROVIDER": "replicate",
        "AVATAR_REPLICATE_BASE_URL": fake.base_url,
        "REPLICATE_API_TOKEN": DEFAULT_TOKEN,
        "AVATAR_REPLICATE_MAX_CONCURRENCY": str(CONCURRENCY),
        "AVATAR_REPLICATE_PREDICTIONS_PER_MINUTE": str(CREATES_PER_MINUTE),
        "AVATAR_PROVIDER_BUDGET": "instance",
        "AVATAR_EMBEDDER": "perceptual",
    }
    os.environ.update(env)
    daemon = None
    log = open(tmp / "daemon.log", "w")  # noqa: SIM115
    sampler = WorkerSampler().start()
    try:
        from avatar_pipeline.catalog.migrate import upgrade_database

        upgrade_database(catalog_url)
        single = seed_kits(catalog_url, 1, f"Solo {tag}")
        fleet = seed_kits(catalog_url, args.kits, f"Fleet {tag}")

        import dagster as dg

        from avatar_pipeline.resources import resources_for_environment

        catalog = resources_for_environment()["catalog"]
        command = [
            str(ROOT / ".venv/bin/dagster-daemon"),
            "run",
            "-w",
            str(ROOT / "workspace.yaml"),
        ]
        if args.profile:
            spy = [str(ROOT / ".venv/bin/py-spy"), "record", "--subprocesses", "-r", "25", "-f"]
            command = [*spy, "raw", "-o", args.profile, "--", *command]
        daemon = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        results: dict[str, Any] = {}
        with dg.DagsterInstance.get() as instance:
            print(f"one kit ({args.latency:g} s per prediction):", flush=True)
            results["one_kit"] = phase(
                instance, catalog, single, sampler, args.latency, args.backfill
            )
            seen_before = fake.load_stats()["predictions"]
            print(f"{args.kits} kits:", flush=True)
            results["fleet"] = phase(instance, catalog, fleet, sampler, args.latency, args.backfill)
        stats = fake.load_stats()
        results["provider"] = {
            **stats,
            "expected_predictions": (1 + args.kits) * SLOTS_PER_KIT,
            "fleet_predictions": stats["predictions"] - seen_before,
            "concurrency_limit": CONCURRENCY,
            "creates_per_minute_limit": CREATES_PER_MINUTE,
            "limits_exceeded": stats["max_concurrent"] > CONCURRENCY
            or stats["max_creates_per_window"] > CREATES_PER_MINUTE,
        }
        solo = results["one_kit"]["run_details"][0]
        if solo["worker_wall_s"] is not None:
            results["run_fixed_cost"] = {
                "worker_wall_s": solo["worker_wall_s"],
                "kit_step_s": solo["kit_step_s"],
                "fixed_wall_s": round(solo["worker_wall_s"] - solo["kit_step_s"], 2),
                "worker_cpu_s": solo["worker_cpu_s"],
                "worker_peak_rss_mb": solo["worker_peak_rss_mb"],
                "note": "one-kit run worker, sampled from /proc every 0.1 s",
            }
        print(json.dumps(results, indent=2))
        f = results["fleet"]
        errors = f["failed_runs"] - f["runs_stopped_only_by_the_gate"]
        ok = errors == 0 and not results["provider"]["limits_exceeded"]
        print(
            f"\nfleet of {f['kits']}: {f['wall_from_submit_s']} s from submission "
            f"({f['ratio_from_submit']}x the {f['floor_s']} s floor; "
            f"{f['ratio_runs']}x from the first run created), {f['runs']} runs, "
            f"{f['failed_runs']} failed ({f['runs_stopped_only_by_the_gate']} only by the "
            f"consistency gate); provider peak {stats['max_concurrent']} in flight, "
            f"{stats['max_creates_per_window']} creates in a minute"
        )
        return 0 if ok else 1
    finally:
        sampler.stop()
        if daemon is not None and args.profile:
            os.kill(daemon.pid, signal.SIGINT)  # py-spy writes its file on SIGINT
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.wait(60)
        if daemon is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
        _stop_code_servers(str(home))
        log.close()
        fake.stop()
        if args.keep:
            print(f"kept: {tmp}, databases {catalog_db} {dagster_db}")
        else:
            time.sleep(1)
            drop_database(catalog_db)
            drop_database(dagster_db)


if __name__ == "__main__":
    sys.exit(main())
