"""The local Dagster instance: where it lives and the configuration shipped with it."""

from __future__ import annotations

import os
from pathlib import Path

from avatar_pipeline.settings import Settings

DAGSTER_YAML_LOCAL = """\
# Dagster instance for the embedded defaults: SQLite storage under this directory.
# For PostgreSQL see dagster.postgres.yaml at the repository root.
concurrency:
  pools:
    # caps concurrent kit_images steps (each makes up to max_concurrency provider calls)
    default_limit: 4
# Run hygiene (needs the daemon, which `dagster dev` starts): a run whose worker died is marked
# failed, and the pool slots of a run that ended or died are freed, so a killed kit run cannot
# keep its image_provider slot for ever. In-process runs (the demo) are reaped by
# `avatar-pipeline sweep` and before the demo starts (avatar_pipeline/run_hygiene.py).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_runtime_seconds: 7200
  poll_interval_seconds: 60
  free_slots_after_run_end_seconds: 60
telemetry:
  enabled: false
"""


def dagster_home(settings: Settings) -> Path:
    """The Dagster instance directory (DAGSTER_HOME, default var/dagster), with the shipped
    dagster.yaml written on first use; sets DAGSTER_HOME for this process."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.var_dir / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML_LOCAL)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
