"""Embeddings persisted per (embedder, image bytes), so re-scoring a kit runs no forward pass.

Layout under ``root``: ``{embedder key}/{sha[:2]}/{sha}.npy`` for images (sha256 of the
bytes), ``{embedder key}/text/{sha[:2]}/{sha}.npy`` for label prompts, and
``{embedder key}/embedder.json`` naming the embedder. The embedder key hashes its EmbedderInfo
(and, for a checkpoint file, its size and mtime), so CLIP and perceptual embeddings, or two
CLIP checkpoints, never mix. Writes go to a temporary file in the same folder and are renamed
into place (atomic).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avatar_pipeline.consistency.embedders.images import image_sha256
from avatar_pipeline.consistency.types import Embedder, EmbedderInfo
from avatar_pipeline.files import atomic_write

TEXT_NAMESPACE = "text"


def embedder_key(embedder: Embedder) -> str:
    """Folder name of an embedder's embeddings: readable kind + hash of what it is."""
    info: EmbedderInfo = embedder.info
    identity = getattr(embedder, "cache_key", None) or json.dumps(info.as_dict(), sort_keys=True)
    digest = hashlib.sha256(str(identity).encode()).hexdigest()[:16]
    return f"{info.kind}-{digest}"


class EmbeddingCache:
    """One ``.npy`` per (embedder key, sha256 of the image bytes)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, key: str, sha: str, namespace: str) -> Path:
        return self.root / key / namespace / sha[:2] / f"{sha}.npy"

    def get(self, key: str, sha: str, namespace: str = "") -> np.ndarray | None:
        path = self._path(key, sha, namespace)
        try:
            vector = np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError, EOFError):
            return None  # missing, or an empty/corrupt file: recompute and overwrite
        return vector.astype(np.float32, copy=False)

    def put(self, key: str, sha: str, vector: np.ndarray, namespace: str = "") -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(vector, dtype=np.float32), allow_pickle=False)
        # a cache: an entry lost in a power cut is recomputed, so no fsync per embedding
        atomic_write(self._path(key, sha, namespace), buffer.getvalue(), durable=False)

    def describe(self, key: str, info: EmbedderInfo) -> None:
        """Write ``embedder.json`` once so a person can tell the folders apart."""
        path = self.root / key / "embedder.json"
        if path.exists():
            return
        atomic_write(path, json.dumps(info.as_dict(), indent=2).encode())


@dataclass
class EmbedCounters:
    """How much work reached the wrapped embedder (a re-score from cache leaves these at 0)."""

    image_forward_calls: int = 0  # calls of the wrapped embed_images (one batched forward each)
    images_embedded: int = 0
    cache_hits: int = 0
    text_forward_calls: int = 0
    texts_embedded: int = 0


class CachedEmbedder:
    """Wraps any embedder; only images missing from the cache are embedded, in one batch."""

    def __init__(self, embedder: Embedder, cache: EmbeddingCache) -> None:
        self.embedder = embedder
        self.cache = cache
        self.info = embedder.info
        self.key = embedder_key(embedder)
        self.cache_key = getattr(embedder, "cache_key", None)
        self.counters = EmbedCounters()
        self._texts: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        cache.describe(self.key, self.info)

    @property
    def has_text_tower(self) -> bool:
        return self.embedder.has_text_tower

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        shas = [image_sha256(data) for data in images]
        found: dict[str, np.ndarray] = {}
        for sha in dict.fromkeys(shas):
            vector = self.cache.get(self.key, sha)
            if vector is not None:
                found[sha] = vector
        misses: dict[str, bytes] = {}
        for sha, data in zip(shas, images, strict=True):
            if sha not in found:
                misses.setdefault(sha, data)
        if misses:
            computed = self.embedder.embed_images(list(misses.values()))
            for sha, vector in zip(misses, computed, strict=True):
                self.cache.put(self.key, sha, vector)
                found[sha] = vector
        with self._lock:
            self.counters.cache_hits += len(images) - sum(1 for s in shas if s in misses)
            if misses:
                self.counters.image_forward_calls += 1
                self.counters.images_embedded += len(misses)
        if not images:
            return self.embedder.embed_images([])
        return np.stack([found[sha] for sha in shas]).astype(np.float32, copy=False)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Text embeddings, memoised in memory and persisted under ``{key}/text/``."""
        for text in dict.fromkeys(texts):
            if text not in self._texts:
                vector = self.cache.get(self.key, _text_sha(text), TEXT_NAMESPACE)
                if vector is not None:
                    self._texts[text] = vector
        missing = [t for t in dict.fromkeys(texts) if t not in self._texts]
        if missing:
            computed = self.embedder.embed_texts(missing)
            for text, vector in zip(missing, computed, strict=True):
                self.cache.put(self.key, _text_sha(text), vector, TEXT_NAMESPACE)
            with self._lock:
                self.counters.text_forward_calls += 1
                self.counters.texts_embedded += len(missing)
                self._texts.update(zip(missing, computed, strict=True))
        if not texts:
            return self.embedder.embed_texts([])
        return np.stack([self._texts[t] for t in texts]).astype(np.float32, copy=False)


def _text_sha(text: str) -> str:
    return hashlib.sha256(b"text\x00" + text.encode()).hexdigest()
