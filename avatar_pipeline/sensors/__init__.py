"""Sensors: new kits and generation requests, prompt or definition changes, reports after a gate."""

from avatar_pipeline.sensors.kit_sensors import (
    kit_sensor,
    prompt_change_sensor,
    report_after_failed_gate,
)

__all__ = ["kit_sensor", "prompt_change_sensor", "report_after_failed_gate"]
