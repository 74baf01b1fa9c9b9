"""The code location: assets, checks, jobs, schedules, sensors and resources — nothing else."""

import dagster as dg

from avatar_pipeline.approval import approve_kit_job
from avatar_pipeline.assets.kit_images import kit_images
from avatar_pipeline.assets.provider_models import provider_models
from avatar_pipeline.assets.reports import consistency_report, fleet_consistency
from avatar_pipeline.assets.scene_drift import scene_drift, scene_drift_job, scene_drift_schedule
from avatar_pipeline.jobs import (
    fleet_report_job,
    kit_job,
    kit_report_job,
    observe_provider_models_job,
)
from avatar_pipeline.resources import resources_for_environment
from avatar_pipeline.schedules import model_upgrade_schedule, observe_provider_models_schedule
from avatar_pipeline.sensors import (
    generation_request_done,
    generation_request_failed,
    generation_request_started,
    kit_sensor,
    prompt_change_sensor,
    report_after_failed_gate,
    report_refresh_sensor,
)
from avatar_pipeline.sweep_job import sweep_job

defs = dg.Definitions(
    assets=[provider_models, kit_images, consistency_report, fleet_consistency, scene_drift],
    jobs=[
        kit_job,
        kit_report_job,
        fleet_report_job,
        approve_kit_job,
        observe_provider_models_job,
        scene_drift_job,
        sweep_job,
    ],
    schedules=[model_upgrade_schedule, observe_provider_models_schedule, scene_drift_schedule],
    sensors=[
        kit_sensor,
        prompt_change_sensor,
        report_after_failed_gate,
        generation_request_done,
        generation_request_failed,
        generation_request_started,
        report_refresh_sensor,
    ],
    resources=resources_for_environment(),
    # Concurrency lives inside the kit step (asyncio); worker processes would cost 5-6 s each.
    executor=dg.in_process_executor,
)
