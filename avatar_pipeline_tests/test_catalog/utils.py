"""Data factories for the catalog tests."""

from __future__ import annotations

import uuid
from io import BytesIO
from typing import Any

from PIL import Image
from sqlalchemy.orm import Session

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit, Character
from avatar_pipeline.storage.keys import avatar_asset_path


def png_bytes(
    color: tuple[int, int, int] = (200, 120, 80), size: tuple[int, int] = (48, 64)
) -> bytes:
    out = BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def make_character(session: Session, name: str = "Yuki", **fields: Any) -> Character:
    return repo.create_character(session, name=name, **fields)


def make_kit(session: Session, character: Character | None = None, **fields: Any) -> AvatarKit:
    fields.setdefault("name", f"Kit {uuid.uuid4().hex[:6]}")
    fields.setdefault("appearance_prompt", "young woman, shoulder-length black hair, brown eyes")
    fields.setdefault("style_prompt", "anime style, soft cel shading")
    fields.setdefault("negative_prompt", "photorealistic, multiple people")
    return repo.create_kit(session, character_id=character.id if character else None, **fields)


def add_asset(
    session: Session, kit: AvatarKit, asset_type: str = "anchor_portrait", **fields: Any
) -> AvatarAsset:
    asset_id = fields.pop("asset_id", uuid.uuid4())
    slot = fields.get("expression") or fields.get("pose")
    if asset_type == "expression" and slot is None:
        slot = fields["expression"] = "happy"
    if asset_type == "pose" and slot is None:
        slot = fields["pose"] = "sitting"
    if "storage_path" not in fields:
        fields["storage_path"] = avatar_asset_path(
            str(kit.id), asset_type, str(asset_id), slot or "main"
        )
    fields.setdefault("source_type", "ai_generated")
    return repo.register_asset(
        session, kit_id=kit.id, asset_id=asset_id, asset_type=asset_type, **fields
    )
