"""The demo's scene step on the demo kits: after it, ``scene_images`` rows carry the kit, the
consistency score and the detected emotion; a second run adds nothing."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import AvatarKit, Character, SceneImage
from avatar_pipeline.demo import seed_demo
from avatar_pipeline.domain.prompts import portrait_prompt
from avatar_pipeline.imaging.providers.offline import OfflineProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.scenes.demo import DEMO_CONVERSATIONS, run_demo_scenes
from avatar_pipeline.storage import keys
from avatar_pipeline_tests.test_scenes.conftest import SceneEnv


def approve_with_an_offline_anchor(env: SceneEnv, kit_id: uuid.UUID) -> None:
    """Stand-in for the Dagster kit run + approval (tested elsewhere): a canonical portrait."""
    with session_scope(env.factory) as session:
        kit = session.get(AvatarKit, kit_id)
        assert kit is not None
        prompt = portrait_prompt(repo.kit_prompts(kit))
    service = ImageService(OfflineProvider())
    png = asyncio.run(service.generate(prompt, None, 320, 320, seed=3)).image
    asset_id = uuid.uuid4()
    path = keys.anchor_path(str(kit_id), "anchor_portrait", str(asset_id))
    env.store.put("avatars", path, png, "image/png")
    with session_scope(env.factory) as session:
        repo.register_asset(
            session, kit_id=kit_id, asset_type="anchor_portrait", storage_path=path,
            source_type="ai_generated", asset_id=asset_id, is_canonical=True,
        )  # fmt: skip
        session.get(AvatarKit, kit_id).status = "active"  # type: ignore[union-attr]


def test_the_demo_scene_step_draws_scored_scenes_from_conversations(env: SceneEnv) -> None:
    with session_scope(env.factory) as session:
        kit_ids = seed_demo(session)
        defaults = [k for k in kit_ids if session.get(AvatarKit, k).is_default]  # type: ignore[union-attr]
    for kit_id in defaults:
        approve_with_an_offline_anchor(env, kit_id)

    service = ImageService(OfflineProvider())
    lines = run_demo_scenes(env.settings, env.factory, env.store, service)

    expected = sum(len(snippets) for snippets in DEMO_CONVERSATIONS.values())
    with session_scope(env.factory) as session:
        scenes = list(session.scalars(select(SceneImage)))
        active = {c.name: c.active_avatar_kit_id for c in session.scalars(select(Character))}
    assert len(scenes) == expected
    assert set(active.values()) == set(defaults)
    for scene in scenes:
        assert scene.avatar_kit_id in defaults
        assert scene.consistency_score is not None
        meta = scene.generation_metadata
        assert meta["emotion"] and meta["emotion_source"] == "detected"
        assert meta["consistency"]["verdict"] in ("pass", "fail")
    emotions = sorted(s.generation_metadata["emotion"] for s in scenes)
    assert {"joy", "sadness", "excitement", "curiosity"} <= set(emotions)
    assert any("drift" in line and "Yuki Default" in line for line in lines)

    again = run_demo_scenes(env.settings, env.factory, env.store, service)
    with session_scope(env.factory) as session:
        assert len(list(session.scalars(select(SceneImage)))) == expected
    assert "  (scenes already drawn on an earlier run)" in again
