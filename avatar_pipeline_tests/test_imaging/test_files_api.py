"""References over 1 MB go through Replicate's Files API; smaller ones travel as data URIs."""

from __future__ import annotations

import io
import os
from collections.abc import Callable

from PIL import Image

from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.providers.replicate_models import DATA_URI_MAX_BYTES
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import sha256_hex
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import png_bytes

Make = Callable[..., ReplicateProvider]


def noisy_png(side: int = 768) -> bytes:
    """A PNG of random pixels: incompressible, so over 1 MB at 768 px."""
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


async def test_small_reference_travels_as_a_data_uri(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    service = ImageService(make_provider())
    response = await service.edit("waving", [png_bytes()], seed=1)
    (create,) = fake_replicate.creates()
    assert create.body["input"]["input_image"].startswith("data:image/png;base64,")
    assert not fake_replicate.recorded("file") and response.extra["references_uploaded"] == []
    await service.aclose()


async def test_large_references_are_uploaded_and_the_request_stays_small(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    big, small = noisy_png(), png_bytes()
    assert len(big) > DATA_URI_MAX_BYTES
    service = ImageService(make_provider())
    response = await service.edit("sitting", [big, small], edit_strength=0.5, seed=2)
    uploads = [r for r in fake_replicate.recorded("file") if r.method == "POST"]
    assert len(uploads) == 1 and uploads[0].status == 201
    (create,) = fake_replicate.creates()
    assert create.body_bytes < 200_000  # the 1 MB+ anchor is not inside the request
    first, second = create.body["input"]["input_images"]
    assert first.startswith(fake_replicate.base_url + "/files/")
    assert second.startswith("data:image/png;base64,")
    # the server received the very bytes (it edits from them), and the file was deleted after
    assert fake_replicate.resolve_input_image(first) is None  # deleted
    deletes = [r for r in fake_replicate.recorded("file") if r.method == "DELETE"]
    assert len(deletes) == 1 and deletes[0].status == 204
    assert response.extra["references_uploaded"] == [0]
    recorded = response.extra["input"]["input_images"][0]
    assert recorded.startswith("<files API") and sha256_hex(big)[:16] in recorded
    await service.aclose()


async def test_uploaded_reference_reaches_the_model(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    """The fake edits from its first reference: the output must resemble the uploaded image."""
    big = noisy_png(640)
    service = ImageService(make_provider(data_uri_max_bytes=1000))
    response = await service.edit("waving", [big], edit_strength=0.5, seed=3)
    with Image.open(io.BytesIO(response.image)) as out, Image.open(io.BytesIO(big)) as ref:
        a = out.convert("L").resize((32, 32))
        b = ref.convert("L").resize((32, 32))
        diff = sum(abs(x - y) for x, y in zip(a.getdata(), b.getdata(), strict=True)) / 1024
    assert diff < 40  # derived from the reference, not a fresh drawing
    await service.aclose()
