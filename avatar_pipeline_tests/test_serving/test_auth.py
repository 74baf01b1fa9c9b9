"""Bearer tokens: who may call what."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import User
from avatar_pipeline.serving.security import (
    InvalidTokenError,
    UnknownUserError,
    create_access_token,
    decode_token,
    issue_token,
)
from avatar_pipeline_tests.test_serving.conftest import Api
from avatar_pipeline_tests.test_serving.factories import KIT_PROMPTS, counts

ADMIN_WRITES = [
    ("post", "/avatar-kits", {"name": "X", **KIT_PROMPTS}),
    ("patch", "/avatar-kits/{kit}", {"name": "Y"}),
    ("delete", "/avatar-kits/{kit}", None),
    ("post", "/avatar-kits/{kit}/approve", None),
    ("patch", "/avatar-kits/{kit}/primary-anchor", {"asset_id": str(uuid.uuid4())}),
    ("post", "/avatar-kits/{kit}/generate-anchors", None),
    ("post", "/avatar-kits/{kit}/generate-expressions", None),
    ("patch", "/characters/{character}/active-kit", {"avatar_kit_id": None}),
    ("get", "/avatar-kits", None),
    ("get", "/avatar-kits/{kit}/assets", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_WRITES)
def test_kit_admin_needs_an_admin(api: Api, method: str, path: str, body: object) -> None:
    kit = api.create_kit()
    url = path.format(kit=kit["id"], character=api.character_id)
    before = counts(api.services.session_factory, api.services.object_store)

    anonymous = api.client.request(method, url, json=body)
    user = api.client.request(method, url, json=body, headers=api.user.headers)

    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert user.status_code == 403, user.text
    assert "admin" in user.json()["detail"]
    assert counts(api.services.session_factory, api.services.object_store) == before
    assert api.client.get(f"/avatar-kits/{kit['id']}", headers=api.admin.headers).json() == kit


def test_upload_by_a_user_is_forbidden_and_stores_nothing(api: Api) -> None:
    kit = api.create_kit()
    before = counts(api.services.session_factory, api.services.object_store)
    response = api.client.post(
        f"/avatar-kits/{kit['id']}/assets",
        files={"file": ("a.png", b"\x89PNG", "image/png")},
        data={"asset_type": "anchor_portrait"},
        headers=api.user.headers,
    )
    assert response.status_code == 403
    assert counts(api.services.session_factory, api.services.object_store) == before


def test_scenes_need_a_valid_token(api: Api) -> None:
    body = {"episode_id": str(api.episode_id), "moment": "sipping coffee"}
    assert api.client.post("/scenes/generate", json=body).status_code == 401
    garbage = {"Authorization": "Bearer not-a-jwt"}
    assert api.client.get("/scenes/memories", headers=garbage).status_code == 401
    wrong_secret = api.settings.model_copy(
        update={"signing_secret": SecretStr("another-secret-that-is-long-enough-0123")}
    )
    forged = create_access_token(wrong_secret, api.admin.id)
    response = api.client.get("/scenes/memories", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_expired_token_is_refused(api: Api) -> None:
    token = create_access_token(
        api.settings,
        api.admin.id,
        timedelta(minutes=5),
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    response = api.client.get("/avatar-kits", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_role_comes_from_the_users_table_not_the_token(api: Api) -> None:
    claims_admin = create_access_token(api.settings, api.user.id, role="admin")
    response = api.client.get("/avatar-kits", headers={"Authorization": f"Bearer {claims_admin}"})
    assert response.status_code == 403


def test_token_of_a_deleted_user_is_refused(api: Api) -> None:
    with session_scope(api.services.session_factory) as session:
        session.delete(session.get(User, api.other.id))
    response = api.client.get("/scenes/memories", headers=api.other.headers)
    assert response.status_code == 401
    assert "no longer exists" in response.json()["detail"]


def test_decode_token_round_trip_and_tamper(api: Api) -> None:
    token = create_access_token(api.settings, api.admin.id, timedelta(minutes=1), role="admin")
    claims = decode_token(api.settings, token)
    assert claims.user_id == api.admin.id and claims.role == "admin"
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    with pytest.raises(InvalidTokenError):
        decode_token(api.settings, f"{header}.{payload}.{flipped}")


def test_issue_token_for_an_email(api: Api) -> None:
    token = issue_token(api.settings, api.admin.email)
    assert decode_token(api.settings, token).user_id == api.admin.id
    assert (
        api.client.get("/avatar-kits", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    with pytest.raises(UnknownUserError, match=r"nobody@example\.com"):
        issue_token(api.settings, "nobody@example.com")
