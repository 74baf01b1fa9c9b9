"""Sensors: new kits and generation requests, prompt or definition changes, reports after a gate."""

from avatar_pipeline.sensors.kit_sensors import (
    kit_sensor,
    prompt_change_sensor,
    report_after_failed_gate,
)
from avatar_pipeline.sensors.request_status import (
    generation_request_done,
    generation_request_failed,
)

__all__ = [
    "generation_request_done",
    "generation_request_failed",
    "kit_sensor",
    "prompt_change_sensor",
    "report_after_failed_gate",
]
