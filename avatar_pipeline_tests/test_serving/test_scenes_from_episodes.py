"""Scenes written from the episode's conversation, through the API: episode messages, the
scene writer (offline, and a language model on the fake Replicate server), emotion ->
expression, the scene's consistency score, and concurrent use on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import EpisodeMessage, SceneImage
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.serving.config import build_services
from avatar_pipeline.serving.main import create_app
from avatar_pipeline.serving.security import create_access_token
from avatar_pipeline_tests.fakes.replicate_server import FAILED, FakeReplicateServer, Fault
from avatar_pipeline_tests.test_scenes.kits import APPEARANCE, STYLE, SceneWorld, offline_kit_world
from avatar_pipeline_tests.test_serving.conftest import BASE_URL, Api, make_settings
from avatar_pipeline_tests.test_serving.factories import counts

LLM = "meta/meta-llama-3-8b-instruct"
SIZE = {"width": 256, "height": 256}


def world_for(api: Api, **options: Any) -> SceneWorld:
    return offline_kit_world(
        api.services.session_factory, api.services.object_store, name="Aiko",
        user_id=api.user.id, **options,
    )  # fmt: skip


def post_message(api: Api, episode_id: Any, content: str, role: str = "user", headers=None):  # type: ignore[no-untyped-def]
    return api.client.post(
        f"/episodes/{episode_id}/messages",
        json={"role": role, "content": content},
        headers=headers or api.user.headers,
    )


def generate(api: Api, episode_id: Any, **body: Any) -> Any:
    payload = {"episode_id": str(episode_id), **SIZE, **body}
    return api.client.post("/scenes/generate", json=payload, headers=api.user.headers)


def row(api: Api, scene_id: str) -> SceneImage:
    with session_scope(api.services.session_factory) as session:
        scene = session.get(SceneImage, uuid.UUID(scene_id))
        assert scene is not None
        return scene


def test_messages_are_appended_to_the_callers_own_episodes_only(api: Api) -> None:
    assert post_message(api, api.episode_id, "Hello there").status_code == 201
    reply = post_message(api, api.episode_id, "*waves* Hi!", role="assistant")
    assert reply.status_code == 201 and reply.json()["role"] == "assistant"
    listed = api.client.get(f"/episodes/{api.episode_id}/messages", headers=api.user.headers)
    assert [m["content"] for m in listed.json()] == ["Hello there", "*waves* Hi!"]

    before = counts(api.services.session_factory, api.services.object_store)
    assert post_message(api, api.others_episode_id, "sneaky").status_code == 404
    other = api.client.get(f"/episodes/{api.others_episode_id}/messages", headers=api.user.headers)
    assert other.status_code == 404
    assert post_message(api, api.episode_id, "x", role="system").status_code == 422
    assert post_message(api, api.episode_id, "").status_code == 422
    assert post_message(api, api.episode_id, "   ").status_code == 422
    assert post_message(api, api.episode_id, "x" * 5000).status_code == 422
    assert post_message(api, uuid.uuid4(), "lost").status_code == 404
    anonymous = api.client.post(
        f"/episodes/{api.episode_id}/messages", json={"content": "who am I"}
    )
    assert anonymous.status_code == 401
    assert counts(api.services.session_factory, api.services.object_store) == before
    with session_scope(api.services.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(EpisodeMessage)) == 2


def test_a_scene_is_written_from_the_stored_conversation(api: Api) -> None:
    world = world_for(api)
    post_message(api, world.episode_id, "My cat ran away this morning and I can't find her.")
    post_message(api, world.episode_id, "*sits down on the park bench* Oh no... I'm so sad 😢",
                 role="assistant")  # fmt: skip

    response = generate(api, world.episode_id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["emotion"] == "sadness" and body["expression"] == "sad"
    assert body["scene_writer"] == "offline"
    assert body["consistency_verdict"] == "pass" and body["consistency_score"] > 0.78

    scene = row(api, body["id"])
    assert scene.avatar_kit_id == world.kit_id
    assert scene.derived_from_asset_id == world.expression_ids["sad"]
    assert scene.consistency_score == body["consistency_score"]
    assert scene.prompt.startswith("Aiko sits down on the park bench in a green park")
    assert APPEARANCE in scene.prompt and STYLE in scene.prompt and "sad expression" in scene.prompt
    meta = scene.generation_metadata
    assert meta["emotion"] == "sadness" and meta["emotion_source"] == "detected"
    assert meta["context"]["source"] == "catalog" and len(meta["context"]["message_ids"]) == 2
    reading = meta["scene_writer"]["basis"]["emotion_reading"]
    assert {c["cue"] for c in reading["evidence"]} >= {"sad", "😢"}
    consistency = meta["consistency"]
    assert consistency["verdict"] == "pass" and consistency["threshold"] is not None
    assert consistency["scorer"]["embedder"]["kind"] in ("perceptual", "clip")


def test_the_callers_context_and_explicit_emotion_are_used(api: Api) -> None:
    world = world_for(api)
    post_message(api, world.episode_id, "I'm so sad today.")
    context = [
        {"role": "user", "content": "We're at the beach!"},
        {"role": "assistant", "content": "Yay, I love it here, I'm so happy! 😄"},
    ]
    joyful = generate(api, world.episode_id, context=context).json()
    assert joyful["emotion"] == "joy" and joyful["expression"] == "happy"
    scene = row(api, joyful["id"])
    assert scene.derived_from_asset_id == world.expression_ids["happy"]
    assert scene.generation_metadata["context"]["source"] == "request"
    assert "on a sunny beach" in scene.prompt

    explicit = generate(api, world.episode_id, moment="reading a letter", emotion="anger").json()
    assert explicit["expression"] == "angry"
    # the kit has no "angry" expression asset: the primary anchor is the reference
    assert row(api, explicit["id"]).derived_from_asset_id == world.anchor_id
    assert row(api, explicit["id"]).prompt.startswith("reading a letter, angry expression")


def test_an_episode_without_messages_or_moment_is_422_and_changes_nothing(api: Api) -> None:
    world = world_for(api)
    before = counts(api.services.session_factory, api.services.object_store)
    response = generate(api, world.episode_id)
    assert response.status_code == 422
    assert "/messages" in response.json()["detail"]
    assert generate(api, world.episode_id, moment="   ").status_code == 422
    assert counts(api.services.session_factory, api.services.object_store) == before


# --- the language model on the fake Replicate server -----------------------------------------


@pytest.fixture
def replicate_api(
    tmp_path: Path, migrated_template: Path
) -> Iterator[tuple[Api, FakeReplicateServer]]:
    import shutil

    from avatar_pipeline_tests.test_serving.factories import (
        make_character,
        make_episode,
        make_person,
    )

    database = tmp_path / "catalog.db"
    shutil.copy(migrated_template, database)
    settings = make_settings(
        tmp_path, f"sqlite:///{database}", scene_writer="replicate", embedder="perceptual"
    )
    with FakeReplicateServer(processing_s=0.02) as fake:
        provider = ReplicateProvider(
            api_token=fake.token, base_url=fake.base_url, poll_interval_s=0.02,
            backoff_base_s=0.01, timeout_s=10, max_retries=1, prefer_wait_s=5,
        )  # fmt: skip
        services = build_services(settings, migrate=True, image_service=ImageService(provider))
        factory = services.session_factory
        user = make_person(settings, factory, "user")
        character_id = make_character(factory, name="Ren")
        with TestClient(create_app(settings, services=services), base_url=BASE_URL) as client:
            yield (
                Api(
                    client=client, services=services, admin=make_person(settings, factory, "admin"),
                    user=user, other=make_person(settings, factory, "user"),
                    character_id=character_id,
                    episode_id=make_episode(factory, character_id, user.id),
                    others_episode_id=make_episode(factory, character_id, user.id),
                ),
                fake,
            )  # fmt: skip
        services.close()


def test_the_language_model_writes_the_scene_and_picks_the_expression(
    replicate_api: tuple[Api, FakeReplicateServer],
) -> None:
    api, fake = replicate_api
    world = world_for(api)
    post_message(api, world.episode_id, "The train leaves in five minutes.")
    post_message(api, world.episode_id, "So this is goodbye... I'll be alone at the station.",
                 role="assistant")  # fmt: skip

    body = generate(api, world.episode_id).json()
    assert body["scene_writer"] == f"replicate:{LLM}"
    assert body["emotion"] == "sadness" and body["expression"] == "sad"
    [llm_call] = [r for r in fake.creates() if LLM in r.path]
    assert "Aiko: So this is goodbye" in llm_call.body["input"]["prompt"]
    [edit] = [r for r in fake.creates() if "kontext" in r.path]
    assert edit.body["input"]["prompt"].startswith(body["prompt"])  # + "Avoid: <negative>"
    assert body["prompt"].startswith("standing in a station, soft evening light")
    assert APPEARANCE in body["prompt"] and "sad expression" in body["prompt"]
    scene = row(api, body["id"])
    assert scene.derived_from_asset_id == world.expression_ids["sad"]
    assert scene.consistency_score is not None and body["consistency_verdict"] in ("pass", "fail")
    meta = scene.generation_metadata
    assert meta["emotion_source"] == "language_model"
    assert meta["scene_writer"]["basis"]["language_model"]["model"] == LLM


def test_without_a_kit_the_language_model_scene_is_text_to_image(
    replicate_api: tuple[Api, FakeReplicateServer],
) -> None:
    api, fake = replicate_api
    post_message(api, api.episode_id, "I finally won the tickets for tomorrow!")
    body = generate(api, api.episode_id).json()
    assert body["scene_writer"] == f"replicate:{LLM}" and body["emotion"] == "excitement"
    assert body["avatar_kit_id"] is None and body["consistency_score"] is None
    assert body["consistency_verdict"] == "unmeasured"
    assert [r.path for r in fake.creates()][-1].endswith("flux-1.1-pro/predictions")
    meta = row(api, body["id"]).generation_metadata
    assert meta["operation"] == "generate"
    assert meta["consistency"]["reason"] == "no kit: nothing to be consistent with"


def test_a_language_model_failure_falls_back_to_the_offline_writer_and_says_why(
    replicate_api: tuple[Api, FakeReplicateServer],
) -> None:
    api, fake = replicate_api
    world = world_for(api)
    post_message(api, world.episode_id, "*laughs* That joke was so funny, haha!", role="assistant")
    fake.schedule(Fault(FAILED, message="model is warming up, try again"))
    response = generate(api, world.episode_id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["scene_writer"] == "offline"
    assert body["emotion"] == "amusement" and body["expression"] == "happy"
    writer_meta = row(api, body["id"]).generation_metadata["scene_writer"]
    assert "model is warming up" in writer_meta["fallback_reason"]
    assert row(api, body["id"]).derived_from_asset_id == world.expression_ids["happy"]


# --- concurrency on both engines -------------------------------------------------------------


def test_concurrent_messages_and_scenes(api_any_db: Api) -> None:
    api = api_any_db
    world = world_for(api)
    post_message(api, world.episode_id, "*smiles* What a happy day!", role="assistant")
    token = create_access_token(api.settings, api.user.id, timedelta(minutes=5))
    headers = {"Authorization": f"Bearer {token}"}

    def scene(i: int) -> int:
        return generate(api, world.episode_id, emotion="joy" if i % 2 else None).status_code

    def message(i: int) -> int:
        return post_message(api, world.episode_id, f"line {i}", headers=headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        scenes = list(pool.map(scene, range(6)))
        messages = list(pool.map(message, range(10)))
    assert scenes == [201] * 6 and messages == [201] * 10
    with session_scope(api.services.session_factory) as session:
        rows = repo.list_episode_scenes(session, user_id=api.user.id, episode_id=world.episode_id)
        assert len(rows) == 6
        assert all(
            r.consistency_score is not None and r.avatar_kit_id == world.kit_id for r in rows
        )
        stored = session.scalar(
            select(func.count())
            .select_from(EpisodeMessage)
            .where(EpisodeMessage.episode_id == world.episode_id)
        )
        assert stored == 11
    assert len(api.services.object_store.list("scenes")) == 6
