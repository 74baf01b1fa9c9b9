"""What each Replicate model is sent, and how its output is checked (pure functions, no I/O).

Roles: ``edit`` (one reference: FLUX.1 Kontext Pro, ``input_image``), ``multi_reference`` (2..8
references: FLUX 2 Pro, ``input_images``), ``generate`` (FLUX 1.1 Pro), ``google`` (Imagen 4,
for generate() when configured) and ``google_edit`` (Google's nano-banana family, for every
edit() when configured: ``image_input`` with 1..8 references, no seed, no safety_tolerance; it
honours edit_strength through the prompt only, like Kontext, and in the "free" band gets only the
primary reference, like FLUX 2 Pro).

edit_strength (0 = keep the reference, 1 = ignore it). Kontext and FLUX 2 Pro have no strength
parameter, so the strength is mapped onto the prompt, and for FLUX 2 Pro onto the references sent:

- below 0.35 ("subtle"): the prompt becomes "Make only a subtle change to the reference image,
  keeping everything else exactly the same: <prompt>"; all references are sent;
- 0.35 to 0.75 ("plain"): the prompt is sent unchanged; all references are sent;
- above 0.75 ("free"): the prompt becomes "Freely re-imagine the scene, keeping the character's
  identity (face, hair, eye colour, outfit) recognisable: <prompt>"; FLUX 2 Pro is sent only
  the first (primary) reference.

The mapping used is recorded in ``ProviderResult.extra['edit_strength_mapping']``. None of these
models takes a negative prompt: it is appended as "Avoid: <negative prompt>." to the prompt.

Sizes: width/height become the nearest ``aspect_ratio`` the model supports; FLUX 1.1 Pro gets
``aspect_ratio='custom'`` with width/height (multiples of 32, at most 1440) when no named ratio
is within 1 %. The model decides the pixel size, so an output is checked to decode and to have
the aspect ratio asked for: within 2 %, or 8 % for Kontext, which snaps to its ~1 MP resolution
buckets (16:9 comes back as 1392x752, 5:4 as 1104x944). Outputs are returned as PNG, re-encoded
when a model sent JPEG or WebP.

References under ``DATA_URI_MAX_BYTES`` (1 MB: Replicate recommends data URIs only below that)
travel as data URLs (``data:image/png;base64,...``) inside the create request; larger ones are
uploaded first through Replicate's Files API (``POST /v1/files``) and sent as the file's
``urls.get`` (the provider does the upload and deletes the file afterwards).
"""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from avatar_pipeline.imaging.types import (
    EditRequest,
    GenerateRequest,
    InvalidProviderOutputError,
    sha256_hex,
)
from avatar_pipeline.imaging.validation import max_image_pixels

SUBTLE_BELOW = 0.35
FREE_ABOVE = 0.75
SUBTLE_PREFIX = (
    "Make only a subtle change to the reference image, keeping everything else exactly the same: "
)
FREE_PREFIX = (
    "Freely re-imagine the scene, keeping the character's identity (face, hair, eye colour, "
    "outfit) recognisable: "
)
ROLES = ("edit", "multi_reference", "generate", "google", "google_edit")
DEFAULT_COST_PER_IMAGE = {
    "edit": 0.04,
    "multi_reference": 0.05,
    "generate": 0.04,
    "google": 0.04,
    "google_edit": 0.039,
}
DATA_URI_MAX_BYTES = 1_000_000
GOOGLE_EDIT_MAX_REFERENCES = 8
ASPECT_RATIOS = {
    "edit": ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "4:5", "5:4", "21:9", "9:21",
             "2:1", "1:2"),
    "multi_reference": ("1:1", "16:9", "9:16", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5"),
    "generate": ("1:1", "16:9", "9:16", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5"),
    "google": ("1:1", "16:9", "9:16", "4:3", "3:4"),
    "google_edit": ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"),
}  # fmt: skip
ASPECT_TOLERANCE = {
    "edit": 0.08,
    "multi_reference": 0.02,
    "generate": 0.02,
    "google": 0.02,
    "google_edit": 0.03,
}
FLUX11_MAX_SIDE = 1440
SAFETY_PATTERN = re.compile(
    r"\bE005\b|nsfw|safety|flagged|sensitive|content[ _-]?polic|moderat", re.IGNORECASE
)


@dataclass(frozen=True)
class ModelCall:
    """One prediction to create: its input, what metadata records of it, the aspect expected."""

    input: dict[str, Any]
    recorded_input: dict[str, Any]
    expected_aspect: float
    seed: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    expected_size: tuple[int, int] | None = None  # only where the input fixes the pixel size


def role_for(
    operation: str, reference_count: int, *, use_google: bool, use_google_for_edit: bool = False
) -> str:
    if operation == "edit":
        if use_google_for_edit:
            return "google_edit"
        return "edit" if reference_count <= 1 else "multi_reference"
    if operation == "generate":
        return "google" if use_google else "generate"
    raise ValueError(f"unknown operation {operation!r}: use 'generate' or 'edit'")


def ratio(label: str) -> float:
    a, b = label.split(":")
    return int(a) / int(b)


def nearest_aspect_ratio(width: int, height: int, choices: tuple[str, ...]) -> str:
    target = math.log(width / height)
    return min(choices, key=lambda label: abs(math.log(ratio(label)) - target))


def sizing(role: str, width: int, height: int) -> tuple[dict[str, Any], float]:
    """The size inputs for ``role`` and the aspect ratio (width / height) they should produce."""
    label = nearest_aspect_ratio(width, height, ASPECT_RATIOS[role])
    if role == "generate" and abs(ratio(label) / (width / height) - 1) > 0.01:
        scale = min(1.0, FLUX11_MAX_SIDE / max(width, height))
        w = max(256, round(width * scale / 32) * 32)
        h = max(256, round(height * scale / 32) * 32)
        return {"aspect_ratio": "custom", "width": w, "height": h}, w / h
    return {"aspect_ratio": label}, ratio(label)


def fold_negative(prompt: str, negative: str | None) -> str:
    if negative and negative.strip():
        return f"{prompt.rstrip()} Avoid: {negative.strip().rstrip('.')}."
    return prompt


def encode_reference(data: bytes) -> tuple[str, str]:
    """A reference as a data URL, and as metadata records it (type, size, hash; no pixels)."""
    with Image.open(io.BytesIO(data)) as probe:  # header only: the service validated it
        mime = Image.MIME.get(probe.format or "", "image/png")
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return url, f"<{mime} {len(data)} bytes sha256:{sha256_hex(bytes(data))[:16]}>"


def strength_mapping(role: str, strength: float, references: int) -> dict[str, Any]:
    if strength < SUBTLE_BELOW:
        band, prefix = "subtle", SUBTLE_PREFIX
    elif strength > FREE_ABOVE:
        band, prefix = "free", FREE_PREFIX
    else:
        band, prefix = "plain", ""
    sent = 1 if role in ("multi_reference", "google_edit") and band == "free" else references
    return {
        "edit_strength": strength,
        "band": band,
        "prompt_prefix": prefix,
        "references_given": references,
        "references_sent": sent,
        "thresholds": [SUBTLE_BELOW, FREE_ABOVE],
    }


def references_sent(role: str, request: EditRequest) -> int:
    """How many of the request's references the model call will carry."""
    refs = len(request.reference_images)
    return int(strength_mapping(role, float(request.edit_strength), refs)["references_sent"])


def edit_call(
    role: str,
    request: EditRequest,
    *,
    safety_tolerance: int,
    uploaded: dict[int, str] | None = None,
) -> ModelCall:
    """The Kontext / FLUX 2 Pro / nano-banana call for an edit (encodes references: run it off
    the loop). ``uploaded`` maps a reference's index to its Files API URL (sent instead of a
    data URL)."""
    refs = request.reference_images
    mapping = strength_mapping(role, float(request.edit_strength), len(refs))
    prompt = fold_negative(mapping["prompt_prefix"] + request.prompt, request.negative_prompt)
    encoded = []
    for i, ref in enumerate(refs[: mapping["references_sent"]]):
        url, desc = encode_reference(ref) if i not in (uploaded or {}) else ("", "")
        if uploaded and i in uploaded:
            url = uploaded[i]
            desc = f"<files API {len(ref)} bytes sha256:{sha256_hex(bytes(ref))[:16]}>"
        encoded.append((url, desc))
    size_input, aspect = sizing(role, request.width, request.height)
    model_input: dict[str, Any] = {"prompt": prompt}
    recorded: dict[str, Any] = {"prompt": prompt}
    if role == "edit":
        model_input["input_image"], recorded["input_image"] = encoded[0]
    elif role == "google_edit":
        model_input["image_input"] = [url for url, _ in encoded]
        recorded["image_input"] = [desc for _, desc in encoded]
    else:
        model_input["input_images"] = [url for url, _ in encoded]
        recorded["input_images"] = [desc for _, desc in encoded]
    tail: dict[str, Any] = {**size_input, "output_format": "png"}
    if role != "google_edit":  # nano-banana takes neither a seed nor a safety tolerance
        tail["safety_tolerance"] = safety_tolerance
        if request.seed is not None:
            tail["seed"] = request.seed
    model_input.update(tail)
    recorded.update(tail)
    extra = {
        "edit_strength_mapping": mapping,
        "aspect_ratio": size_input["aspect_ratio"],
        "negative_prompt_mode": "appended_to_prompt" if request.negative_prompt else None,
        "references_uploaded": sorted(uploaded or {}),
        "seed_supported": role != "google_edit",
    }
    seed = request.seed if role != "google_edit" else None
    return ModelCall(model_input, recorded, aspect, seed, extra)


def generate_calls(
    role: str, request: GenerateRequest, *, safety_tolerance: int
) -> list[ModelCall]:
    """One FLUX 1.1 Pro / Imagen call per image (seed, seed+1, ...; Imagen takes no seed)."""
    prompt = fold_negative(request.prompt, request.negative_prompt)
    size_input, aspect = sizing(role, request.width, request.height)
    extra = {
        "aspect_ratio": size_input["aspect_ratio"],
        "seed_supported": role != "google",
        "negative_prompt_mode": "appended_to_prompt" if request.negative_prompt else None,
    }
    calls = []
    for i in range(request.num_images):
        model_input: dict[str, Any] = {"prompt": prompt, **size_input, "output_format": "png"}
        seed = None
        if role == "google":
            model_input["safety_filter_level"] = "block_medium_and_above"
        else:
            model_input["safety_tolerance"] = safety_tolerance
            if request.seed is not None:
                seed = (request.seed + i) % 2**32
                model_input["seed"] = seed
        size = (model_input["width"], model_input["height"]) if "width" in model_input else None
        calls.append(ModelCall(model_input, dict(model_input), aspect, seed, extra, size))
    return calls


def verified_png(
    raw: bytes,
    call: ModelCall,
    tolerance: float,
    prediction_id: str,
    model: str,
) -> tuple[bytes, tuple[int, int], str]:
    """Decode an output fully, check its shape, and return it as PNG bytes (CPU work).

    The aspect ratio must be within ``tolerance`` of the one asked for; where the input fixed
    the pixel size (FLUX 1.1 Pro's custom size) each side must match within 1 px.
    """

    def bad(reason: str) -> InvalidProviderOutputError:
        return InvalidProviderOutputError(
            f"output of prediction {prediction_id} on {model} {reason}; run the request again",
            provider="replicate",
            prediction_id=prediction_id,
        )

    try:
        with Image.open(io.BytesIO(raw)) as probe:
            fmt = probe.format or "unknown"
            width, height = probe.size
            if width * height > max_image_pixels():
                raise bad(f"declares {width}x{height} pixels, over the decompression-bomb limit")
            probe.verify()
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            if fmt != "PNG":
                converted = image.convert("RGBA" if "A" in image.getbands() else "RGB")
                buffer = io.BytesIO()
                converted.save(buffer, format="PNG")
                raw = buffer.getvalue()
    except InvalidProviderOutputError:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        raise bad(f"does not decode as an image ({type(exc).__name__}, {len(raw)} bytes)") from exc
    if abs((width / height) / call.expected_aspect - 1) > tolerance:
        raise bad(
            f"is {width}x{height} (aspect {width / height:.3f}); the request asked for aspect "
            f"{call.expected_aspect:.3f} (tolerance {tolerance:.0%})"
        )
    if call.expected_size is not None:
        expected_w, expected_h = call.expected_size
        if abs(width - expected_w) > 1 or abs(height - expected_h) > 1:
            raise bad(f"is {width}x{height}; the request asked for {expected_w}x{expected_h}")
    return raw, (width, height), fmt
