"""Episode messages and the drift queries on SQLite and PostgreSQL, including concurrent
appends to one episode."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.episode_messages import append_message, recent_messages
from avatar_pipeline.catalog.errors import CatalogError, NotFoundError
from avatar_pipeline.catalog.models import SceneImage
from avatar_pipeline.scenes.drift import fleet_drift, kit_drift

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EMBEDDER = {"kind": "perceptual", "model": "m", "weights": "none"}


def world(factory: sessionmaker[Session]) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]:
    with session_scope(factory, write=True) as session:
        user = repo.create_user(session, email=f"{uuid.uuid4().hex[:6]}@example.com")
        other = repo.create_user(session, email=f"{uuid.uuid4().hex[:6]}@example.com")
        character = repo.create_character(session, name="Yuki")
        kit = repo.create_kit(session, name="K", appearance_prompt="a", style_prompt="s",
                              character_id=character.id)  # fmt: skip
        episode = repo.create_episode(
            session, character_id=character.id, user_id=user.id, title="t"
        )
        return user.id, other.id, kit.id, episode.id


def test_messages_keep_their_order_and_owner(
    migrated_session_factory: sessionmaker[Session],
) -> None:
    factory = migrated_session_factory
    user, other, _, episode = world(factory)

    def add(i: int) -> None:
        with session_scope(factory, write=True) as session:
            append_message(session, episode_id=episode, user_id=user, content=f"m{i}",
                           created_at=T0 + timedelta(seconds=i))  # fmt: skip

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(add, range(24)))
    with session_scope(factory) as session:
        assert [m.content for m in recent_messages(session, episode, limit=5)] == [
            f"m{i}" for i in range(19, 24)
        ]
        with pytest.raises(NotFoundError):
            append_message(session, episode_id=episode, user_id=other, content="not mine")
        with pytest.raises(CatalogError):
            append_message(session, episode_id=episode, user_id=user, content="x", role="system")
        assert len(recent_messages(session, episode, limit=100)) == 24


def test_drift_queries(migrated_session_factory: sessionmaker[Session]) -> None:
    factory = migrated_session_factory
    user, _, kit, episode = world(factory)
    scores = [0.95, 0.96, 0.94, 0.70, 0.68, 0.71]  # as stored by the scene flow
    with session_scope(factory, write=True) as session:
        for i, score in enumerate(scores):
            scene = repo.create_scene_image(
                session, user_id=user, episode_id=episode, storage_path=f"{user}/{episode}/{i}.png",
                prompt="p", avatar_kit_id=kit, consistency_score=score,
                generation_metadata={
                    "model": "m", "model_version": "v1" if i < 3 else "v2", "emotion": "joy",
                    "consistency": {"threshold": 0.78, "verdict": "fail" if score < 0.78
                                    else "pass", "scorer": {"embedder": EMBEDDER}},
                },
            )  # fmt: skip
            scene.created_at = T0 + timedelta(minutes=i)
        repo.create_scene_image(  # a text-to-image scene: no kit, never in a kit's drift
            session, user_id=user, episode_id=episode, storage_path=f"{user}/{episode}/t.png",
            prompt="p",
        )  # fmt: skip
        with pytest.raises(CatalogError):
            repo.create_scene_image(
                session, user_id=user, episode_id=episode, storage_path=f"{user}/{episode}/n.png",
                prompt="p", avatar_kit_id=kit, consistency_score=float("nan"),
            )  # fmt: skip
    with session_scope(factory) as session:
        recent = kit_drift(session, kit, window=3, min_scenes=3)
        assert recent.status == "drifting" and recent.recent_median == 0.70
        assert [p.score for p in recent.points] == scores
        assert [(v.model_version, v.scenes) for v in recent.versions] == [("v1", 3), ("v2", 3)]
        assert kit_drift(session, kit, window=6, min_scenes=3).recent_median == pytest.approx(0.825)
        assert [d.kit_id for d in fleet_drift(session, window=3)] == [str(kit)]
        assert session.query(SceneImage).filter(SceneImage.avatar_kit_id.is_(None)).count() == 1
