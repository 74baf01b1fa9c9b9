"""The scene flow through the API: reference edit with a kit, text-to-image without one."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from avatar_pipeline.catalog import repository as repo
from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.errors import NotFoundError
from avatar_pipeline.catalog.models import SceneImage
from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import (
    EditRequest,
    GenerateRequest,
    ProviderResult,
    ProviderUnavailableError,
)
from avatar_pipeline.serving.scene_flow import SceneRequest, store_and_record_scene
from avatar_pipeline.storage import keys
from avatar_pipeline_tests.test_serving.conftest import Api
from avatar_pipeline_tests.test_serving.factories import (
    KIT_PROMPTS,
    counts,
    failing_inserts,
    image_bytes,
)

SIZE = {"width": 256, "height": 256}


def generate(api: Api, headers: dict[str, str] | None = None, **body: Any) -> Any:
    payload = {"episode_id": str(api.episode_id), "moment": "sipping coffee by the window", **SIZE}
    payload.update({k: str(v) if isinstance(v, uuid.UUID) else v for k, v in body.items()})
    return api.client.post("/scenes/generate", json=payload, headers=headers or api.user.headers)


def scene_row(api: Api, scene_id: str) -> SceneImage:
    with session_scope(api.services.session_factory) as session:
        scene = session.get(SceneImage, uuid.UUID(scene_id))
        assert scene is not None
        return scene


def kit_with_anchor(api: Api, *, activate: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    kit = api.create_kit()
    anchor = api.upload(kit["id"]).json()["asset"]
    if activate:
        # Test set-up: the kit counts as approved (approval itself needs the whole model sheet
        # and is tested with the studio); only an active kit serves scenes.
        with session_scope(api.services.session_factory) as session:
            repo.get_kit(session, uuid.UUID(kit["id"])).status = "active"
            repo.set_active_kit(session, api.character_id, uuid.UUID(kit["id"]))
    return kit, anchor


def test_scene_with_a_kit_is_an_edit_of_the_primary_anchor(api: Api) -> None:
    kit, anchor = kit_with_anchor(api)
    response = generate(api)
    assert response.status_code == 201, response.text
    scene = response.json()

    row = scene_row(api, scene["id"])
    assert row.avatar_kit_id == uuid.UUID(kit["id"])
    assert row.derived_from_asset_id == uuid.UUID(anchor["id"])
    assert row.user_id == api.user.id and row.episode_id == api.episode_id
    assert row.storage_path == keys.scene_path(str(api.user.id), str(api.episode_id), scene["id"])
    assert row.storage_path == f"{api.user.id}/{api.episode_id}/{scene['id']}.png"
    anchor_png = api.services.object_store.get("avatars", anchor["storage_path"])
    meta = row.generation_metadata
    assert meta["operation"] == "edit"
    assert meta["reference_hashes"] == [hashlib.sha256(anchor_png).hexdigest()]
    assert meta["reference_asset_ids"] == [anchor["id"]]
    assert meta["negative_prompt"] == KIT_PROMPTS["negative_prompt"]
    assert "sipping coffee" in row.prompt and KIT_PROMPTS["appearance_prompt"] in row.prompt

    stored = api.services.object_store.get("scenes", row.storage_path)
    assert stored.startswith(b"\x89PNG")
    assert scene["url"].startswith(f"http://testserver/files/scenes/{row.storage_path}?expires=")
    assert scene["url_expires_in"] == api.settings.signed_url_ttl_seconds
    served = api.client.get(scene["url"])
    assert served.status_code == 200 and served.content == stored


def test_emotion_picks_the_expression_asset(api: Api) -> None:
    kit, anchor = kit_with_anchor(api)
    happy = api.upload(kit["id"], "expression", expression="happy").json()["asset"]
    tagged = api.upload(
        kit["id"], "expression", expression="pensive", emotion_tags="nostalgia"
    ).json()["asset"]

    by_vocab = scene_row(api, generate(api, emotion="joy").json()["id"])
    assert by_vocab.derived_from_asset_id == uuid.UUID(happy["id"])
    assert by_vocab.generation_metadata["expression"] == "happy"
    assert "happy expression" in by_vocab.prompt

    by_tag = scene_row(api, generate(api, emotion="Nostalgia").json()["id"])
    assert by_tag.derived_from_asset_id == uuid.UUID(tagged["id"])

    no_asset = scene_row(api, generate(api, emotion="anger").json()["id"])
    assert no_asset.derived_from_asset_id == uuid.UUID(anchor["id"])
    assert "angry expression" in no_asset.prompt

    api.services.object_store.delete("avatars", happy["storage_path"])
    missing_image = scene_row(api, generate(api, emotion="joy").json()["id"])
    assert missing_image.derived_from_asset_id == uuid.UUID(anchor["id"])
    assert "missing" in missing_image.generation_metadata["fallback_notes"][0]


def test_without_a_kit_the_scene_falls_back_to_text_to_image(api: Api) -> None:
    response = generate(api)
    assert response.status_code == 201, response.text
    row = scene_row(api, response.json()["id"])
    assert row.avatar_kit_id is None and row.derived_from_asset_id is None
    assert row.generation_metadata["operation"] == "generate"
    assert row.generation_metadata["reference_hashes"] == []
    assert row.prompt == "sipping coffee by the window"
    assert api.services.object_store.exists("scenes", row.storage_path)


def test_a_kit_without_an_anchor_still_lends_its_prompts(api: Api) -> None:
    kit, _ = kit_with_anchor(api)
    # an approved kit whose primary anchor pointer was cleared after approval
    with session_scope(api.services.session_factory) as session:
        repo.get_kit(session, uuid.UUID(kit["id"])).primary_anchor_id = None
    row = scene_row(api, generate(api).json()["id"])
    assert row.generation_metadata["operation"] == "generate"
    assert row.avatar_kit_id == uuid.UUID(kit["id"]) and row.derived_from_asset_id is None
    assert KIT_PROMPTS["appearance_prompt"] in row.prompt


def test_users_see_only_their_own_scenes(api: Api) -> None:
    before = counts(api.services.session_factory, api.services.object_store)
    stolen = generate(api, episode_id=api.others_episode_id)
    assert stolen.status_code == 404
    assert "not one of your episodes" in stolen.json()["detail"]
    assert counts(api.services.session_factory, api.services.object_store) == before

    mine = [generate(api).json()["id"] for _ in range(2)]
    theirs = generate(api, headers=api.other.headers, episode_id=api.others_episode_id).json()["id"]

    listed = api.client.get(f"/scenes/episode/{api.episode_id}", headers=api.user.headers)
    assert [s["id"] for s in listed.json()] == mine
    assert all("signature=" in s["url"] for s in listed.json())
    peek = api.client.get(f"/scenes/episode/{api.others_episode_id}", headers=api.user.headers)
    assert peek.status_code == 404
    assert [
        s["id"]
        for s in api.client.get(
            f"/scenes/episode/{api.others_episode_id}", headers=api.other.headers
        ).json()
    ] == [theirs]


def test_memory_toggle_only_on_own_scenes(api: Api) -> None:
    scene_id = generate(api).json()["id"]
    theirs = generate(api, headers=api.other.headers, episode_id=api.others_episode_id).json()["id"]

    saved = api.client.patch(
        f"/scenes/{scene_id}/memory", json={"is_memory": True}, headers=api.user.headers
    )
    assert saved.status_code == 200 and saved.json()["is_memory"] is True
    memories = api.client.get("/scenes/memories", headers=api.user.headers).json()
    assert [m["id"] for m in memories] == [scene_id]

    other = api.client.patch(
        f"/scenes/{theirs}/memory", json={"is_memory": True}, headers=api.user.headers
    )
    assert other.status_code == 404
    assert scene_row(api, theirs).is_memory is False
    assert api.client.get("/scenes/memories", headers=api.other.headers).json() == []

    api.client.patch(
        f"/scenes/{scene_id}/memory", json={"is_memory": False}, headers=api.user.headers
    )
    assert api.client.get("/scenes/memories", headers=api.user.headers).json() == []


def test_bad_scene_requests_change_nothing(api: Api) -> None:
    before = counts(api.services.session_factory, api.services.object_store)
    assert generate(api, moment="   ").status_code == 422
    assert generate(api, moment="x" * 5000).status_code == 422
    assert generate(api, width=100).status_code == 422
    assert generate(api, episode_id=uuid.uuid4()).status_code == 404
    assert counts(api.services.session_factory, api.services.object_store) == before


class UnavailableProvider(ImageProvider):
    """The provider's side of the process boundary: it is down."""

    name = "down"

    async def generate(self, request: GenerateRequest) -> ProviderResult:
        raise ProviderUnavailableError(
            "HTTP 503 from the provider after 4 retries", provider="down"
        )

    async def edit(self, request: EditRequest) -> ProviderResult:
        raise ProviderUnavailableError(
            "HTTP 503 from the provider after 4 retries", provider="down"
        )

    def model_for(self, operation: str, reference_count: int = 0) -> tuple[str, str]:
        return ("down/model", "v1")

    async def latest_model_versions(self) -> dict[str, str]:
        return {}


def test_provider_failure_is_502_and_stores_nothing(api: Api) -> None:
    kit_with_anchor(api)
    api.services.image_service = ImageService(UnavailableProvider())
    before = counts(api.services.session_factory, api.services.object_store)
    response = generate(api)
    assert response.status_code == 502
    assert "HTTP 503" in response.json()["detail"]
    assert counts(api.services.session_factory, api.services.object_store) == before


def test_failed_scene_insert_deletes_the_stored_image(api: Api) -> None:
    kit_with_anchor(api)
    before = counts(api.services.session_factory, api.services.object_store)
    with failing_inserts(api.services.engine, "scene_images"):
        response = generate(api)
    assert response.status_code == 503
    assert counts(api.services.session_factory, api.services.object_store) == before


def test_store_and_record_cleans_up_when_the_row_is_refused(api: Api) -> None:
    store = api.services.object_store
    request = SceneRequest(user_id=api.user.id, episode_id=api.others_episode_id, moment="m")
    with pytest.raises(NotFoundError):
        store_and_record_scene(
            api.services.session_factory,
            store,
            request=request,
            image=image_bytes(),
            prompt="m",
            kit_id=None,
            derived_from_asset_id=None,
            generation_metadata={},
        )
    assert store.list("scenes") == []
