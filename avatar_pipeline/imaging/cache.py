"""The idempotent request cache: an identical seeded request never pays the provider twice.

A request's fingerprint is a sha256 over everything that decides its output: provider, model,
model version, operation, prompt, negative prompt, reference image hashes, seed, width, height,
edit strength and number of images. Upgrading the model (a new version) therefore changes the
fingerprint, and requests without a seed are never cached (the provider would draw a new one).

On disk, under ``root/<fp[:2]>/``: ``<fp>.<i>.png`` per image and ``<fp>.json`` with the
provenance. Every file is written to a temporary name and renamed into place, PNGs first and the
JSON last, so a reader sees either a complete entry or none; a JSON whose images are missing or
do not match their recorded sha256 is treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar_pipeline.files import atomic_write
from avatar_pipeline.imaging.types import ImageResponse, sha256_hex

logger = logging.getLogger(__name__)

FINGERPRINT_SCHEMA = 1


def request_fingerprint(
    *,
    provider: str,
    model: str,
    model_version: str,
    operation: str,
    prompt: str,
    negative_prompt: str | None,
    reference_hashes: tuple[str, ...] | list[str],
    seed: int | None,
    width: int,
    height: int,
    edit_strength: float | None,
    num_images: int,
) -> str:
    payload = {
        "schema": FINGERPRINT_SCHEMA,
        "provider": provider,
        "model": model,
        "model_version": model_version,
        "operation": operation,
        "prompt": prompt,
        "negative_prompt": negative_prompt,
        "reference_hashes": list(reference_hashes),
        "seed": seed,
        "width": width,
        "height": height,
        "edit_strength": None if edit_strength is None else round(float(edit_strength), 6),
        "num_images": num_images,
    }
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass(frozen=True)
class CachedEntry:
    images: tuple[bytes, ...]
    metadata: dict[str, Any]


class ImageCache:
    """Stored results keyed by request fingerprint (blocking I/O: call via a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ImageCache(root={str(self.root)!r})"

    def _dir(self, fingerprint: str) -> Path:
        if len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
            raise ValueError(f"not a sha256 fingerprint: {fingerprint!r}")
        return self.root / fingerprint[:2]

    def get(self, fingerprint: str) -> CachedEntry | None:
        folder = self._dir(fingerprint)
        meta_path = folder / f"{fingerprint}.json"
        try:
            metadata = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("image cache entry %s is unreadable (%s); ignoring it", meta_path, exc)
            return None
        images: list[bytes] = []
        for i, expected in enumerate(metadata.get("image_sha256", [])):
            try:
                data = (folder / f"{fingerprint}.{i}.png").read_bytes()
            except OSError:
                logger.warning("image cache entry %s misses image %d; ignoring it", meta_path, i)
                return None
            if sha256_hex(data) != expected:
                logger.warning(
                    "image cache entry %s image %d is corrupt; ignoring it", meta_path, i
                )
                return None
            images.append(data)
        if not images:
            return None
        return CachedEntry(tuple(images), metadata["response"])

    def put(self, response: ImageResponse) -> None:
        folder = self._dir(response.fingerprint)
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(response.images):
            atomic_write(folder / f"{response.fingerprint}.{i}.png", data)
        record = {
            "image_sha256": [sha256_hex(data) for data in response.images],
            "response": response.to_metadata(),
        }
        atomic_write(
            folder / f"{response.fingerprint}.json",
            json.dumps(record, indent=2, sort_keys=True, default=str).encode("utf-8"),
        )
