"""The pure parts of the Replicate provider: sizes, aspect ratios and output checks."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from avatar_pipeline.imaging.providers.replicate_models import (
    ASPECT_RATIOS,
    ASPECT_TOLERANCE,
    ModelCall,
    nearest_aspect_ratio,
    ratio,
    sizing,
    verified_png,
)
from avatar_pipeline.imaging.types import InvalidProviderOutputError
from avatar_pipeline_tests.fakes.replicate_server import output_size

MODEL_OF_ROLE = {
    "google_edit": "google/nano-banana",
    "edit": "black-forest-labs/flux-kontext-pro",
    "multi_reference": "black-forest-labs/flux-2-pro",
    "generate": "black-forest-labs/flux-1.1-pro",
    "google": "google/imagen-4",
}


def _image(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (9, 9, 9)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(1024, 1024, "1:1"), (1344, 768, "16:9"), (768, 1024, "3:4"), (1024, 832, "5:4")],
)
def test_nearest_aspect_ratio(width: int, height: int, expected: str) -> None:
    assert nearest_aspect_ratio(width, height, ASPECT_RATIOS["edit"]) == expected


@pytest.mark.parametrize("role", list(ASPECT_RATIOS))
def test_every_ratio_a_model_returns_passes_the_shape_check(role: str) -> None:
    """Kontext's resolution buckets are up to ~7 % off the named ratio: within its tolerance."""
    for label in ASPECT_RATIOS[role]:
        width, height = output_size(MODEL_OF_ROLE[role], {"aspect_ratio": label})
        call = ModelCall({}, {}, ratio(label), None)
        png, size, _ = verified_png(_image(width, height), call, ASPECT_TOLERANCE[role], "p", "m")
        assert size == (width, height) and png.startswith(b"\x89PNG")


def test_custom_size_for_flux_1_1_pro_only_when_no_ratio_fits() -> None:
    assert sizing("generate", 1024, 1024) == ({"aspect_ratio": "1:1"}, 1.0)
    inputs, aspect = sizing("generate", 1024, 512)  # 2:1 is not a FLUX 1.1 Pro ratio
    assert inputs == {"aspect_ratio": "custom", "width": 1024, "height": 512} and aspect == 2.0
    assert sizing("edit", 1024, 512)[0] == {"aspect_ratio": "2:1"}  # Kontext has 2:1
    assert sizing("google", 1024, 512)[0] == {"aspect_ratio": "16:9"}  # nearest Imagen ratio


def test_a_fixed_size_must_match_within_one_pixel() -> None:
    call = ModelCall({}, {}, 1440 / 352, None, expected_size=(1440, 352))
    verified_png(_image(1441, 352), call, 0.02, "p", "m")
    with pytest.raises(InvalidProviderOutputError, match="asked for 1440x352"):
        verified_png(_image(1408, 344), call, 0.02, "p", "m")  # right aspect, wrong size


def test_webp_output_is_re_encoded_as_png() -> None:
    call = ModelCall({}, {}, 1.0, None)
    png, _, fmt = verified_png(_image(64, 64, "WEBP"), call, 0.02, "p", "m")
    assert fmt == "WEBP" and png.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (64, 64)
