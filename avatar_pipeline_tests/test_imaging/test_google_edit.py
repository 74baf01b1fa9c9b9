"""Google's nano-banana family as the edit() model: ``image_input``, no seed, own mapping."""

from __future__ import annotations

from collections.abc import Callable

import avatar_pipeline_tests.fakes.replicate_server as fake
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import png_bytes

Make = Callable[..., ReplicateProvider]
NANO = "google/nano-banana-pro"


async def test_edit_runs_on_nano_banana_with_image_input(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    provider = make_provider(use_google_for_edit=True, google_edit_model=NANO)
    service = ImageService(provider)
    refs = [png_bytes(), png_bytes(colour=(0, 0, 200))]
    response = await service.edit("smiling", refs, edit_strength=0.9, width=1024, height=768,
                                  seed=4)  # fmt: skip
    (create,) = fake_replicate.creates()
    assert create.path == f"/v1/models/{NANO}/predictions"
    sent = create.body["input"]
    assert "seed" not in sent and "safety_tolerance" not in sent
    assert len(sent["image_input"]) == 1  # "free" band: only the primary reference
    assert sent["prompt"].startswith("Freely re-imagine") and sent["aspect_ratio"] == "4:3"
    assert sent["output_format"] == "png"
    assert response.model == NANO
    assert response.model_version == fake_replicate.latest_versions[NANO]
    assert response.extra["role"] == "google_edit" and response.extra["seed_supported"] is False
    assert response.extra["edit_strength_mapping"]["band"] == "free"
    assert response.seed is None  # what ran; the request's seed still keys the cache
    await service.aclose()


async def test_nano_banana_no_output_quirk_is_retried(
    fake_replicate: FakeReplicateServer, make_provider: Make
) -> None:
    fake_replicate.schedule(fake.NO_OUTPUT)
    provider = make_provider(
        use_google_for_edit=True, google_edit_model=NANO, max_prediction_attempts=2
    )
    service = ImageService(provider)
    response = await service.edit("smiling", [png_bytes()], edit_strength=0.5, seed=1)
    assert len(response.extra["prediction_retries"]) == 1
    assert fake_replicate.create_count() == 2
    await service.aclose()
