"""Every invalid input is rejected before any request reaches the (fake) Replicate server."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image

from avatar_pipeline.domain.prompts import MAX_PROMPT_CHARS
from avatar_pipeline.imaging.providers.replicate import ReplicateProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import InvalidImageRequestError
from avatar_pipeline.imaging.validation import MAX_REFERENCE_BYTES
from avatar_pipeline_tests.fakes.replicate_server import FakeReplicateServer
from avatar_pipeline_tests.test_imaging.conftest import png_bytes


def _png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares a huge image (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buffer, format="GIF")
    return buffer.getvalue()


REF = png_bytes()
EDIT_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("empty prompt", {"prompt": ""}, "prompt is empty"),
    ("blank prompt", {"prompt": "   \n"}, "prompt is empty"),
    ("long prompt", {"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, f"limit is {MAX_PROMPT_CHARS}"),
    ("NUL in prompt", {"prompt": "a\x00b"}, "prompt contains a NUL"),
    ("NUL in negative", {"negative_prompt": "a\x00b"}, "negative_prompt contains a NUL"),
    ("no references", {"reference_images": []}, "reference_images is empty"),
    ("nine references", {"reference_images": [REF] * 9}, "at most 8"),
    ("not an image", {"reference_images": [b"hello world"]}, r"reference_images\[0\].*decode"),
    ("empty bytes", {"reference_images": [REF, b""]}, r"reference_images\[1\] is empty"),
    ("truncated png", {"reference_images": [REF[: len(REF) // 2]]}, "does not decode"),
    ("gif", {"reference_images": [_gif()]}, "GIF; send PNG, JPEG or WebP"),
    (
        "decompression bomb",
        {"reference_images": [_png_header_claiming(100_000, 100_000)]},
        "decompression-bomb limit",
    ),
    (
        "just over the pixel limit",
        {"reference_images": [_png_header_claiming(10_000, 10_000)]},
        "declares 10000x10000 pixels",
    ),
    (
        "too large",
        {"reference_images": [b"\x89PNG" + b"\x00" * MAX_REFERENCE_BYTES]},
        "limit is 20 MiB",
    ),
    ("width too small", {"width": 128}, "width=128"),
    ("width too large", {"width": 4096}, "width=4096"),
    ("height not a multiple of 16", {"height": 1000}, "height=1000.*multiple of 16"),
    ("strength below 0", {"edit_strength": -0.1}, "edit_strength=-0.1"),
    ("strength above 1", {"edit_strength": 1.5}, "edit_strength=1.5"),
    ("strength NaN", {"edit_strength": float("nan")}, "edit_strength=nan"),
    ("negative seed", {"seed": -1}, "seed=-1"),
    ("huge seed", {"seed": 2**40}, "seed="),
]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("case", "change", "message"), EDIT_CASES, ids=[c[0] for c in EDIT_CASES])
async def test_invalid_edit_is_rejected_before_any_request(
    fake_replicate: FakeReplicateServer,
    make_provider: Callable[..., ReplicateProvider],
    case: str,
    change: dict[str, Any],
    message: str,
) -> None:
    service = ImageService(make_provider())
    arguments: dict[str, Any] = {"prompt": "waving", "reference_images": [REF], "seed": 1}
    arguments.update(change)
    with pytest.raises(InvalidImageRequestError, match=message):
        await service.edit(**arguments)
    assert fake_replicate.recorded() == []


GENERATE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("empty prompt", {"prompt": ""}, "prompt is empty"),
    ("zero images", {"num_images": 0}, "num_images=0"),
    ("five images", {"num_images": 5}, "num_images=5"),
    ("width not int", {"width": 512.0}, "width must be an integer"),
    ("long negative", {"negative_prompt": "n" * (MAX_PROMPT_CHARS + 1)}, "negative_prompt is"),
]


@pytest.mark.parametrize(
    ("case", "change", "message"), GENERATE_CASES, ids=[c[0] for c in GENERATE_CASES]
)
async def test_invalid_generate_is_rejected_before_any_request(
    fake_replicate: FakeReplicateServer,
    make_provider: Callable[..., ReplicateProvider],
    case: str,
    change: dict[str, Any],
    message: str,
) -> None:
    service = ImageService(make_provider())
    arguments: dict[str, Any] = {"prompt": "a portrait", "seed": 1}
    arguments.update(change)
    with pytest.raises(InvalidImageRequestError, match=message):
        await service.generate(**arguments)
    assert fake_replicate.recorded() == []


async def test_limits_of_the_accepted_range_are_accepted(
    fake_replicate: FakeReplicateServer, make_provider: Callable[..., ReplicateProvider]
) -> None:
    service = ImageService(make_provider())
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(jpeg, format="JPEG")
    response = await service.edit(
        "p" * MAX_PROMPT_CHARS,
        [REF] * 7 + [jpeg.getvalue()],
        edit_strength=1.0,
        width=256,
        height=2048,
        seed=2**32 - 1,
    )
    assert response.extra["edit_strength_mapping"]["references_sent"] == 1
    [create] = fake_replicate.creates()
    assert create.body["input"]["input_images"][0].startswith("data:image/png;base64,")
    await service.aclose()
