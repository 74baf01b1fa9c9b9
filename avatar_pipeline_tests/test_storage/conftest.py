"""Both object store backends behind one parametrised ``store`` fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

from avatar_pipeline.storage.base import ObjectStore
from avatar_pipeline.storage.local import LocalObjectStore
from avatar_pipeline_tests.s3_fixtures import moto_s3_endpoint, s3_store
from avatar_pipeline_tests.test_storage.support import LOCAL_BASE_URL, LOCAL_SECRET

__all__ = ["moto_s3_endpoint", "s3_store"]


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(
        tmp_path / "objects", signing_secret=LOCAL_SECRET, public_base_url=LOCAL_BASE_URL
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """The same tests run against the local directory and against S3 (moto over HTTP)."""
    return request.getfixturevalue(f"{request.param}_store")
