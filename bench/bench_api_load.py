"""Benchmark: the scene API under concurrent load, on SQLite or PostgreSQL (issue 9).

Runs the real app with uvicorn on loopback in a subprocess and loads it with httpx (async):

1. one scene generation (the baseline), then N (default 32) at once: errors and the wall-time
   ratio to the single scene. The offline provider simulates a latency per image (default
   2 s) that dominates, as a remote provider's does; the provider's concurrency limit is set
   to the number of scenes so the ratio measures the API and the catalog, not that limit.
2. 200 concurrent ``GET /avatar-kits`` (admin) and 100 concurrent ``GET /scenes/memories``
   (a plain user): errors, p50/p99/max latency.
3. 8 concurrent kit runs (the Dagster kit asset, each in its own process, like the
   multiprocess executor) writing to the same catalog: failed runs.

    .venv/bin/python bench/bench_api_load.py --db sqlite
    .venv/bin/python bench/bench_api_load.py --db postgresql   # 127.0.0.1:5432, trust auth

Exit status 1 when any request or kit run failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' fixtures (temporary PostgreSQL databases, kit runs)

import httpx  # noqa: E402

PYTHON = sys.executable


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'catalog.db'}"
        return
    from avatar_pipeline_tests.db_fixtures import temporary_postgres_database

    with temporary_postgres_database() as url:
        yield url


def seed(url: str, secret: str, tmp: Path, memories: int, kits: int) -> dict[str, Any]:
    """Migrate; an admin, a user, a character with an approved kit, an episode, memories."""
    from avatar_pipeline.catalog import repository as repo
    from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
    from avatar_pipeline.catalog.migrate import upgrade_database
    from avatar_pipeline.serving.security import create_access_token
    from avatar_pipeline.settings import Settings

    upgrade_database(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    settings = Settings(_env_file=None, signing_secret=secret)  # type: ignore[arg-type,call-arg]
    with session_scope(factory) as session:
        admin = repo.create_user(session, email="admin@bench.example", role="admin")
        user = repo.create_user(session, email="user@bench.example", role="user")
        character = repo.create_character(session, name="Yuki")
        episode = repo.create_episode(
            session, character_id=character.id, user_id=user.id, title="Cafe date"
        )
        for i in range(kits):
            repo.create_kit(
                session,
                name=f"Kit {i}",
                appearance_prompt="young woman, shoulder-length black hair, warm brown eyes",
                style_prompt="anime style, soft cel shading",
                character_id=character.id,
            )
        for i in range(memories):
            scene = repo.create_scene_image(
                session,
                user_id=user.id,
                episode_id=episode.id,
                storage_path=f"scenes/{user.id}/{episode.id}/{uuid.uuid4()}.png",
                prompt=f"memory {i}",
            )
            session.flush()
            repo.set_scene_memory(session, scene_id=scene.id, user_id=user.id, is_memory=True)
    engine.dispose()
    ttl = timedelta(hours=2)
    return {
        "admin": {"Authorization": f"Bearer {create_access_token(settings, admin.id, ttl)}"},
        "user": {"Authorization": f"Bearer {create_access_token(settings, user.id, ttl)}"},
        "episode_id": str(episode.id),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    command = [PYTHON, "-m", "uvicorn", "avatar_pipeline.serving.main:app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                if process.poll() is not None:
                    raise RuntimeError(f"uvicorn exited: {log.read_text()[-2000:]}")
                time.sleep(0.3)
            else:
                raise RuntimeError("uvicorn did not become healthy in 300 s")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            problems = [line for line in log.read_text().splitlines() if "catalog" in line]
            if problems:
                print(
                    f"server log: {len(problems)} catalog problems, e.g.:",
                    *problems[:3],
                    sep="\n  ",
                )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def burst(
    base: str, method: str, path: str, count: int, headers: dict[str, str], json: Any = None
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:

        async def one() -> tuple[int | str, float]:
            start = time.perf_counter()
            try:
                response = await client.request(method, path, headers=headers, json=json)
                status: int | str = response.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            return status, time.perf_counter() - start

        start = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(count)))
        wall = time.perf_counter() - start
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    latencies = [t for _, t in results]
    ok = 201 if method == "POST" else 200
    return {
        "count": count,
        "errors": sum(n for s, n in statuses.items() if s != str(ok)),
        "statuses": statuses,
        "wall_s": wall,
        "p50_s": statistics.median(latencies),
        "p99_s": _pct(latencies, 0.99),
        "max_s": max(latencies),
    }


def kit_worker(args: argparse.Namespace) -> int:
    """One kit run in this process (the Dagster kit asset, like one step of a real run)."""
    import dagster as dg

    from avatar_pipeline.resources import OfflineImageServiceResource
    from avatar_pipeline_tests.kit_runs import materialize_kit
    from avatar_pipeline_tests.pipeline_fixtures import create_kit, make_resources

    root = Path(args.worker_root)
    resources = make_resources(
        root,
        args.database_url,
        image_service=OfflineImageServiceResource(
            cache_dir=str(root / "image_cache"),
            image_size=args.kit_size,
            latency_seconds=args.kit_latency,
        ),
    )
    kit_id = create_kit(resources, name=f"Bench kit {root.name}", character=f"C {root.name}")
    with dg.instance_for_test() as instance:
        result = materialize_kit(resources, instance, kit_id)
    if not result.success:
        failures = [
            str(e.event_specific_data.error.message)[:300]  # type: ignore[union-attr]
            for e in result.all_events
            if e.event_type_value == "STEP_FAILURE"
        ]
        print(f"kit run {kit_id} FAILED: {failures}", flush=True)
        return 1
    print(f"kit run {kit_id} ok", flush=True)
    return 0


def kit_runs(url: str, tmp: Path, count: int, latency: float, size: int) -> dict[str, Any]:
    start = time.perf_counter()
    processes = []
    for i in range(count):
        root = tmp / f"kit-run-{i}"
        root.mkdir()
        command = [PYTHON, __file__, "--kit-worker", "--database-url", url]
        command += ["--worker-root", str(root), "--kit-latency", str(latency)]
        command += ["--kit-size", str(size)]
        log = (root / "run.log").open("w")
        processes.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), root))
    failed = []
    for process, root in processes:
        if process.wait(1800) != 0:
            failed.append(root.name)
            print((root / "run.log").read_text()[-3000:], file=sys.stderr)
    return {"count": count, "failed": len(failed), "wall_s": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--latency", type=float, default=2.0, help="offline latency per image")
    parser.add_argument("--scenes", type=int, default=32)
    parser.add_argument("--kit-gets", type=int, default=200)
    parser.add_argument("--memory-gets", type=int, default=100)
    parser.add_argument("--kit-runs", type=int, default=8)
    parser.add_argument("--kit-latency", type=float, default=0.5)
    parser.add_argument("--kit-size", type=int, default=256)
    parser.add_argument("--scene-size", type=int, default=512)
    parser.add_argument("--kit-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--worker-root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kit_worker:
        return kit_worker(args)

    failed = False
    with tempfile.TemporaryDirectory() as tmp_name, database(args.db, Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        secret = secrets.token_urlsafe(32)
        world = seed(url, secret, tmp, memories=20, kits=20)
        env = {
            **os.environ,
            "AVATAR_ENVIRONMENT": "test",
            "AVATAR_DATABASE_URL": url,
            "AVATAR_VAR_DIR": str(tmp / "var"),
            "AVATAR_STORAGE_LOCAL_ROOT": str(tmp / "objects"),
            "AVATAR_SIGNING_SECRET": secret,
            "AVATAR_OFFLINE_LATENCY_SECONDS": str(args.latency),
            "AVATAR_REPLICATE_MAX_CONCURRENCY": str(max(args.scenes, 1)),
        }
        body = {
            "episode_id": world["episode_id"],
            "moment": "laughing at a joke in the cafe",
            "width": args.scene_size,
            "height": args.scene_size,
        }
        print(f"catalog: {args.db}; offline latency {args.latency} s per image", flush=True)
        with server(env, free_port(), tmp / "uvicorn.log") as base:
            warm = asyncio.run(burst(base, "POST", "/scenes/generate", 1, world["user"], body))
            single = asyncio.run(burst(base, "POST", "/scenes/generate", 1, world["user"], body))
            many = asyncio.run(
                burst(base, "POST", "/scenes/generate", args.scenes, world["user"], body)
            )
            ratio = many["wall_s"] / single["wall_s"]
            print(
                f"scenes: 1 in {single['wall_s']:.2f} s (warm-up {warm['wall_s']:.2f} s); "
                f"{args.scenes} concurrent in {many['wall_s']:.2f} s = {ratio:.2f}x one "
                f"(target <= 1.5x); errors {many['errors']} {many['statuses']}",
                flush=True,
            )
            failed |= bool(many["errors"] or single["errors"])
            for label, path, count, who in (
                ("GET /avatar-kits", "/avatar-kits", args.kit_gets, "admin"),
                ("GET /scenes/memories", "/scenes/memories", args.memory_gets, "user"),
            ):
                result = asyncio.run(burst(base, "GET", path, count, world[who]))
                print(
                    f"{label} x{count} concurrent: errors {result['errors']} "
                    f"{result['statuses']}; p50 {result['p50_s'] * 1000:.0f} ms, "
                    f"p99 {result['p99_s'] * 1000:.0f} ms, max {result['max_s'] * 1000:.0f} ms, "
                    f"wall {result['wall_s']:.2f} s",
                    flush=True,
                )
                failed |= bool(result["errors"])
        if args.kit_runs:
            runs = kit_runs(url, tmp, args.kit_runs, args.kit_latency, args.kit_size)
            print(
                f"kit runs: {runs['count']} concurrent (14 images each, {args.kit_latency} s "
                f"latency): {runs['failed']} failed, wall {runs['wall_s']:.1f} s",
                flush=True,
            )
            failed |= bool(runs["failed"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
