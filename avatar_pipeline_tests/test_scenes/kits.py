"""Test data for the scene flow: a character whose active kit was drawn by the offline renderer
(a real anchor and expressions, so scene scores mean something), and its user's episode."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.episode_messages import append_message
from avatar_pipeline.domain.prompts import KitPrompts, expression_prompt, portrait_prompt
from avatar_pipeline.domain.vocab import EXPRESSIONS_BY_NAME
from avatar_pipeline.imaging.providers.offline import OfflineProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.storage import keys
from avatar_pipeline.storage.base import ObjectStore

APPEARANCE = "young woman, shoulder-length black hair, warm brown eyes, cream cardigan"
STYLE = "anime style, soft cel shading, warm color palette"
PX = 384


@dataclass(frozen=True)
class SceneWorld:
    user_id: uuid.UUID
    character_id: uuid.UUID
    kit_id: uuid.UUID
    episode_id: uuid.UUID
    anchor_id: uuid.UUID
    expression_ids: dict[str, uuid.UUID]


def _put(store: ObjectStore, path: str, png: bytes) -> None:
    store.put("avatars", path, png, "image/png")


def offline_kit_world(
    factory: sessionmaker[Session],
    store: ObjectStore,
    *,
    name: str = "Yuki",
    appearance: str = APPEARANCE,
    style: str = STYLE,
    expressions: tuple[str, ...] = ("happy", "sad"),
    emotion_tags: dict[str, list[str]] | None = None,
    email: str | None = None,
    user_id: uuid.UUID | None = None,
) -> SceneWorld:
    """An active kit with a canonical portrait anchor and expressions drawn offline."""
    service = ImageService(OfflineProvider())
    prompts = KitPrompts(appearance, style, "photorealistic")

    async def draw() -> tuple[bytes, dict[str, bytes]]:
        anchor = (await service.generate(portrait_prompt(prompts), None, PX, PX, seed=7)).image
        made = {}
        for expression in expressions:
            response = await service.edit(
                expression_prompt(prompts, EXPRESSIONS_BY_NAME[expression]),
                [anchor],
                None,
                width=PX,
                height=PX,
                seed=11,
            )
            made[expression] = response.image
        return anchor, made

    anchor_png, expression_pngs = asyncio.run(draw())
    with session_scope(factory, write=True) as session:
        if user_id is None:
            email = email or f"u-{uuid.uuid4().hex[:8]}@example.com"
            user_id = repo.create_user(session, email=email).id
        character = repo.create_character(session, name=name)
        kit = repo.create_kit(
            session,
            name=f"{name} Default",
            appearance_prompt=appearance,
            style_prompt=style,
            negative_prompt="photorealistic",
            character_id=character.id,
            is_default=True,
        )
        anchor_id = uuid.uuid4()
        path = keys.anchor_path(str(kit.id), "anchor_portrait", str(anchor_id))
        _put(store, path, anchor_png)
        repo.register_asset(
            session, kit_id=kit.id, asset_type="anchor_portrait", storage_path=path,
            source_type="ai_generated", asset_id=anchor_id, is_canonical=True,
        )  # fmt: skip
        expression_ids = {}
        for expression, png in expression_pngs.items():
            asset_id = uuid.uuid4()
            path = keys.expression_path(str(kit.id), expression, str(asset_id))
            _put(store, path, png)
            repo.register_asset(
                session, kit_id=kit.id, asset_type="expression", storage_path=path,
                source_type="ai_generated", asset_id=asset_id, expression=expression,
                emotion_tags=(emotion_tags or {}).get(expression), is_canonical=True,
                derived_from_id=anchor_id,
            )  # fmt: skip
            expression_ids[expression] = asset_id
        kit.status = "active"  # test set-up: approval itself is tested with the studio
        repo.set_active_kit(session, character.id, kit.id)
        episode = repo.create_episode(
            session, character_id=character.id, user_id=user_id, title="an evening"
        )
        return SceneWorld(user_id, character.id, kit.id, episode.id, anchor_id, expression_ids)


def say(factory: sessionmaker[Session], world: SceneWorld, *turns: tuple[str, str]) -> None:
    with session_scope(factory, write=True) as session:
        for role, text in turns:
            append_message(
                session, episode_id=world.episode_id, user_id=world.user_id, content=text, role=role
            )
