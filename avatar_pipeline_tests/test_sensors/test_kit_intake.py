"""Kit intake starts exactly one run per kit, whatever the order of rows, partitions and ticks.

The sensor daemon is emulated at its boundary: every tick evaluates ``kit_sensor`` and applies
its result as the daemon does (dynamic partitions first, then one run per run key not seen
before for this sensor), in a thread ticking while the kits arrive — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.utils import make_new_run_id

from avatar_pipeline.assets.partitions import KITS_PARTITION_NAME
from avatar_pipeline.catalog import kit_intake
from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.demo_run import intake_demo_kits
from avatar_pipeline.jobs import kit_job
from avatar_pipeline.sensors import kit_sensor
from avatar_pipeline_tests.pipeline_fixtures import create_kit, make_resources

RUN_KEY_TAG = "dagster/run_key"
SENSOR_TAG = "dagster/sensor_name"
PARTITION_TAG = "dagster/partition"


class SensorDaemon:
    """kit_sensor ticking in a thread, applying results like the sensor daemon."""

    def __init__(self, instance: dg.DagsterInstance, resources: dict[str, Any]) -> None:
        self.instance = instance
        self.resources = resources
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.ticks = 0
        self.errors: list[BaseException] = []

    def tick(self) -> None:
        with dg.build_sensor_context(
            instance=self.instance, resources={"catalog": self.resources["catalog"]}
        ) as context:
            result = kit_sensor(context)
        self.ticks += 1
        if not isinstance(result, dg.SensorResult):
            return
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name,
                [
                    k
                    for k in request.partition_keys
                    if not self.instance.has_dynamic_partition(request.partitions_def_name, k)
                ],
            )
        for request in result.run_requests or []:
            tags = {RUN_KEY_TAG: request.run_key, SENSOR_TAG: "kit_sensor"}
            if self.instance.get_run_records(dg.RunsFilter(tags=tags), limit=1):
                continue  # the daemon's run-key de-duplication
            launch(self.instance, request.partition_key, {**request.tags, **tags})

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except BaseException as exc:  # surfaced by stop()
                self.errors.append(exc)
                return
            time.sleep(0.005)

    def __enter__(self) -> SensorDaemon:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self.errors, self.errors
        self.tick()  # a last tick after everything settled must not launch anything new
        self.tick()


def launch(instance: dg.DagsterInstance, kit_id: str, tags: dict[str, str]) -> None:
    """Record a kit_job run for the kit (what the daemon's submission or the demo's
    execute_in_process writes to run storage first; executing it is not the point here)."""
    instance.add_run(
        dg.DagsterRun(
            job_name=kit_job.name,
            run_id=make_new_run_id(),
            tags={**tags, PARTITION_TAG: kit_id},
            status=dg.DagsterRunStatus.NOT_STARTED,
        )
    )


def runs_per_kit(instance: dg.DagsterInstance) -> Counter[str]:
    return Counter(r.dagster_run.tags.get(PARTITION_TAG) for r in instance.get_run_records())


@pytest.fixture(params=["sqlite", "postgresql"])
def resources(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield make_resources(tmp_path)
        return
    from avatar_pipeline_tests.db_fixtures import temporary_postgres_database

    with temporary_postgres_database() as url:
        yield make_resources(tmp_path, database_url=url)


def test_demo_intake_starts_one_run_per_kit_while_the_sensor_ticks(
    resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    with SensorDaemon(instance, resources) as daemon:
        deadline = time.time() + 120
        while daemon.ticks < 2 and time.time() < deadline:
            time.sleep(0.01)
        kit_ids = intake_demo_kits(resources["catalog"], instance)
        time.sleep(0.05)  # ticks see the rows and the partitions before the demo's runs
        for kit_id in kit_ids:
            launch(instance, kit_id, {"avatar/trigger": "demo"})
            time.sleep(0.02)
    assert daemon.ticks >= 4
    assert runs_per_kit(instance) == Counter(dict.fromkeys(kit_ids, 1))
    with resources["catalog"].session() as session:
        assert set(kit_intake.claims(session).items()) == {(k, kit_intake.DEMO) for k in kit_ids}


def test_api_intake_starts_one_run_per_kit_while_the_sensor_ticks(
    resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    with SensorDaemon(instance, resources):
        kit_ids = []
        for n in range(4):  # what POST /avatar-kits writes: a kit row, nothing in Dagster
            kit_ids.append(create_kit(resources, f"Intake {n}", character=f"Intake {n}"))
            time.sleep(0.01)
        deadline = time.time() + 120
        while set(instance.get_dynamic_partitions(KITS_PARTITION_NAME)) < set(kit_ids):
            assert time.time() < deadline, "the sensor never picked the kits up"
            time.sleep(0.01)
    assert runs_per_kit(instance) == Counter(dict.fromkeys(kit_ids, 1))


@pytest.mark.parametrize("resources", ["sqlite"], indirect=True)
def test_a_partition_added_before_the_kit_row_still_gets_exactly_one_run(
    resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    kit_id = str(uuid.uuid5(uuid.UUID("6f1c2a52-4be5-4d8e-9d0e-0a7a3c1b2d10"), "Early"))
    instance.add_dynamic_partitions(KITS_PARTITION_NAME, [kit_id])  # partition first
    with SensorDaemon(instance, resources):
        assert create_kit(resources, "Early", character="Early") == kit_id
        deadline = time.time() + 120
        while not runs_per_kit(instance) and time.time() < deadline:
            time.sleep(0.01)
    assert runs_per_kit(instance) == Counter({kit_id: 1})


@pytest.mark.parametrize("resources", ["sqlite"], indirect=True)
def test_a_kit_someone_else_claimed_is_not_launched_by_the_sensor(
    resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    kit_id = create_kit(resources, "Claimed", character="Claimed")
    with resources["catalog"].session() as session:
        assert kit_intake.claim_kit(session, kit_id, "fleet-cli")
        assert not kit_intake.claim_kit(session, kit_id, kit_intake.SENSOR)  # one winner
        assert repo.get_kit(session, uuid.UUID(kit_id)).status == "draft"
    with SensorDaemon(instance, resources):
        time.sleep(0.1)
    assert runs_per_kit(instance) == Counter()
