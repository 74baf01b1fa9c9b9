"""An app per test on a real catalog (SQLite copied from a migrated template, or PostgreSQL),
a real LocalObjectStore under tmp_path and the offline image provider."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from avatar_pipeline.catalog.migrate import upgrade_database
from avatar_pipeline.serving.config import Services, build_services
from avatar_pipeline.serving.main import create_app
from avatar_pipeline.settings import Settings
from avatar_pipeline_tests.db_fixtures import catalog_url  # noqa: F401
from avatar_pipeline_tests.test_serving.factories import (
    KIT_PROMPTS,
    Person,
    image_bytes,
    make_character,
    make_episode,
    make_person,
)

BASE_URL = "http://testserver"


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite catalog; each test copies it (migrating takes far longer)."""
    path = tmp_path_factory.mktemp("template") / "catalog.db"
    upgrade_database(f"sqlite:///{path}")
    return path


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        var_dir=tmp_path / "var",
        database_url=database_url,
        storage_local_root=tmp_path / "objects",
        public_base_url=BASE_URL,
        signing_secret="serving-tests-signing-secret-0123456789",  # type: ignore[arg-type]
        **overrides,
    )


@dataclass
class Api:
    """The running app and the people and world the tests act on."""

    client: TestClient
    services: Services
    admin: Person
    user: Person
    other: Person
    character_id: uuid.UUID
    episode_id: uuid.UUID
    others_episode_id: uuid.UUID

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def create_kit(self, character_id: uuid.UUID | None = None, **fields: Any) -> dict[str, Any]:
        body = {"name": f"Kit {uuid.uuid4().hex[:6]}", **KIT_PROMPTS, **fields}
        body["character_id"] = str(character_id or self.character_id)
        response = self.client.post("/avatar-kits", json=body, headers=self.admin.headers)
        assert response.status_code == 201, response.text
        return response.json()

    def upload(
        self,
        kit_id: str,
        asset_type: str = "anchor_portrait",
        data: bytes | None = None,
        filename: str = "anchor.png",
        **form: Any,
    ) -> Any:
        return self.client.post(
            f"/avatar-kits/{kit_id}/assets",
            files={"file": (filename, data if data is not None else image_bytes(), "image/png")},
            data={"asset_type": asset_type, **form},
            headers=self.admin.headers,
        )


def build_api(tmp_path: Path, database_url: str) -> Iterator[Api]:
    settings = make_settings(tmp_path, database_url)
    services = build_services(settings, migrate=True)
    factory = services.session_factory
    admin = make_person(settings, factory, "admin")
    user = make_person(settings, factory, "user")
    other = make_person(settings, factory, "user")
    character_id = make_character(factory)
    with TestClient(create_app(settings, services=services), base_url=BASE_URL) as client:
        yield Api(
            client=client,
            services=services,
            admin=admin,
            user=user,
            other=other,
            character_id=character_id,
            episode_id=make_episode(factory, character_id, user.id),
            others_episode_id=make_episode(factory, character_id, other.id),
        )
    services.close()


@pytest.fixture
def api(tmp_path: Path, migrated_template: Path) -> Iterator[Api]:
    """The app on a SQLite catalog."""
    database = tmp_path / "catalog.db"
    shutil.copy(migrated_template, database)
    yield from build_api(tmp_path, f"sqlite:///{database}")


@pytest.fixture
def api_any_db(tmp_path: Path, catalog_url: str) -> Iterator[Api]:  # noqa: F811
    """The app on each catalog engine (SQLite and PostgreSQL)."""
    yield from build_api(tmp_path, catalog_url)


@pytest.fixture
def at_time(api: Api) -> Iterator[Callable[[float], None]]:
    """Set the clock the file route checks expiry against."""
    from avatar_pipeline.serving.deps import get_clock

    def set_now(now: float) -> None:
        api.client.app.dependency_overrides[get_clock] = lambda: lambda: now  # type: ignore[attr-defined]

    yield set_now
    api.client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
