"""Asset uploads: decoded and bounded before anything is stored; re-encoded as PNG."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from avatar_pipeline.serving.uploads import DEFAULT_MAX_UPLOAD_BYTES, UploadLimits
from avatar_pipeline.storage import keys
from avatar_pipeline_tests.test_serving.conftest import Api
from avatar_pipeline_tests.test_serving.factories import (
    counts,
    failing_inserts,
    image_bytes,
    kit_state,
    noise_png,
    png_declaring,
)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepted_formats_are_stored_as_png_at_the_spec_path(api: Api, fmt: str) -> None:
    kit = api.create_kit()
    response = api.upload(kit["id"], data=image_bytes(fmt, size=(300, 200)), filename=f"a.{fmt}")
    assert response.status_code == 201, response.text
    body = response.json()
    asset = body["asset"]
    assert body["became_anchor"] == "primary" and body["became_canonical"] is True
    assert "primary anchor" in body["message"]
    assert asset["storage_path"] == keys.anchor_path(kit["id"], "anchor_portrait", asset["id"])
    assert asset["source_type"] == "manual_upload"
    assert asset["generation_metadata"]["original_format"] == fmt
    assert (asset["width"], asset["height"], asset["mime_type"]) == (300, 200, "image/png")
    stored = api.services.object_store.get("avatars", asset["storage_path"])
    assert stored.startswith(b"\x89PNG") and len(stored) == asset["file_size_bytes"]
    assert kit_state(api.services.session_factory, kit["id"])["primary_anchor_id"] == uuid.UUID(
        asset["id"]
    )
    served = api.client.get(asset["url"])
    assert served.status_code == 200 and served.content == stored


def test_second_portrait_is_a_candidate_and_expressions_keep_their_tags(api: Api) -> None:
    kit = api.create_kit()
    first = api.upload(kit["id"]).json()
    second = api.upload(kit["id"], data=image_bytes(color=(1, 2, 3))).json()
    assert first["became_anchor"] == "primary"
    assert second["became_anchor"] is None and second["became_canonical"] is False
    assert "candidate" in second["message"]

    happy = api.upload(
        kit["id"], "expression", expression="happy", emotion_tags="Joy, excitement"
    ).json()
    assert happy["became_canonical"] is True
    asset = happy["asset"]
    assert asset["emotion_tags"] == ["joy", "excitement"]
    assert asset["storage_path"] == keys.expression_path(kit["id"], "happy", asset["id"])
    pose = api.upload(kit["id"], "pose", pose="sitting").json()["asset"]
    assert pose["storage_path"] == keys.pose_path(kit["id"], "sitting", pose["id"])


def _rejected(
    api: Api, kit_id: str, data: bytes, filename: str, expected: int, words: str, **form: str
) -> None:
    before = counts(api.services.session_factory, api.services.object_store)
    state = kit_state(api.services.session_factory, kit_id)
    response = api.upload(kit_id, data=data, filename=filename, **form)
    assert response.status_code == expected, response.text
    assert words in response.json()["detail"]
    assert counts(api.services.session_factory, api.services.object_store) == before
    assert kit_state(api.services.session_factory, kit_id) == state


def test_wrong_formats_are_rejected_and_change_nothing(api: Api) -> None:
    kit = api.create_kit()
    _rejected(api, kit["id"], image_bytes("GIF"), "anchor.png", 422, "GIF image")
    _rejected(api, kit["id"], b"just some text, honest\n" * 20, "anchor.png", 422, "not an image")
    _rejected(api, kit["id"], b"", "anchor.png", 422, "empty")
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0))]
    animated = io.BytesIO()
    frames[0].save(animated, format="WEBP", save_all=True, append_images=frames[1:])
    _rejected(api, kit["id"], animated.getvalue(), "a.webp", 422, "animated")


def test_truncated_file_is_rejected(api: Api) -> None:
    kit = api.create_kit()
    data = noise_png()
    _rejected(api, kit["id"], data[: len(data) // 2], "anchor.png", 422, "truncated")


@pytest.mark.parametrize("side", [8000, 40000])
def test_decompression_bombs_are_rejected_before_decoding(api: Api, side: int) -> None:
    # 8000^2 is over our pixel limit; 40000^2 is over Pillow's own bomb limit too.
    kit = api.create_kit()
    bomb = png_declaring(side, side)
    assert len(bomb) < 200
    _rejected(api, kit["id"], bomb, "bomb.png", 422, "pixels")


def test_oversized_upload_is_413(api: Api) -> None:
    kit = api.create_kit()
    too_big = image_bytes() + b"\0" * (DEFAULT_MAX_UPLOAD_BYTES)
    _rejected(api, kit["id"], too_big, "big.png", 413, str(DEFAULT_MAX_UPLOAD_BYTES))
    api.services.upload_limits = UploadLimits(max_bytes=20_000)
    _rejected(api, kit["id"], noise_png((100, 100)), "noise.png", 413, "20000")
    assert api.upload(kit["id"], data=image_bytes(size=(64, 64))).status_code == 201


def test_slot_fields_must_fit_the_asset_type(api: Api) -> None:
    kit = api.create_kit()
    png = image_bytes()
    _rejected(
        api,
        kit["id"],
        png,
        "e.png",
        422,
        "need the form field 'expression'",
        asset_type="expression",
    )
    _rejected(api, kit["id"], png, "e.png", 422, "only for expression assets", expression="happy")
    _rejected(
        api, kit["id"], png, "e.png", 422, "lower-case", asset_type="expression", expression="../x"
    )
    missing_kit = api.upload(str(uuid.uuid4()))
    assert missing_kit.status_code == 404


def test_upload_to_an_archived_kit_is_refused(api: Api) -> None:
    kit = api.create_kit()
    api.client.delete(f"/avatar-kits/{kit['id']}", headers=api.admin.headers)
    _rejected(api, kit["id"], image_bytes(), "a.png", 409, "archived")


def test_asset_metadata_update_promotion_and_soft_delete(api: Api) -> None:
    kit = api.create_kit()
    anchor = api.upload(kit["id"]).json()["asset"]
    happy = api.upload(kit["id"], "expression", expression="happy").json()["asset"]
    candidate = api.upload(kit["id"], "expression", expression="happy").json()["asset"]
    base = f"/avatar-kits/{kit['id']}/assets"

    retagged = api.client.patch(
        f"{base}/{happy['id']}", json={"emotion_tags": ["joy"]}, headers=api.admin.headers
    )
    assert retagged.status_code == 200 and retagged.json()["emotion_tags"] == ["joy"]
    promoted = api.client.patch(
        f"{base}/{candidate['id']}", json={"is_canonical": True}, headers=api.admin.headers
    )
    assert promoted.json()["is_canonical"] is True
    listed = {a["id"]: a for a in api.client.get(base, headers=api.admin.headers).json()}
    assert listed[happy["id"]]["is_canonical"] is False
    assert all(a["url"].startswith("http://testserver/files/avatars/") for a in listed.values())

    other_kit = api.create_kit()
    wrong_kit = api.client.delete(
        f"/avatar-kits/{other_kit['id']}/assets/{anchor['id']}", headers=api.admin.headers
    )
    assert wrong_kit.status_code == 404
    deleted = api.client.delete(f"{base}/{anchor['id']}", headers=api.admin.headers)
    assert deleted.status_code == 200 and deleted.json()["is_active"] is False
    assert kit_state(api.services.session_factory, kit["id"])["primary_anchor_id"] is None
    assert api.services.object_store.exists("avatars", anchor["storage_path"])
    remaining = api.client.get(base, headers=api.admin.headers).json()
    assert anchor["id"] not in {a["id"] for a in remaining}
    everything = api.client.get(f"{base}?include_inactive=true", headers=api.admin.headers).json()
    assert anchor["id"] in {a["id"] for a in everything}


def test_failed_insert_removes_the_stored_upload(api: Api) -> None:
    kit = api.create_kit()
    before = counts(api.services.session_factory, api.services.object_store)
    with failing_inserts(api.services.engine, "avatar_assets"):
        response = api.upload(kit["id"])
    assert response.status_code == 503
    assert "nothing was changed" in response.json()["detail"]
    assert counts(api.services.session_factory, api.services.object_store) == before
