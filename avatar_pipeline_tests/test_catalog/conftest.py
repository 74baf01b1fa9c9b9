from __future__ import annotations

from pathlib import Path

import pytest

from avatar_pipeline.storage.local import LocalObjectStore
from avatar_pipeline_tests.db_fixtures import (  # noqa: F401
    catalog_session,
    catalog_url,
    migrated_catalog_url,
    migrated_session_factory,
)


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects", signing_secret="test-signing-secret")
