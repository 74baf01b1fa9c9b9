"""The API's edges (issue 9): request limits before the body is read, authentication before the
body, 16-bit uploads, strict booleans, slot rules on PATCH, soft-deleted assets, the active-kit
rule, health, the development secret, OPTIONS/Allow."""

from __future__ import annotations

import asyncio
import io
import struct
import sys
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.catalog.models import AvatarKit, Character, SceneImage
from avatar_pipeline.serving.main import create_app
from avatar_pipeline.serving.security import create_access_token, serve_bind_check
from avatar_pipeline.settings import DEV_SIGNING_SECRET, Settings
from avatar_pipeline_tests.test_serving.conftest import BASE_URL, Api
from avatar_pipeline_tests.test_serving.factories import counts

GIB = 1024**3
PART_HEAD = (
    b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
)


# --- an ASGI client that counts what the app reads of the body ------------------------------


class Upload:
    """Drives the app at the ASGI level with a body of ``size`` bytes that is produced only as
    the app asks for it, so the test sees how much of the body the server really took in."""

    def __init__(self, size: int, chunk: int = 1024 * 1024, declare_length: bool = True) -> None:
        self.size, self.chunk, self.declare_length = size, chunk, declare_length
        self.read = 0
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""

    async def receive(self) -> dict[str, Any]:
        if self.read >= 64 * 1024 * 1024:  # before the fix the app read on: stop the test here
            raise AssertionError(f"the app read {self.read} bytes of an upload it should refuse")
        part = min(self.chunk, self.size - self.read)
        body = b"\0" * part
        if self.read == 0:  # a well-formed multipart start: one big file field
            body = (PART_HEAD + body)[:part]
        self.read += part
        return {"type": "http.request", "body": body, "more_body": self.read < self.size}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def run(self, app: Any, path: str, headers: dict[str, str]) -> Upload:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw.append((b"content-type", b"multipart/form-data; boundary=xyz"))
        if self.declare_length:
            raw.append((b"content-length", str(self.size).encode()))
        else:
            raw.append((b"transfer-encoding", b"chunked"))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "app": app,
        }
        asyncio.run(app(scope, self.receive, self.send))
        return self


def test_unauthenticated_1gib_upload_is_refused_before_a_byte_is_read(api: Api) -> None:
    kit = api.create_kit()
    app = api.client.app
    path = f"/avatar-kits/{kit['id']}/assets"
    before = counts(api.services.session_factory, api.services.object_store)
    for declare in (True, False):
        upload = Upload(GIB, declare_length=declare).run(app, path, {})
        assert upload.status == 401, upload.body
        assert upload.read == 0  # nothing received, so nothing spooled to a temp file
        assert b"Bearer" in upload.body
    forged = create_access_token(
        Settings(_env_file=None, signing_secret="another-secret-entirely-0123456789"),  # type: ignore[arg-type,call-arg]
        api.admin.id,
    )
    upload = Upload(GIB).run(app, path, {"Authorization": f"Bearer {forged}"})
    assert (upload.status, upload.read) == (401, 0)
    assert counts(api.services.session_factory, api.services.object_store) == before


def test_oversized_body_is_refused_before_it_is_read(api: Api) -> None:
    kit = api.create_kit()
    app = api.client.app
    path = f"/avatar-kits/{kit['id']}/assets"
    limit = api.services.upload_limits.max_bytes
    declared = Upload(100 * 1024 * 1024).run(app, path, api.admin.headers)
    assert declared.status == 413 and declared.read == 0
    assert str(limit) in declared.body.decode()
    # no Content-Length: counted as it streams, refused at the first chunk past the limit
    streamed = Upload(100 * 1024 * 1024, declare_length=False).run(app, path, api.admin.headers)
    assert streamed.status == 413, streamed.body
    assert streamed.read <= limit + 64 * 1024 + 1024 * 1024
    # JSON endpoints have their own, smaller limit
    big_json = api.client.post(
        "/avatar-kits",
        content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={**api.admin.headers, "Content-Type": "application/json"},
    )
    assert big_json.status_code == 413
    assert big_json.json()["error"] == "RequestTooLarge"


# --- 16-bit PNG, written by a second encoder (struct + zlib, not Pillow) ---------------------


def _png16(
    width: int, height: int, values: Callable[[int, int], tuple[int, ...]], kind: int
) -> bytes:
    rows = b"".join(
        b"\0"
        + b"".join(struct.pack(">" + "H" * len(values(x, y)), *values(x, y)) for x in range(width))
        for y in range(height)
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 16, kind, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16_bit_png_keeps_its_tones(api: Api) -> None:
    kit = api.create_kit()
    width, height = 256, 64

    def gray(x: int, y: int) -> tuple[int, ...]:
        return (x * 256 + (y % 3) * 100,)  # a full 16-bit ramp, with low-byte noise

    def rgb(x: int, y: int) -> tuple[int, ...]:
        return (x * 257, 65535 - x * 257, (x * 131) % 65536)

    for kind, values in ((0, gray), (2, rgb)):
        response = api.upload(kit["id"], "outfit", data=_png16(width, height, values, kind))
        assert response.status_code == 201, response.text
        stored = api.services.object_store.get("avatars", response.json()["asset"]["storage_path"])
        pixels = np.asarray(Image.open(io.BytesIO(stored)).convert("RGB"), dtype=np.int32)
        expected = np.array(
            [
                [[round(v * 255 / 65535) for v in values(x, y)] for x in range(width)]
                for y in range(height)
            ],
            dtype=np.int32,
        )
        if kind == 0:
            expected = np.repeat(expected, 3, axis=2)
        assert np.abs(pixels - expected).max() <= 1
        assert len(np.unique(pixels[..., 0])) == 256  # not just 0 and 255


# --- strict booleans, PATCH slot rules, soft delete -------------------------------------------


def test_booleans_are_strict(api: Api) -> None:
    kit = api.create_kit()
    asset = api.upload(kit["id"]).json()["asset"]
    admin = api.admin.headers
    for value in (1, 0, "true", "yes"):
        refused = [
            api.client.patch(
                f"/avatar-kits/{kit['id']}", json={"is_default": value}, headers=admin
            ),
            api.client.patch(
                f"/avatar-kits/{kit['id']}/assets/{asset['id']}",
                json={"is_active": value},
                headers=admin,
            ),
            api.client.post(
                "/avatar-kits",
                json={
                    "name": "n",
                    "appearance_prompt": "a",
                    "style_prompt": "s",
                    "is_default": value,
                },
                headers=admin,
            ),
        ]
        assert [r.status_code for r in refused] == [422, 422, 422], [r.text for r in refused]
    ok = api.client.patch(f"/avatar-kits/{kit['id']}", json={"is_default": True}, headers=admin)
    assert ok.status_code == 200 and ok.json()["is_default"] is True


def test_patch_applies_the_uploads_slot_rules(api: Api) -> None:
    kit = api.create_kit()
    anchor = api.upload(kit["id"]).json()["asset"]
    happy = api.upload(kit["id"], "expression", expression="happy").json()["asset"]
    admin = api.admin.headers
    before = counts(api.services.session_factory, api.services.object_store)
    cases = [
        (anchor, {"expression": "happy"}, "expression is only for expression assets"),
        (anchor, {"pose": "sitting"}, "pose is only for pose assets"),
        (happy, {"pose": "sitting"}, "pose is only for pose assets"),
        (happy, {"expression": None}, "need the form field 'expression'"),
    ]
    for asset, body, words in cases:
        response = api.client.patch(
            f"/avatar-kits/{kit['id']}/assets/{asset['id']}", json=body, headers=admin
        )
        assert response.status_code == 422, response.text
        assert words in response.json()["detail"]
    listed = api.client.get(f"/avatar-kits/{kit['id']}/assets", headers=admin).json()
    by_id = {a["id"]: a for a in listed}
    assert by_id[anchor["id"]]["expression"] is None and by_id[anchor["id"]]["pose"] is None
    assert by_id[happy["id"]]["expression"] == "happy"
    assert counts(api.services.session_factory, api.services.object_store) == before
    moved = api.client.patch(
        f"/avatar-kits/{kit['id']}/assets/{happy['id']}", json={"expression": "sad"}, headers=admin
    )
    assert moved.status_code == 200 and moved.json()["expression"] == "sad"


def test_soft_deleted_assets_are_not_served(api: Api) -> None:
    kit = api.create_kit()
    asset = api.upload(kit["id"], "expression", expression="happy").json()["asset"]
    unsigned = f"/files/avatars/{asset['storage_path']}"
    assert api.client.get(unsigned).status_code == 200
    assert api.client.get(asset["url"]).status_code == 200
    deleted = api.client.delete(
        f"/avatar-kits/{kit['id']}/assets/{asset['id']}", headers=api.admin.headers
    )
    assert deleted.status_code == 200
    assert api.client.get(unsigned).status_code == 404
    assert api.client.get(asset["url"]).status_code == 404  # a signed URL issued before, too
    listed = api.client.get(f"/avatar-kits/{kit['id']}/assets", headers=api.admin.headers).json()
    assert asset["id"] not in [a["id"] for a in listed]
    assert api.services.object_store.exists("avatars", asset["storage_path"])  # soft delete only


# --- active kit rule ------------------------------------------------------------------------


def test_a_draft_kit_cannot_be_active_nor_serve_scenes(api: Api) -> None:
    kit = api.create_kit()
    api.upload(kit["id"])  # it has an anchor, but was never approved
    refused = api.client.patch(
        f"/characters/{api.character_id}/active-kit",
        json={"avatar_kit_id": kit["id"]},
        headers=api.admin.headers,
    )
    assert refused.status_code == 409
    assert "approve it first" in refused.json()["detail"]
    # a catalog that already points at a draft kit (written before this rule): not used
    with session_scope(api.services.session_factory) as session:
        session.get(Character, api.character_id).active_avatar_kit_id = uuid.UUID(kit["id"])  # type: ignore[union-attr]
    response = api.client.post(
        "/scenes/generate",
        json={"episode_id": str(api.episode_id), "moment": "reading", "width": 256, "height": 256},
        headers=api.user.headers,
    )
    assert response.status_code == 201, response.text
    with session_scope(api.services.session_factory) as session:
        scene = session.get(SceneImage, uuid.UUID(response.json()["id"]))
        assert scene is not None and scene.avatar_kit_id is None
        assert session.get(AvatarKit, uuid.UUID(kit["id"])).status == "draft"  # type: ignore[union-attr]


# --- health, development secret, serve -------------------------------------------------------


def test_healthz_degraded_is_503_without_details(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object) -> bool:
        raise OSError(f"disk gone at {api.settings.local_store_root}")

    monkeypatch.setattr(api.services.object_store, "exists", broken)
    response = api.client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "database": "ok",
        "object_store": "unreachable",
    }
    assert "disk gone" not in response.text and str(api.settings.var_dir) not in response.text


def _dev_secret_app(api: Api, environment: str, base_url: str) -> tuple[TestClient, str]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment=environment,  # type: ignore[arg-type]
        var_dir=api.settings.var_dir,
        database_url=api.settings.catalog_url,
        storage_local_root=api.settings.local_store_root,
    )
    assert settings.signing_secret.get_secret_value() == DEV_SIGNING_SECRET
    services = type(api.services)(**{**api.services.__dict__, "settings": settings})
    token = create_access_token(settings, api.admin.id)  # what anyone with the repo can forge
    return TestClient(create_app(settings, services=services), base_url=base_url), token


@pytest.mark.parametrize(
    ("environment", "base_url", "accepted"),
    [
        ("development", BASE_URL, False),  # a shared dev deployment: never
        ("local", "http://api.example.com", False),  # not on loopback
        ("local", "http://127.0.0.1:8000", True),
        ("test", BASE_URL, True),
    ],
)
def test_a_token_forged_with_the_dev_secret(
    api: Api, environment: str, base_url: str, accepted: bool
) -> None:
    client, token = _dev_secret_app(api, environment, base_url)
    with client:
        response = client.get("/avatar-kits", headers={"Authorization": f"Bearer {token}"})
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 401
        assert "development signing secret" in response.json()["detail"]


def test_serve_refuses_a_public_bind_with_the_dev_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from avatar_pipeline import cli

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: runs.append(kw))
    monkeypatch.delenv("AVATAR_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("AVATAR_ENVIRONMENT", "local")
    cli_main = cli.main
    assert cli_main(["serve", "--host", "0.0.0.0", "--port", "8765"]) == 2
    assert "REFUSING" in capsys.readouterr().err and runs == []
    assert cli_main(["serve", "--host", "127.0.0.1", "--port", "8765"]) == 0
    assert "WARNING" in capsys.readouterr().err and len(runs) == 1
    real = Settings(_env_file=None, signing_secret="a-real-secret-0123456789abcdef")  # type: ignore[arg-type,call-arg]
    assert serve_bind_check(real, "0.0.0.0") == (None, None)
    assert sys.modules["uvicorn"] is uvicorn


# --- methods -----------------------------------------------------------------------------------


def test_options_and_405_list_every_method_of_the_path(api: Api) -> None:
    kit = api.create_kit()
    options = api.client.options(f"/avatar-kits/{kit['id']}")
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, PATCH, DELETE, OPTIONS"
    put = api.client.put(f"/avatar-kits/{kit['id']}", json={}, headers=api.admin.headers)
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, PATCH, DELETE, OPTIONS"
    assert api.client.options("/no/such/path").status_code == 404
