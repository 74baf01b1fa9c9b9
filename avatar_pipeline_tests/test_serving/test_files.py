"""Signed URLs of the local store: valid until they expire, refused when altered."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from avatar_pipeline_tests.test_serving.conftest import Api


def scene_url(api: Api) -> str:
    response = api.client.post(
        "/scenes/generate",
        json={"episode_id": str(api.episode_id), "moment": "reading", "width": 256, "height": 256},
        headers=api.user.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["url"]


def test_signed_scene_url_works_until_it_expires(
    api: Api, at_time: Callable[[float], None]
) -> None:
    url = scene_url(api)
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])

    at_time(expires - 1)
    ok = api.client.get(url)
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "image/png" and ok.content.startswith(b"\x89PNG")

    at_time(expires)
    expired = api.client.get(url)
    assert expired.status_code == 403
    assert "expired" in expired.json()["detail"]


def test_tampered_or_missing_signatures_are_refused(api: Api) -> None:
    url = scene_url(api)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    signature, expires = query["signature"][0], query["expires"][0]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    assert api.client.get(f"{parts.path}?expires={expires}&signature={flipped}").status_code == 403
    later = int(expires) + 3600
    assert api.client.get(f"{parts.path}?expires={later}&signature={signature}").status_code == 403
    other_path = parts.path.replace(".png", "0.png")
    assert (
        api.client.get(f"{other_path}?expires={expires}&signature={signature}").status_code == 403
    )
    unsigned = api.client.get(parts.path)
    assert unsigned.status_code == 403
    assert "private" in unsigned.json()["detail"]


def test_avatars_are_public_read_but_a_bad_signature_still_fails(api: Api) -> None:
    kit = api.create_kit()
    asset = api.upload(kit["id"]).json()["asset"]
    public = api.client.get(f"/files/avatars/{asset['storage_path']}")
    assert public.status_code == 200
    assert public.content == api.services.object_store.get("avatars", asset["storage_path"])
    bad = api.client.get(f"/files/avatars/{asset['storage_path']}?expires=1&signature=x")
    assert bad.status_code == 403


def test_unknown_objects_and_buckets_are_404(api: Api) -> None:
    assert api.client.get("/files/avatars/nope/anchors/portrait_x.png").status_code == 404
    assert api.client.get("/files/secrets/a.png").status_code == 404
    assert api.client.get("/files/avatars/..%2F..%2Fcatalog.db").status_code == 404


def test_healthz(api: Api) -> None:
    """A probe's answer only: no paths, hosts, backends or provider names (api_load)."""
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "object_store": "ok"}
    assert str(api.settings.local_store_root) not in response.text


def test_openapi_lists_the_spec_endpoints(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    expected = {
        "/scenes/generate": {"post"},
        "/scenes/episode/{episode_id}": {"get"},
        "/scenes/{scene_id}/memory": {"patch"},
        "/scenes/memories": {"get"},
        "/avatar-kits": {"post", "get"},
        "/avatar-kits/{kit_id}": {"get", "patch", "delete"},
        "/characters/{character_id}/avatar-kits": {"get"},
        "/characters/{character_id}/active-kit": {"patch"},
        "/avatar-kits/{kit_id}/assets": {"post", "get"},
        "/avatar-kits/{kit_id}/assets/{asset_id}": {"patch", "delete"},
        "/avatar-kits/{kit_id}/primary-anchor": {"patch"},
        "/avatar-kits/{kit_id}/secondary-anchor": {"patch"},
        "/avatar-kits/{kit_id}/generate-anchors": {"post"},
        "/avatar-kits/{kit_id}/generate-expressions": {"post"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
