"""OpenCLIP image/text embedder, loaded once per process and never downloading by default.

``pretrained`` is an open_clip tag (``laion2b_s34b_b79k``) or a local checkpoint path. A tag is
resolved to a file that is *already* on disk (the Hugging Face cache, or ``cache_dir``); only
when ``AVATAR_ALLOW_WEIGHT_DOWNLOAD=1`` is set may open_clip fetch it. A missing file fails
fast with :class:`EmbedderUnavailableError` instead of reaching for the network.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from avatar_pipeline.consistency.embedders.images import decode_rgb
from avatar_pipeline.consistency.types import EmbedderInfo

logger = logging.getLogger(__name__)

ALLOW_DOWNLOAD_ENV = "AVATAR_ALLOW_WEIGHT_DOWNLOAD"
_HF_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


class EmbedderUnavailableError(RuntimeError):
    """The requested embedder cannot be loaded (missing weights, unknown model, bad file)."""


def downloads_allowed() -> bool:
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def _how_to_fix(model_name: str) -> str:
    return (
        f"put an open_clip checkpoint for {model_name} on disk and set "
        "AVATAR_CLIP_PRETRAINED=/path/to/checkpoint.pt (and AVATAR_CLIP_MODEL if it is not "
        f"{model_name}), or set AVATAR_EMBEDDER=perceptual (or auto) to score without CLIP, "
        f"or set {ALLOW_DOWNLOAD_ENV}=1 on a machine that may download weights"
    )


def _cached_tag_file(cfg: dict[str, Any], cache_dir: str | None) -> str | None:
    """The local file a pretrained tag refers to, if it is already on disk."""
    if cfg.get("file"):
        return str(cfg["file"]) if os.path.isfile(cfg["file"]) else None
    hf_hub = cfg.get("hf_hub") or ""
    if hf_hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub ships with open_clip
            return None
        repo_id, filename = os.path.split(hf_hub)
        names: tuple[str, ...] = _HF_WEIGHTS
        if filename:  # open_clip prefers a .safetensors twin of a .bin/.pth file
            stem, ext = os.path.splitext(filename)
            names = (stem + ".safetensors", filename) if ext in (".bin", ".pth") else (filename,)
        for name in names:
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = cfg.get("url") or ""
    if url:
        target = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if target.is_file():
            return str(target)
    return None


def _where_tags_live(cache_dir: str | None) -> str:
    if cache_dir:
        return cache_dir
    try:
        from huggingface_hub import constants

        return f"the Hugging Face cache {constants.HF_HUB_CACHE} and ~/.cache/clip"
    except ImportError:  # pragma: no cover
        return "~/.cache/clip"


@dataclass
class _LoadedClip:
    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    weights_file: str  # the file actually loaded, or the tag when open_clip downloaded it
    lock: threading.Lock
    # Label prompts repeat on every kit: each is encoded once per process.
    texts: dict[str, np.ndarray] = field(default_factory=dict)


_REGISTRY: dict[tuple[str, str, str], _LoadedClip] = {}
_REGISTRY_LOCK = threading.Lock()


def _load(model_name: str, pretrained: str, device: str, cache_dir: str | None) -> _LoadedClip:
    if not downloads_allowed():
        # Belt and braces for anything open_clip might still ask the Hugging Face hub for.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import open_clip
    except ImportError as exc:  # pragma: no cover - both are project dependencies
        raise EmbedderUnavailableError(
            f"open_clip/torch are not importable ({exc}); install open-clip-torch and torch"
        ) from exc

    if model_name.startswith("hf-hub:") and not downloads_allowed():
        raise EmbedderUnavailableError(
            f"model {model_name!r} would be fetched from the Hugging Face hub, and weight "
            f"downloads are off; use 'local-dir:/path/to/model' for a copy on disk, or "
            f"{_how_to_fix(model_name)}"
        )
    if open_clip.get_model_config(model_name) is None and not model_name.startswith(
        ("hf-hub:", "local-dir:")
    ):
        raise EmbedderUnavailableError(
            f"unknown open_clip model {model_name!r} (e.g. ViT-B-32, ViT-B-16, ViT-L-14; "
            "open_clip.list_models() lists all); "
            "set AVATAR_CLIP_MODEL to one of them, or register a config with "
            "open_clip.add_model_config()"
        )

    if not pretrained and not model_name.startswith(("hf-hub:", "local-dir:")):
        raise EmbedderUnavailableError(
            f"no weights given for open_clip {model_name}: a randomly initialised CLIP gives "
            f"meaningless scores; {_how_to_fix(model_name)}"
        )
    kwargs: dict[str, Any] = {}
    weights_file = pretrained
    tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained) if pretrained else {}
    if tag_cfg and not downloads_allowed():
        local = _cached_tag_file(tag_cfg, cache_dir)
        if local is None:
            raise EmbedderUnavailableError(
                f"open_clip weights {model_name}/{pretrained} are not on this machine (looked in "
                f"{_where_tags_live(cache_dir)}) and weight downloads are off; "
                f"{_how_to_fix(model_name)}"
            )
        # Same preprocessing and activation as open_clip's own tag path, from the local file.
        weights_file = local
        kwargs = {
            "image_mean": tag_cfg.get("mean"),
            "image_std": tag_cfg.get("std"),
            "image_interpolation": tag_cfg.get("interpolation"),
            "image_resize_mode": tag_cfg.get("resize_mode"),
            "force_quick_gelu": bool(tag_cfg.get("quick_gelu", False)),
        }
    elif pretrained and not tag_cfg and not os.path.isfile(pretrained):
        known = open_clip.list_pretrained_tags_by_model(model_name)
        shown = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "") if known else "none"
        raise EmbedderUnavailableError(
            f"open_clip weights {pretrained!r} for {model_name} are neither a checkpoint file "
            f"on this machine nor a known tag (tags: {shown}); "
            f"{_how_to_fix(model_name)}"
        )
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name,
            pretrained=weights_file or None,
            device=device,
            cache_dir=cache_dir,
            **kwargs,
        )
        tokenizer = open_clip.get_tokenizer(model_name, cache_dir=cache_dir)
    except EmbedderUnavailableError:
        raise
    except Exception as exc:
        raise EmbedderUnavailableError(
            f"loading open_clip {model_name} with weights {pretrained!r} on {device} failed: "
            f"{type(exc).__name__}: {exc}; {_how_to_fix(model_name)}"
        ) from exc
    model.eval()
    logger.info("loaded open_clip %s (weights %s) on %s", model_name, weights_file, device)
    return _LoadedClip(model, preprocess, tokenizer, device, weights_file, threading.Lock())


def load_clip(
    model_name: str, pretrained: str, device: str = "cpu", cache_dir: str | Path | None = None
) -> _LoadedClip:
    """The process-wide loaded model for (model, weights, device); loads it on first use."""
    key = (model_name, pretrained, device)
    with _REGISTRY_LOCK:
        loaded = _REGISTRY.get(key)
        if loaded is None:
            loaded = _load(model_name, pretrained, device, str(cache_dir) if cache_dir else None)
            _REGISTRY[key] = loaded
        return loaded


def loaded_clip_models() -> list[tuple[str, str, str]]:
    """(model, weights, device) of every model loaded in this process."""
    with _REGISTRY_LOCK:
        return list(_REGISTRY)


def clear_clip_registry() -> None:
    """Forget loaded models (frees their memory once no embedder holds them)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()


def _weights_fingerprint(path: str) -> str:
    """Size and mtime of a checkpoint file, so a replaced file never reuses cached embeddings."""
    try:
        stat = os.stat(path)
    except OSError:
        return ""
    return f"{stat.st_size}-{stat.st_mtime_ns}"


CHARACTER_CROP = "character-crop-v1"


def character_crop(image: Image.Image, size: int = 224) -> Image.Image:
    """The isolated character, aligned on a neutral fill (what CLIP sees instead of the frame)."""
    from avatar_pipeline.consistency.isolation import isolate

    return isolate(image).crop(size, source=image)


class OpenClipEmbedder:
    """CLIP image and text embeddings (L2-normalised float32), batched, in inference mode.

    Images are embedded as the isolated character on a neutral fill (:func:`character_crop`),
    never the frame: the background does not reach the identity score."""

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str = "laion2b_s34b_b79k",
        device: str = "cpu",
        cache_dir: str | Path | None = None,
        batch_size: int = 16,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._clip = load_clip(model_name, pretrained, device, cache_dir)
        self.batch_size = batch_size
        self.info = EmbedderInfo("clip", model_name, pretrained)
        fingerprint = _weights_fingerprint(self._clip.weights_file)
        # Embeds the isolated character (CHARACTER_CROP), so cached frame embeddings never mix in.
        self.cache_key = f"clip|{model_name}|{pretrained}|{fingerprint}|{CHARACTER_CROP}"

    @property
    def has_text_tower(self) -> bool:
        return True

    @property
    def model(self) -> Any:
        return self._clip.model

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        import torch

        if not images:
            return np.zeros((0, self._dim()), dtype=np.float32)
        rows: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            pixels = torch.stack(
                [self._clip.preprocess(character_crop(decode_rgb(b))) for b in chunk]
            )
            with self._clip.lock, torch.inference_mode():
                features = self._clip.model.encode_image(pixels.to(self._clip.device))
                features = torch.nn.functional.normalize(features.float(), dim=-1)
            rows.append(features.cpu().numpy())
        return np.concatenate(rows).astype(np.float32, copy=False)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Text embeddings; each distinct prompt is encoded once per process and model."""
        import torch

        if not texts:
            return np.zeros((0, self._dim()), dtype=np.float32)
        memo = self._clip.texts
        missing = [t for t in dict.fromkeys(texts) if t not in memo]
        if missing:
            tokens = self._clip.tokenizer(missing)
            with self._clip.lock, torch.inference_mode():
                features = self._clip.model.encode_text(tokens.to(self._clip.device))
                features = torch.nn.functional.normalize(features.float(), dim=-1)
            memo.update(zip(missing, features.cpu().numpy().astype(np.float32), strict=True))
        return np.stack([memo[t] for t in texts])

    def _dim(self) -> int:
        return int(getattr(self._clip.model.visual, "output_dim", 0))
