"""The spec's rules hold in the database itself (raw SQL) and through the repository, on both
SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog._support import guarded
from avatar_pipeline.catalog.errors import (
    ConflictError,
    ConstraintViolationError,
    InvalidReferenceError,
    InvalidTransitionError,
)
from avatar_pipeline.catalog.models import AvatarAsset, AvatarKit, Character
from avatar_pipeline_tests.test_catalog.utils import add_asset, make_character, make_kit

KIT_INSERT = sa.text(
    "INSERT INTO avatar_kits (id, name, appearance_prompt, style_prompt, status) "
    "VALUES (:id, 'k', 'a', 's', :status)"
).bindparams(sa.bindparam("id", type_=sa.Uuid()))
ASSET_INSERT = sa.text(
    "INSERT INTO avatar_assets (id, avatar_kit_id, asset_type, storage_path, source_type) "
    "VALUES (:id, :kit_id, :asset_type, 'p.png', :source_type)"
).bindparams(sa.bindparam("id", type_=sa.Uuid()), sa.bindparam("kit_id", type_=sa.Uuid()))


def _kit_snapshot(session: Session, kit_id: uuid.UUID) -> dict[str, object]:
    session.expire_all()
    kit = session.get(AvatarKit, kit_id)
    assert kit is not None
    return {c: getattr(kit, c) for c in ("primary_anchor_id", "secondary_anchor_id", "status")}


def test_second_default_kit_for_a_character_is_a_conflict(catalog_session: Session) -> None:
    character = make_character(catalog_session)
    first = make_kit(catalog_session, character, name="Yuki Default", is_default=True)
    with pytest.raises(ConflictError) as caught:
        make_kit(catalog_session, character, name="Yuki Summer", is_default=True)
    assert str(first.id) in str(caught.value) and "Yuki Summer" in str(caught.value)
    catalog_session.commit()
    kits = catalog_session.scalars(select(AvatarKit)).all()
    assert [k.name for k in kits] == ["Yuki Default"]
    # non-default kits, and defaults of other characters, are fine
    formal = make_kit(catalog_session, character, name="Yuki Formal")
    make_kit(catalog_session, make_character(catalog_session, "Kenji"), is_default=True)
    with pytest.raises(ConflictError, match="already has a default kit"):
        repo.update_kit(catalog_session, formal.id, is_default=True)
    catalog_session.expire_all()
    assert repo.get_kit(catalog_session, formal.id).is_default is False


@pytest.mark.parametrize(
    ("statement", "values", "constraint"),
    [
        (KIT_INSERT, {"status": "published"}, "ck_avatar_kits_status"),
        (ASSET_INSERT, {"asset_type": "selfie", "source_type": "imported"}, None),
        (ASSET_INSERT, {"asset_type": "expression", "source_type": "scraped"}, None),
    ],
    ids=["status", "asset_type", "source_type"],
)
def test_database_rejects_bad_enum_values(
    catalog_session: Session, statement: sa.TextClause, values: dict, constraint: str | None
) -> None:
    kit = make_kit(catalog_session)
    catalog_session.commit()
    expected = constraint or (
        "ck_avatar_assets_asset_type"
        if values["asset_type"] == "selfie"
        else "ck_avatar_assets_source_type"
    )
    params = {"id": uuid.uuid4(), "kit_id": kit.id, **values}
    engine = catalog_session.get_bind()
    with engine.connect() as connection, pytest.raises(IntegrityError, match=expected):
        connection.execute(statement, params)
    # the same raw write inside the repository's guard becomes a named ConstraintViolationError
    with pytest.raises(ConstraintViolationError) as caught, guarded(catalog_session, "raw"):
        catalog_session.execute(statement, params)
    assert caught.value.constraint == expected


def test_repository_rejects_bad_enum_values_before_the_database(catalog_session: Session) -> None:
    kit = make_kit(catalog_session)
    with pytest.raises(ConstraintViolationError, match="draft, active, archived") as caught:
        make_kit(catalog_session, status="published")
    assert caught.value.constraint == "ck_avatar_kits_status"
    with pytest.raises(ConstraintViolationError, match="'selfie' is not allowed"):
        repo.register_asset(
            catalog_session,
            kit_id=kit.id,
            asset_type="selfie",
            storage_path=f"{kit.id}/p.png",
            source_type="imported",
        )
    with pytest.raises(ConstraintViolationError, match="'scraped' is not allowed"):
        add_asset(catalog_session, kit, source_type="scraped")
    with pytest.raises(ConstraintViolationError, match="draft, active, archived"):
        repo.update_kit(catalog_session, kit.id, status="published")
    assert catalog_session.scalar(select(func.count()).select_from(AvatarAsset)) == 0


def test_primary_anchor_from_another_kit_is_rejected(catalog_session: Session) -> None:
    kit, other = make_kit(catalog_session), make_kit(catalog_session)
    own = add_asset(catalog_session, kit)
    repo.set_primary_anchor(catalog_session, kit.id, own.id)
    foreign = add_asset(catalog_session, other)
    catalog_session.commit()
    before = _kit_snapshot(catalog_session, kit.id)
    with pytest.raises(InvalidReferenceError, match=f"belongs to kit {other.id}"):
        repo.set_primary_anchor(catalog_session, kit.id, foreign.id)
    catalog_session.commit()
    assert (
        _kit_snapshot(catalog_session, kit.id)
        == before
        == {
            "primary_anchor_id": own.id,
            "secondary_anchor_id": None,
            "status": "draft",
        }
    )
    assert repo.get_asset(catalog_session, foreign.id).is_canonical is False


def test_anchor_of_the_wrong_type_is_rejected(catalog_session: Session) -> None:
    kit = make_kit(catalog_session)
    portrait = add_asset(catalog_session, kit, "anchor_portrait")
    happy = add_asset(catalog_session, kit, "expression", expression="happy")
    with pytest.raises(InvalidReferenceError, match="secondary anchor must be an anchor_fullbody"):
        repo.set_secondary_anchor(catalog_session, kit.id, portrait.id)
    with pytest.raises(InvalidReferenceError, match="primary anchor must be an anchor_portrait"):
        repo.set_primary_anchor(catalog_session, kit.id, happy.id)
    assert _kit_snapshot(catalog_session, kit.id)["secondary_anchor_id"] is None


def test_active_kit_must_be_the_characters_own_and_not_archived(catalog_session: Session) -> None:
    yuki, kenji = make_character(catalog_session, "Yuki"), make_character(catalog_session, "Kenji")
    kenjis_kit = make_kit(catalog_session, kenji)
    with pytest.raises(InvalidReferenceError, match=f"belongs to character {kenji.id}"):
        repo.set_active_kit(catalog_session, yuki.id, kenjis_kit.id)
    yukis_kit = make_kit(catalog_session, yuki)
    repo.archive_kit(catalog_session, yukis_kit.id)
    with pytest.raises(InvalidTransitionError, match="archived"):
        repo.set_active_kit(catalog_session, yuki.id, yukis_kit.id)
    catalog_session.expire_all()
    assert repo.get_character(catalog_session, yuki.id).active_avatar_kit_id is None


def test_deleting_a_kit_row_cascades_to_its_assets(catalog_session: Session) -> None:
    character = make_character(catalog_session)
    kit, other = make_kit(catalog_session, character), make_kit(catalog_session, character)
    portrait = add_asset(catalog_session, kit)
    add_asset(catalog_session, kit, "expression", expression="shy", derived_from_id=portrait.id)
    repo.set_primary_anchor(catalog_session, kit.id, portrait.id)
    repo.set_active_kit(catalog_session, character.id, kit.id)
    kept = add_asset(catalog_session, other)
    catalog_session.commit()

    catalog_session.execute(
        sa.text("DELETE FROM avatar_kits WHERE id = :id").bindparams(
            sa.bindparam("id", type_=sa.Uuid())
        ),
        {"id": kit.id},
    )
    catalog_session.commit()
    catalog_session.expire_all()
    remaining = catalog_session.scalars(select(AvatarAsset.id)).all()
    assert remaining == [kept.id]
    assert catalog_session.get(Character, character.id).active_avatar_kit_id is None


def test_foreign_keys_are_enforced(catalog_session: Session) -> None:
    engine = catalog_session.get_bind()
    params = {
        "id": uuid.uuid4(),
        "kit_id": uuid.uuid4(),
        "asset_type": "pose",
        "source_type": "imported",
    }
    with engine.connect() as connection, pytest.raises(IntegrityError):
        connection.execute(ASSET_INSERT, params)
