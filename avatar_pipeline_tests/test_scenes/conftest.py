"""Fixtures of the scene-flow tests: a migrated catalog, a local object store, the fake
Replicate server (images and a language model) driven by the real client."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog.db import make_engine, make_session_factory
from avatar_pipeline.catalog.migrate import upgrade_database
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.base import ObjectStore
from avatar_pipeline.storage.factory import build_object_store
from avatar_pipeline_tests.db_fixtures import (  # noqa: F401
    catalog_url,
    migrated_catalog_url,
    migrated_session_factory,
)
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer

FAST = {
    "poll_interval_s": 0.02,
    "backoff_base_s": 0.01,
    "timeout_s": 5.0,
    "max_retries": 2,
    "prefer_wait_s": 5,
    "http_timeout_s": 5.0,
}


@pytest.fixture(scope="session")
def scenes_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenes-template") / "catalog.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@dataclass
class SceneEnv:
    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    store: ObjectStore


def scene_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        var_dir=tmp_path / "var",
        database_url=database_url,
        storage_local_root=tmp_path / "objects",
        embedder="perceptual",
        **overrides,
    )


@pytest.fixture
def env(tmp_path: Path, scenes_template: Path) -> Iterator[SceneEnv]:
    database = tmp_path / "catalog.db"
    shutil.copy(scenes_template, database)
    settings = scene_settings(tmp_path, f"sqlite:///{database}")
    engine = make_engine(settings.catalog_url)
    store = build_object_store(settings, create_buckets=True)
    store.ensure_buckets()
    yield SceneEnv(settings, engine, make_session_factory(engine), store)
    engine.dispose()


@pytest.fixture
def fake_replicate() -> Iterator[FakeReplicateServer]:
    with FakeReplicateServer(processing_s=0.05) as server:
        yield server


@pytest.fixture
def make_provider(fake_replicate: FakeReplicateServer) -> Callable[..., ReplicateProvider]:
    def make(**overrides: Any) -> ReplicateProvider:
        options: dict[str, Any] = {
            "api_token": fake_replicate.token,
            "base_url": fake_replicate.base_url,
            **FAST,
            **overrides,
        }
        return ReplicateProvider(**options)

    return make
