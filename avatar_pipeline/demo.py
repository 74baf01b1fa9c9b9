"""The demo set of kits from the spec's "Kit Evolution Strategy": Yuki (Default + Summer), Kenji."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from avatar_pipeline.catalog import models
from avatar_pipeline.catalog import repository as repo


@dataclass(frozen=True)
class DemoKit:
    character: str
    name: str
    appearance: str
    style: str
    negative: str
    is_default: bool


ANIME = "anime style, soft cel shading, warm color palette, gentle lighting"
NEGATIVE = "photorealistic, 3D render, multiple people, different hairstyle, different eye color"

DEMO_KITS: tuple[DemoKit, ...] = (
    DemoKit(
        "Yuki",
        "Yuki Default",
        "young woman, shoulder-length black hair, warm brown eyes, soft features, "
        "slight smile, cream cardigan",
        ANIME,
        NEGATIVE,
        True,
    ),
    DemoKit(
        "Yuki",
        "Yuki Summer",
        "young woman, shoulder-length black hair, warm brown eyes, soft features, "
        "light yellow sundress, summer style",
        ANIME,
        NEGATIVE,
        False,
    ),
    DemoKit(
        "Kenji",
        "Kenji Default",
        "young man, short silver hair, green eyes, navy hoodie, relaxed posture",
        "anime style, cel shading, cool color palette",
        NEGATIVE,
        True,
    ),
)

DEMO_ADMIN_EMAIL = "art-ops@example.com"
# Stable ids: seeds derive from the kit id, so the demo renders the same kits on every machine.
DEMO_NAMESPACE = uuid.UUID("0b8f7d7e-3f0a-4b8e-8f41-5d2f6a9c1e77")


def seed_demo(session: Session) -> list[uuid.UUID]:
    """Create the demo admin, characters and kits if absent; return the kit ids (idempotent)."""
    admin = session.scalar(select(models.User).where(models.User.email == DEMO_ADMIN_EMAIL))
    if admin is None:
        admin = repo.create_user(session, email=DEMO_ADMIN_EMAIL, role="admin")
    kit_ids = []
    for demo in DEMO_KITS:
        character = session.scalar(
            select(models.Character).where(models.Character.name == demo.character)
        )
        if character is None:
            character = repo.create_character(session, name=demo.character)
        kit = session.scalar(select(models.AvatarKit).where(models.AvatarKit.name == demo.name))
        if kit is None:
            kit = repo.create_kit(
                session,
                name=demo.name,
                appearance_prompt=demo.appearance,
                style_prompt=demo.style,
                negative_prompt=demo.negative,
                character_id=character.id,
                created_by=admin.id,
                is_default=demo.is_default,
                description="demo kit",
                kit_id=uuid.uuid5(DEMO_NAMESPACE, demo.name),
            )
        kit_ids.append(kit.id)
    session.flush()
    return kit_ids
