"""The Alembic migrations follow the spec's migration path and agree with the ORM models."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import make_engine, make_session_factory, session_scope
from avatar_pipeline.catalog.migrate import (
    current_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from avatar_pipeline.catalog.models import Base
from avatar_pipeline_tests.db_fixtures import database_kind

PHASE1_TABLES = {"avatar_kits", "avatar_assets", "kit_generation_requests", "scene_images"}
LEGACY_TABLES = {"users", "characters", "episodes", "image_assets", "episode_images"}
# Tables added after Phase 1 by later revisions (one line per revision).
ADDED_TABLES = {
    *("review_decisions", "signin_links", "studio_sessions"),  # 0005 studio
    *("provider_budget_leases", "provider_budget_creates", "kit_intake_claims"),  # 0006 fleet
    "episode_messages",  # 0007 scene flow
}


def _diffs(engine: Engine, metadata: sa.MetaData) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, metadata)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_head_schema_matches_the_models(catalog_url: str) -> None:
    upgrade_database(catalog_url)
    assert current_revision(catalog_url) == head_revision() == "0007"
    engine = make_engine(catalog_url)
    try:
        assert _diffs(engine, Base.metadata) == []
        # the comparison is not blind: a column the database lacks is reported
        altered = sa.MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(altered)
        altered.tables["avatar_kits"].append_column(sa.Column("mood", sa.Text()))
        assert [d[0] for d in _diffs(engine, altered)] == ["add_column"]
        indexes = {i["name"] for i in inspect(engine).get_indexes("avatar_kits")}
        assert {"idx_avatar_kits_default", "idx_avatar_kits_status"} <= indexes
        if database_kind(catalog_url) == "postgresql":
            comment = inspect(engine).get_table_comment("image_assets")["text"]
            assert comment.startswith("Generic image assets")
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(catalog_url: str) -> None:
    upgrade_database(catalog_url)
    engine = make_engine(catalog_url)
    factory = make_session_factory(engine)
    try:
        with session_scope(factory) as session:
            user = repo.create_user(session, email="u@example.com")
            character = repo.create_character(session, name="Yuki")
            episode = repo.create_episode(
                session, character_id=character.id, user_id=user.id, title="Cafe"
            )
            kit = repo.create_kit(
                session,
                name="Yuki Default",
                appearance_prompt="black hair",
                style_prompt="anime",
                character_id=character.id,
                is_default=True,
            )
            repo.set_active_kit(session, character.id, kit.id)
            scene = repo.create_scene_image(
                session,
                user_id=user.id,
                episode_id=episode.id,
                storage_path=f"{user.id}/{episode.id}/s.png",
                prompt="at the cafe",
                avatar_kit_id=kit.id,
            )
        engine.dispose()

        downgrade_database(catalog_url, "0001")
        assert current_revision(catalog_url) == "0001"
        assert _tables(engine) == LEGACY_TABLES
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, prompt FROM episode_images")).all()
            columns = {c["name"] for c in inspect(connection).get_columns("characters")}
        assert [(uuid.UUID(str(r.id)), r.prompt) for r in rows] == [(scene.id, "at the cafe")]
        assert "active_avatar_kit_id" not in columns
        engine.dispose()

        downgrade_database(catalog_url, "base")
        assert current_revision(catalog_url) is None
        assert _tables(engine) == set()
        engine.dispose()

        upgrade_database(catalog_url)
        assert _tables(engine) == LEGACY_TABLES - {"episode_images"} | PHASE1_TABLES | ADDED_TABLES
        assert _diffs(engine, Base.metadata) == []
    finally:
        engine.dispose()
