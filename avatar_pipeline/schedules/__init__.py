"""Schedules: re-generate kits when a provider model is upgraded."""

from avatar_pipeline.schedules.model_upgrade import (
    model_upgrade_schedule,
    observe_provider_models_schedule,
    upgraded_slots,
)

__all__ = ["model_upgrade_schedule", "observe_provider_models_schedule", "upgraded_slots"]
