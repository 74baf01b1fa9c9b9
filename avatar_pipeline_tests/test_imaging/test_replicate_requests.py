"""What the Replicate provider sends, asserted by the fake server over real HTTP."""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image

from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.providers.replicate_models import FREE_PREFIX, SUBTLE_PREFIX
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import sha256_hex
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer, data_url_bytes
from avatar_pipeline_tests.test_imaging.conftest import png_bytes

KONTEXT = "black-forest-labs/flux-kontext-pro"
FLUX2 = "black-forest-labs/flux-2-pro"
FLUX11 = "black-forest-labs/flux-1.1-pro"
IMAGEN = "google/imagen-4"


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


async def test_edit_with_one_reference_sends_a_kontext_pro_request(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    reference = png_bytes(300, 300)
    service = ImageService(make_provider())
    response = await service.edit("the same character, waving", [reference], seed=42)

    [create] = fake_replicate.creates()
    assert create.path == f"/v1/models/{KONTEXT}/predictions"
    assert create.authorized
    assert create.headers.get("prefer") == "wait=5"
    sent = create.body["input"]
    assert set(sent) == {
        "prompt", "input_image", "aspect_ratio", "seed", "output_format", "safety_tolerance"
    }  # fmt: skip
    assert sent["prompt"] == "the same character, waving"  # 0.7 is the plain band
    assert data_url_bytes(sent["input_image"]) == reference
    assert sent["input_image"].startswith("data:image/png;base64,")
    assert (sent["aspect_ratio"], sent["seed"], sent["output_format"]) == ("1:1", 42, "png")

    assert response.model == KONTEXT
    assert response.model_version == fake_replicate.latest_versions[KONTEXT]
    assert response.reference_hashes == (sha256_hex(reference),)
    assert response.prediction_ids == (create.prediction_id,)
    assert response.cost_usd == 0.04
    assert _size(response.image) == (1024, 1024)
    # The output came from the fake's file host, without the API token.
    [download] = fake_replicate.recorded("download")
    assert not download.had_authorization
    # Metadata records the reference by hash, not by its pixels.
    assert "base64" not in str(response.to_metadata())
    await service.aclose()


async def test_edit_with_three_references_sends_flux_2_pro_input_images(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    refs = [png_bytes(256, 256, (i * 60, 10, 10)) for i in range(3)]
    service = ImageService(make_provider())
    response = await service.edit(
        "both anchors, sitting", refs, width=1344, height=768, seed=7, negative_prompt="blurry"
    )

    [create] = fake_replicate.creates()
    assert create.path == f"/v1/models/{FLUX2}/predictions"
    sent = create.body["input"]
    assert [data_url_bytes(u) for u in sent["input_images"]] == refs
    assert "input_image" not in sent
    assert sent["aspect_ratio"] == "16:9"
    assert sent["prompt"] == "both anchors, sitting Avoid: blurry."
    assert response.extra["negative_prompt_mode"] == "appended_to_prompt"
    assert response.model == FLUX2
    width, height = _size(response.image)
    assert abs(width / height - 16 / 9) < 0.02
    assert response.extra["output_size"] == [width, height]
    await service.aclose()


async def test_edit_strength_maps_to_prompt_wording_and_references(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    refs = [png_bytes(256, 256, (i * 60, 10, 10)) for i in range(3)]
    service = ImageService(make_provider())
    subtle = await service.edit("smiling", refs[:1], edit_strength=0.1, seed=1)
    free = await service.edit("on a beach", refs, edit_strength=0.9, seed=1)

    first, second = fake_replicate.creates()
    assert first.body["input"]["prompt"] == SUBTLE_PREFIX + "smiling"
    assert subtle.extra["edit_strength_mapping"]["band"] == "subtle"
    # FLUX 2 Pro at high strength: freer wording and only the primary reference.
    assert second.body["input"]["prompt"] == FREE_PREFIX + "on a beach"
    assert [data_url_bytes(u) for u in second.body["input"]["input_images"]] == refs[:1]
    mapping = free.extra["edit_strength_mapping"]
    assert (mapping["references_given"], mapping["references_sent"]) == (3, 1)
    assert free.prompt == FREE_PREFIX + "on a beach"
    await service.aclose()


async def test_generate_sends_flux_1_1_pro_and_custom_sizes(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    service = ImageService(make_provider())
    square = await service.generate("a portrait", num_images=2, seed=10)
    odd = await service.generate("a banner", width=2048, height=512, seed=3)

    a, b, c = fake_replicate.creates()
    assert a.path == b.path == c.path == f"/v1/models/{FLUX11}/predictions"
    assert sorted(r.body["input"]["seed"] for r in (a, b)) == [10, 11]
    assert a.body["input"]["aspect_ratio"] == "1:1"
    assert "width" not in a.body["input"]
    assert len(square.images) == 2 and square.cost_usd == 0.08
    assert square.extra["seeds"] == [10, 11]
    # 4:1 has no named ratio: custom size within FLUX 1.1 Pro's 1440 px limit.
    assert c.body["input"]["aspect_ratio"] == "custom"
    assert (c.body["input"]["width"], c.body["input"]["height"]) == (1440, 352)
    assert _size(odd.image) == (1440, 352)
    await service.aclose()


async def test_google_model_when_configured(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    fake_replicate.output_format_override = "jpg"  # Imagen answers with JPEG: re-encoded
    service = ImageService(make_provider(use_google_for_generate=True))
    response = await service.generate("a castle", width=1024, height=768, seed=5)

    [create] = fake_replicate.creates()
    assert create.path == f"/v1/models/{IMAGEN}/predictions"
    sent = create.body["input"]
    assert sent["aspect_ratio"] == "4:3"
    assert "seed" not in sent and "safety_tolerance" not in sent
    assert sent["safety_filter_level"] == "block_medium_and_above"
    assert response.model == IMAGEN and response.seed is None
    assert response.extra["output_format_received"] == ["JPEG"]
    assert response.image.startswith(b"\x89PNG")
    await service.aclose()


async def test_pinned_version_creates_through_the_version_endpoint(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    old = fake_replicate.latest_versions[KONTEXT]
    fake_replicate.set_latest_version(KONTEXT, "kontext-v2" + "0" * 54)
    provider = make_provider(pinned_versions={KONTEXT: old})
    assert provider.model_for("edit", 1) == (KONTEXT, old)
    service = ImageService(provider)
    response = await service.edit("waving", [png_bytes()], seed=1)

    [create] = fake_replicate.creates()
    assert create.path == "/v1/predictions"
    assert create.body["version"] == old
    assert response.model_version == old
    await service.aclose()


async def test_latest_model_versions_detects_an_upgrade(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    provider = make_provider()
    assert provider.model_for("edit", 1) == (KONTEXT, "latest")
    before = await provider.latest_model_versions()
    assert before[KONTEXT] == provider.model_for("edit", 1)[1]
    fake_replicate.set_latest_version(KONTEXT, "kontext-v2" + "0" * 54)
    after = await provider.latest_model_versions()
    assert after[KONTEXT] == "kontext-v2" + "0" * 54 != before[KONTEXT]
    assert provider.model_for("edit", 1) == (KONTEXT, after[KONTEXT])
    assert provider.model_for("edit", 2)[0] == FLUX2
    assert len(fake_replicate.recorded("model")) == 2 * len(set(provider.models.values()))
    await provider.aclose()
