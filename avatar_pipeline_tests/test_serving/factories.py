"""Data factories and helpers for the serving tests (the full-stack template's tests/utils)."""

from __future__ import annotations

import io
import random
import struct
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from PIL import Image
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import (
    AvatarAsset,
    AvatarKit,
    Character,
    Episode,
    KitGenerationRequest,
    SceneImage,
    User,
)
from avatar_pipeline.serving.security import create_access_token
from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.base import ObjectStore

KIT_PROMPTS = {
    "appearance_prompt": "young woman, shoulder-length black hair, warm brown eyes, cream cardigan",
    "style_prompt": "anime style, soft cel shading, warm color palette",
    "negative_prompt": "photorealistic, multiple people",
}


def image_bytes(
    fmt: str = "PNG",
    size: tuple[int, int] = (256, 256),
    color: tuple[int, int, int] = (200, 120, 80),
) -> bytes:
    image = Image.new("RGB", size, color)
    for x in range(size[0] // 4, size[0] // 2):  # a feature, so images are not uniform
        for y in range(size[1] // 4, size[1] // 2):
            image.putpixel((x, y), (40, 40, 60))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def noise_png(size: tuple[int, int] = (160, 160), seed: int = 7) -> bytes:
    """A PNG that does not compress, so cutting it short really truncates the pixel data."""
    rng = random.Random(seed)
    image = Image.frombytes(
        "RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb shape)."""
    data = image_bytes(size=(1, 1))
    ihdr_at = data.index(b"IHDR")
    body = struct.pack(">II", width, height) + data[ihdr_at + 12 : ihdr_at + 17]
    chunk = b"IHDR" + body
    crc = struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return data[:ihdr_at] + chunk + crc + data[ihdr_at + 4 + 13 + 4 :]


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    email: str
    role: str
    headers: dict[str, str]


def make_person(
    settings: Settings, factory: sessionmaker[Session], role: str = "user", email: str | None = None
) -> Person:
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    with session_scope(factory) as session:
        user = repo.create_user(session, email=email, role=role)
    token = create_access_token(settings, user.id, timedelta(minutes=30))
    return Person(user.id, email, role, {"Authorization": f"Bearer {token}"})


def make_character(factory: sessionmaker[Session], name: str = "Yuki") -> uuid.UUID:
    with session_scope(factory) as session:
        return repo.create_character(session, name=name).id


def make_episode(
    factory: sessionmaker[Session], character_id: uuid.UUID, user_id: uuid.UUID
) -> uuid.UUID:
    with session_scope(factory) as session:
        return repo.create_episode(
            session, character_id=character_id, user_id=user_id, title="Cafe date"
        ).id


def counts(factory: sessionmaker[Session], store: ObjectStore) -> dict[str, int]:
    """Rows per table and objects per bucket: what a rejected request must leave unchanged."""
    with session_scope(factory) as session:
        rows = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (
                User,
                Character,
                Episode,
                AvatarKit,
                AvatarAsset,
                SceneImage,
                KitGenerationRequest,
            )
        }
    for bucket in ("avatars", "scenes"):
        rows[f"objects:{bucket}"] = len(store.list(bucket))  # type: ignore[arg-type]
    return rows


def kit_state(factory: sessionmaker[Session], kit_id: uuid.UUID | str) -> dict[str, object]:
    with session_scope(factory) as session:
        kit = repo.get_kit(session, kit_id)
        return {
            "status": kit.status,
            "primary_anchor_id": kit.primary_anchor_id,
            "secondary_anchor_id": kit.secondary_anchor_id,
            "canonical": sorted(str(a.id) for a in repo.canonical_assets(session, kit.id).values()),
        }


@contextmanager
def failing_inserts(engine: Engine, table: str) -> Iterator[None]:
    """Make the database driver fail every INSERT into ``table`` (fault injection at the
    driver boundary, as a lost connection or a full disk would)."""

    def fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "):
            raise engine.dialect.loaded_dbapi.OperationalError("injected: disk I/O error")

    event.listen(engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", fail)
