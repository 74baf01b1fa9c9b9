"""The API under concurrent load on SQLite and PostgreSQL: no "database is locked", pool
exhaustion answered 503 + Retry-After (never 500), and no request holding two connections."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import SceneImage
from avatar_pipeline.serving.config import Services, build_services
from avatar_pipeline.serving.main import create_app
from avatar_pipeline_tests.db_fixtures import catalog_url  # noqa: F401
from avatar_pipeline_tests.test_serving.conftest import BASE_URL, Api, build_api, make_settings
from avatar_pipeline_tests.test_serving.factories import (
    image_bytes,
    make_character,
    make_episode,
    make_person,
)

CONCURRENT_SCENES = 32


async def _generate_many(api: Api, count: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=api.client.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, timeout=120) as client:
        body = {
            "episode_id": str(api.episode_id),
            "moment": "laughing",
            "width": 256,
            "height": 256,
        }
        return await asyncio.gather(
            *(
                client.post("/scenes/generate", json=body, headers=api.user.headers)
                for _ in range(count)
            )
        )


def test_concurrent_scene_generations_all_succeed(api_any_db: Api) -> None:
    api = api_any_db
    responses = asyncio.run(_generate_many(api, CONCURRENT_SCENES))
    statuses = [r.status_code for r in responses]
    assert statuses == [201] * CONCURRENT_SCENES, [
        r.text for r in responses if r.status_code != 201
    ]
    with session_scope(api.services.session_factory) as session:
        stored = session.scalar(select(func.count()).select_from(SceneImage))
    assert stored == CONCURRENT_SCENES


@pytest.fixture
def tiny_pool(tmp_path: Path, catalog_url: str) -> Iterator[tuple[TestClient, Services, Any]]:  # noqa: F811
    """The app with ONE catalog connection and a short pool timeout."""
    settings = make_settings(
        tmp_path, catalog_url, api_db_pool_size=1, api_db_pool_timeout_seconds=0.5
    )
    services = build_services(settings, migrate=True)
    admin = make_person(settings, services.session_factory, "admin")
    user = make_person(settings, services.session_factory, "user")
    character = make_character(services.session_factory)
    episode = make_episode(services.session_factory, character, user.id)
    with TestClient(create_app(settings, services=services), base_url=BASE_URL) as client:
        yield client, services, (admin, user, character, episode)
    services.close()


def test_pool_exhaustion_is_503_with_retry_after(
    tiny_pool: tuple[TestClient, Services, Any],
) -> None:
    client, services, (admin, user, _character, _episode) = tiny_pool
    with services.engine.connect():  # someone else holds the only connection
        for path, person in (("/avatar-kits", admin), ("/scenes/memories", user)):
            response = client.get(path, headers=person.headers)
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == str(services.settings.api_retry_after_seconds)
            assert response.json()["error"] == "CatalogBusy"
    assert client.get("/avatar-kits", headers=admin.headers).status_code == 200


def test_no_request_needs_two_connections(tiny_pool: tuple[TestClient, Services, Any]) -> None:
    """With a single pooled connection, a request that held one connection while asking for a
    second would wait for itself and answer 503; every request here must succeed."""
    client, _services, (admin, user, character, episode) = tiny_pool
    kit = client.post(
        "/avatar-kits",
        json={
            "name": "Kit",
            "appearance_prompt": "a",
            "style_prompt": "s",
            "character_id": str(character),
        },
        headers=admin.headers,
    )
    assert kit.status_code == 201, kit.text
    kit_id = kit.json()["id"]
    upload = client.post(
        f"/avatar-kits/{kit_id}/assets",
        files={"file": ("a.png", image_bytes(), "image/png")},
        data={"asset_type": "anchor_portrait"},
        headers=admin.headers,
    )
    assert upload.status_code == 201, upload.text
    asset = upload.json()["asset"]
    scene = client.post(
        "/scenes/generate",
        json={"episode_id": str(episode), "moment": "reading", "width": 256, "height": 256},
        headers=user.headers,
    )
    assert scene.status_code == 201, scene.text
    checks = [
        client.get("/avatar-kits", headers=admin.headers),
        client.get(f"/avatar-kits/{kit_id}/assets", headers=admin.headers),
        client.patch(
            f"/avatar-kits/{kit_id}/assets/{asset['id']}",
            json={"emotion_tags": ["calm"]},
            headers=admin.headers,
        ),
        client.patch(
            f"/scenes/{scene.json()['id']}/memory", json={"is_memory": True}, headers=user.headers
        ),
        client.get("/scenes/memories", headers=user.headers),
        client.get(f"/scenes/episode/{episode}", headers=user.headers),
        client.get(f"/files/avatars/{asset['storage_path']}"),
        client.get(scene.json()["url"]),
        client.get(f"/characters/{character}/avatar-kits", headers=admin.headers),
        client.get("/healthz"),
    ]
    assert [r.status_code for r in checks] == [200] * len(checks), [r.text for r in checks]
    assert uuid.UUID(kit_id)


def test_more_requests_than_threads_neither_deadlock_nor_503(tmp_path: Path) -> None:
    """More concurrent GETs than worker threads: sessions holding connections wait for a thread
    (FastAPI validates responses on one) while threads wait for connections - unless the open
    sessions are gated to what the pool can hold besides every thread."""
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'c.db'}", api_max_threads=2, api_db_pool_timeout_seconds=1
    )
    services = build_services(settings, migrate=True)
    admin = make_person(settings, services.session_factory, "admin")
    app = create_app(settings, services=services)

    async def load() -> list[int]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2  # what lifespan sets
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            responses = await asyncio.gather(
                *(client.get("/avatar-kits", headers=admin.headers) for _ in range(40))
            )
        return [r.status_code for r in responses]

    try:
        assert asyncio.run(load()) == [200] * 40
    finally:
        services.close()


def test_pool_is_sized_to_the_worker_threads(tmp_path: Path) -> None:
    from avatar_pipeline.serving.config import api_pool_size, default_executor_threads

    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", api_max_threads=24)
    services = build_services(settings, migrate=True)
    try:
        assert services.engine.pool.size() == api_pool_size(settings)  # type: ignore[attr-defined]
        assert api_pool_size(settings) >= 2 * 24 + default_executor_threads()
    finally:
        services.close()


__all__ = ["build_api"]
