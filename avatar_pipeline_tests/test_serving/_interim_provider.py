"""TEMPORARY: a tiny provider used only until the offline provider exists."""

from __future__ import annotations

import io

from PIL import Image

from avatar_pipeline.imaging.providers.base import ImageProvider
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.imaging.types import EditRequest, GenerateRequest, ProviderResult


def _png(w: int, h: int, ref: bytes | None) -> bytes:
    img = (
        Image.open(io.BytesIO(ref)).convert("RGB").resize((w, h))
        if ref
        else Image.new("RGB", (w, h), (9, 9, 9))
    )
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


class Interim(ImageProvider):
    name = "interim"

    async def generate(self, request: GenerateRequest) -> ProviderResult:
        return ProviderResult(
            (_png(request.width, request.height, None),),
            "interim",
            "m",
            "v",
            request.prompt,
            request.seed,
            0.0,
        )

    async def edit(self, request: EditRequest) -> ProviderResult:
        return ProviderResult(
            (_png(request.width, request.height, request.reference_images[0]),),
            "interim",
            "m",
            "v",
            request.prompt,
            request.seed,
            0.0,
        )

    def model_for(self, operation: str, reference_count: int = 0) -> tuple[str, str]:
        return ("m", "v")

    async def latest_model_versions(self) -> dict[str, str]:
        return {}


def interim_service() -> ImageService:
    return ImageService(Interim())
