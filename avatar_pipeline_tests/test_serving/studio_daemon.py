"""Acts as the Dagster daemon for the studio tests, in-process and real: it ticks ``kit_sensor``
and ``report_refresh_sensor`` on a test instance (keeping their cursors), adds the partitions
they ask for, executes each run request with its job (run config, tags, asset selection), and
then the request-status sensors, as ``dagster-daemon`` would around each run."""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any

import dagster as dg

from avatar_pipeline import sensors
from avatar_pipeline.assets.reports import fleet_consistency
from avatar_pipeline.jobs import fleet_report_job, kit_job, kit_report_job
from avatar_pipeline.sensors.report_refresh import report_refresh_sensor
from avatar_pipeline_tests.kit_runs import KIT_ASSETS


class InProcessDaemon:
    def __init__(self, resources: dict[str, Any], instance: dg.DagsterInstance) -> None:
        self.resources = resources
        self.instance = instance
        self.defs = dg.Definitions(
            assets=[*KIT_ASSETS, fleet_consistency],
            jobs=[kit_job, kit_report_job, fleet_report_job],
            resources=resources,
        )
        self.cursors: dict[str, str | None] = {}
        self.timings: list[tuple[str, str, float]] = []  # (job, trigger, seconds) per run
        self.runs: list[dg.ExecuteInProcessResult] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ one tick
    def tick(self) -> int:
        """Evaluate the sensors once and execute what they ask for; the number of kit runs
        (report refreshes not counted)."""
        with self._lock:
            runs = 0
            for sensor, job in ((sensors.kit_sensor, kit_job), (report_refresh_sensor, None)):
                runs += self._evaluate(sensor, job)
            return runs

    def _evaluate(self, sensor: Any, default_job: Any) -> int:
        with dg.build_sensor_context(
            instance=self.instance,
            resources={"catalog": self.resources["catalog"]},
            cursor=self.cursors.get(sensor.name),
        ) as context:
            result = sensor(context)
        if not isinstance(result, dg.SensorResult):
            return 0
        if result.cursor is not None:
            self.cursors[sensor.name] = result.cursor
        for request in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys or [])
            )
        kit_runs = 0
        for run_request in result.run_requests or []:
            job_name = run_request.job_name or default_job.name
            self._execute(run_request, job_name)
            kit_runs += job_name == kit_job.name
        return kit_runs

    def _execute(self, run_request: dg.RunRequest, job_name: str) -> None:
        job = self.defs.resolve_job_def(job_name)
        if run_request.asset_selection:
            job = job.get_subset(asset_selection=set(run_request.asset_selection))
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=self.instance,
            partition_key=run_request.partition_key,
            run_config=run_request.run_config or {},
            tags=dict(run_request.tags),
            raise_on_error=False,
        )
        self.runs.append(result)
        self.timings.append(
            (job_name, run_request.tags.get("avatar/trigger", ""), time.perf_counter() - started)
        )
        if job_name == kit_job.name:
            self._run_status_sensors(result)

    def _run_status_sensors(self, result: dg.ExecuteInProcessResult) -> None:
        resources = {"catalog": self.resources["catalog"]}
        if result.success:
            event, sensor, failure = (
                result.get_run_success_event(),
                "generation_request_done",
                False,
            )
        else:
            event, sensor, failure = (
                result.get_run_failure_event(),
                "generation_request_failed",
                True,
            )
        context = dg.build_run_status_sensor_context(
            sensor_name=sensor,
            dagster_event=event,
            dagster_instance=self.instance,
            dagster_run=result.dagster_run,
            resources=resources,
        )
        if failure:
            context = context.for_run_failure()
        getattr(sensors, sensor)(context)

    # ------------------------------------------------------------------ as a thread
    def start(self, interval: float = 0.2) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.tick()
                except Exception:
                    self.errors.append(traceback.format_exc())
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="studio-daemon", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
