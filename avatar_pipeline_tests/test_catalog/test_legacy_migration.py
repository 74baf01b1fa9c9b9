"""The spec's migration path on a legacy database: schema upgrade, then the avatar_url data
migration into kits, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
from avatar_pipeline.catalog.legacy import MigrationReport, migrate_legacy_avatars
from avatar_pipeline.catalog.migrate import current_revision, head_revision, upgrade_database
from avatar_pipeline.catalog.models import (
    AvatarAsset,
    AvatarKit,
    Base,
    Character,
    KitGenerationRequest,
    SceneImage,
)
from avatar_pipeline.storage.keys import anchor_path
from avatar_pipeline.storage.local import LocalObjectStore
from avatar_pipeline_tests.db_fixtures import database_kind

USERS = sa.table("users", sa.column("id", sa.Uuid()), sa.column("email", sa.Text()))
CHARACTERS = sa.table(
    "characters",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.Text()),
    sa.column("description", sa.Text()),
    sa.column("avatar_url", sa.Text()),
)
EPISODES = sa.table(
    "episodes",
    sa.column("id", sa.Uuid()),
    sa.column("character_id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("title", sa.Text()),
)
EPISODE_IMAGES = sa.table(
    "episode_images",
    sa.column("id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("episode_id", sa.Uuid()),
    sa.column("storage_path", sa.Text()),
    sa.column("prompt", sa.Text()),
    sa.column("is_memory", sa.Boolean()),
)


@dataclass
class LegacyCharacter:
    name: str
    avatar_url: str | None
    size: tuple[int, int] | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)


def _image(size: tuple[int, int], fmt: str, mode: str = "RGB") -> bytes:
    out = BytesIO()
    image = Image.new(mode, size, 3 if mode == "P" else (30, 160, 90))
    if mode == "P":
        image.info["transparency"] = 0
    image.save(out, format=fmt)
    return out.getvalue()


def _legacy_database(url: str, characters: list[LegacyCharacter]) -> tuple[uuid.UUID, ...]:
    """A catalog at revision 0001 with legacy rows; returns the episode image ids."""
    upgrade_database(url, "0001")
    user_id, episode_id = uuid.uuid4(), uuid.uuid4()
    image_ids = (uuid.uuid4(), uuid.uuid4())
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.insert(USERS), [{"id": user_id, "email": "u@example.com"}])
        connection.execute(
            sa.insert(CHARACTERS),
            [
                {
                    "id": c.id,
                    "name": c.name,
                    "description": "shy barista",
                    "avatar_url": c.avatar_url,
                }
                for c in characters
            ],
        )
        connection.execute(
            sa.insert(EPISODES),
            [
                {
                    "id": episode_id,
                    "character_id": characters[0].id,
                    "user_id": user_id,
                    "title": "E1",
                }
            ],
        )
        connection.execute(
            sa.insert(EPISODE_IMAGES),
            [
                {
                    "id": image_id,
                    "user_id": user_id,
                    "episode_id": episode_id,
                    "storage_path": f"{user_id}/{episode_id}/{image_id}.png",
                    "prompt": f"scene {n}",
                    "is_memory": n == 1,
                }
                for n, image_id in enumerate(image_ids)
            ],
        )
    engine.dispose()
    return image_ids


def _counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with session_scope(factory) as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (Character, AvatarKit, AvatarAsset, SceneImage, KitGenerationRequest)
        }


def _no_changes(report: MigrationReport) -> bool:
    return (report.kits_created, report.assets_imported, report.characters_linked) == (0, 0, 0)


def test_legacy_catalog_upgrades_and_migrates_avatars_once(
    catalog_url: str, tmp_path: Path, store: LocalObjectStore
) -> None:
    legacy_dir = tmp_path / "legacy"
    legacy_dir.mkdir()
    (legacy_dir / "yuki.png").write_bytes(_image((64, 80), "PNG"))
    (legacy_dir / "mei.jpg").write_bytes(_image((40, 40), "JPEG"))
    (legacy_dir / "rin.png").write_bytes(_image((32, 48), "PNG", mode="P"))
    store.put("avatars", "legacy/kenji.png", _image((50, 70), "PNG"))
    characters = [
        LegacyCharacter("Yuki", str(legacy_dir / "yuki.png"), (64, 80)),
        LegacyCharacter("Kenji", "avatars/legacy/kenji.png", (50, 70)),
        LegacyCharacter("Mei", (legacy_dir / "mei.jpg").as_uri(), (40, 40)),
        LegacyCharacter("Rin", "legacy/rin.png", (32, 48)),  # relative to base_dir
        LegacyCharacter("Sora", None),
    ]
    scene_ids = _legacy_database(catalog_url, characters)

    upgrade_database(catalog_url)
    assert current_revision(catalog_url) == head_revision()
    engine = make_engine(catalog_url)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as session:
            scenes = session.scalars(select(SceneImage).order_by(SceneImage.prompt)).all()
            assert [s.id for s in scenes] == list(scene_ids)
            assert [s.is_memory for s in scenes] == [False, True]
            assert all(s.avatar_kit_id is None and s.derived_from_asset_id is None for s in scenes)
            assert all(s.storage_bucket == "scenes" for s in scenes)
            assert session.scalar(select(func.count()).select_from(AvatarKit)) == 0

        report = migrate_legacy_avatars(factory, store, base_dir=tmp_path)
        assert report.errors == []
        assert (report.kits_created, report.assets_imported, report.characters_linked) == (4, 4, 4)

        with session_scope(factory) as session:
            for legacy in characters:
                character = session.get(Character, legacy.id)
                assert character is not None and character.avatar_url == legacy.avatar_url
                if legacy.avatar_url is None:
                    assert character.active_avatar_kit_id is None
                    continue
                kit = session.get(AvatarKit, character.active_avatar_kit_id)
                assert kit is not None
                assert (kit.name, kit.character_id, kit.is_default, kit.status) == (
                    f"{legacy.name} Default",
                    legacy.id,
                    True,
                    "draft",
                )
                assert "shy barista" in kit.appearance_prompt
                (anchor,) = session.scalars(
                    select(AvatarAsset).where(AvatarAsset.avatar_kit_id == kit.id)
                ).all()
                assert kit.primary_anchor_id == anchor.id and kit.secondary_anchor_id is None
                assert (anchor.asset_type, anchor.source_type) == ("anchor_portrait", "imported")
                assert anchor.is_canonical and anchor.is_active
                assert anchor.storage_bucket == "avatars"
                assert anchor.storage_path == anchor_path(
                    str(kit.id), "anchor_portrait", str(anchor.id)
                )
                assert anchor.generation_metadata["legacy_avatar_url"] == legacy.avatar_url
                data = store.get("avatars", anchor.storage_path)
                with Image.open(BytesIO(data)) as stored:
                    assert stored.format == "PNG" and stored.size == legacy.size
                assert (anchor.width, anchor.height) == legacy.size
                assert anchor.file_size_bytes == len(data)
            assert session.scalar(select(func.count()).select_from(SceneImage)) == 2

        counts, objects = _counts(factory), store.list("avatars")
        again = migrate_legacy_avatars(factory, store, base_dir=tmp_path)
        assert _no_changes(again) and again.errors == [] and again.skipped == 4
        assert _counts(factory) == counts
        assert store.list("avatars") == objects
    finally:
        engine.dispose()


def test_unreadable_legacy_avatars_are_reported_and_leave_nothing_behind(
    migrated_session_factory: sessionmaker[Session], tmp_path: Path, store: LocalObjectStore
) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(_image((20, 20), "PNG"))
    full = _image((200, 200), "PNG")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(full[: len(full) // 2])
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is not an image")
    urls = {
        "Good": str(good),
        "Truncated": str(truncated),
        "Text": str(not_image),
        "Missing": str(tmp_path / "missing.png"),
        "Remote": "https://cdn.example.com/avatars/x.png",
        "Escape": "../outside.png",
    }
    with session_scope(migrated_session_factory) as session:
        ids = {name: uuid.uuid4() for name in urls}
        session.add_all(
            Character(id=ids[name], name=name, avatar_url=url) for name, url in urls.items()
        )

    report = migrate_legacy_avatars(migrated_session_factory, store, base_dir=tmp_path)

    assert report.kits_created == 1
    reasons = {issue.character_name: issue.reason for issue in report.errors}
    assert set(reasons) == set(urls) - {"Good"}
    assert "not a readable image" in reasons["Truncated"]
    assert "not a readable image" in reasons["Text"]
    assert "does not exist" in reasons["Missing"]
    assert "fetch_url" in reasons["Remote"]
    assert "escapes base_dir" in reasons["Escape"]
    assert all(str(issue.character_id) in str(issue) for issue in report.errors)
    with session_scope(migrated_session_factory) as session:
        kits = session.scalars(select(AvatarKit)).all()
        assert [k.character_id for k in kits] == [ids["Good"]]
        assert session.scalar(select(func.count()).select_from(AvatarAsset)) == 1
        linked = session.scalars(
            select(Character).where(Character.active_avatar_kit_id.is_not(None))
        )
        assert [c.name for c in linked] == ["Good"]
    assert len(store.list("avatars")) == 1


def _fail_asset_inserts(url: str) -> None:
    """Make the database refuse avatar_assets rows, i.e. fail after the image was stored."""
    engine = make_engine(url)
    with engine.begin() as connection:
        if database_kind(url) == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_assets BEFORE INSERT ON avatar_assets "
                "BEGIN SELECT RAISE(ABORT, 'simulated database failure'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_assets() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'simulated database failure'; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_assets BEFORE INSERT ON avatar_assets "
                "FOR EACH ROW EXECUTE FUNCTION refuse_assets()"
            )
    engine.dispose()


def test_database_failure_after_the_store_write_deletes_the_object(
    migrated_catalog_url: str,
    migrated_session_factory: sessionmaker[Session],
    tmp_path: Path,
    store: LocalObjectStore,
) -> None:
    avatar = tmp_path / "yuki.png"
    avatar.write_bytes(_image((20, 20), "PNG"))
    with session_scope(migrated_session_factory) as session:
        session.add(Character(name="Yuki", avatar_url=str(avatar)))
    _fail_asset_inserts(migrated_catalog_url)

    report = migrate_legacy_avatars(migrated_session_factory, store)

    (issue,) = report.errors
    assert "simulated database failure" in issue.reason
    assert report.kits_created == 0
    assert store.list("avatars") == []
    counts = _counts(migrated_session_factory)
    assert (counts["avatar_kits"], counts["avatar_assets"]) == (0, 0)


@pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
def test_models_cover_every_table_of_the_migrations(migrated_catalog_url: str) -> None:
    engine = make_engine(migrated_catalog_url)
    try:
        tables = set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert tables == set(Base.metadata.tables)
