"""Sensors: new kits and generation requests, prompt or definition changes, reports after a gate."""

from avatar_pipeline.sensors.kit_sensors import (
    kit_sensor,
    prompt_change_sensor,
    report_after_failed_gate,
)
from avatar_pipeline.sensors.report_refresh import report_refresh_sensor
from avatar_pipeline.sensors.request_status import (
    generation_request_done,
    generation_request_failed,
    generation_request_started,
)

__all__ = [
    "generation_request_done",
    "generation_request_failed",
    "generation_request_started",
    "kit_sensor",
    "prompt_change_sensor",
    "report_after_failed_gate",
    "report_refresh_sensor",
]
