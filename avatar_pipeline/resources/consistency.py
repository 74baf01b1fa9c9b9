"""Consistency scoring as a Dagster resource: embedder (loaded once), thresholds, reports."""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from avatar_pipeline.consistency.cache import CachedEmbedder, EmbeddingCache
from avatar_pipeline.consistency.embedders import load_embedder, thresholds_for
from avatar_pipeline.consistency.types import Embedder, Thresholds

# Embedders loaded in this process, by configuration: Dagster builds a fresh copy of the resource
# for every run, and loading (or probing for CLIP weights before falling back) is done once.
_EMBEDDERS: dict[tuple[str, ...], Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


class ConsistencyResource(dg.ConfigurableResource):
    """Which embedder scores kits, how many candidates per slot, the per-kit budget."""

    embedder: str = Field(default="auto", description="'auto', 'clip' or 'perceptual'.")
    clip_model: str = Field(default="ViT-B-32")
    clip_pretrained: str = Field(
        default="laion2b_s34b_b79k", description="open_clip tag or local checkpoint path."
    )
    device: str = Field(default="cpu")
    embedding_cache_dir: str | None = Field(default=None, description="Persisted embeddings.")
    reports_dir: str = Field(description="Where per-kit reports and the fleet summary go.")
    candidates_per_slot: int = Field(default=1, description="Best-of-N per slot.")
    kit_cost_budget_usd: float = Field(default=5.0)
    improvement_tolerance: float = Field(
        default=0.0,
        description="A re-generated slot replaces the canonical one only if its identity score "
        "is at least the old score minus this.",
    )
    unmeasured_policy: str = Field(
        default="review",
        description="'review' (default): an image with an unmeasured required check waits for a "
        "person (review_state='pending'); 'reject': it stays a failed candidate.",
    )
    _embedder: Embedder | None = PrivateAttr(default=None)

    def get_embedder(self) -> Embedder:
        if self._embedder is None:
            key = (
                self.embedder,
                self.clip_model,
                self.clip_pretrained,
                self.device,
                self.embedding_cache_dir or "",
            )
            with _EMBEDDERS_LOCK:
                if key not in _EMBEDDERS:
                    embedder = load_embedder(
                        self.embedder,  # type: ignore[arg-type]
                        model_name=self.clip_model,
                        pretrained=self.clip_pretrained,
                        device=self.device,
                        cache_dir=None,
                    )
                    if self.embedding_cache_dir:
                        cache = EmbeddingCache(Path(self.embedding_cache_dir))
                        embedder = CachedEmbedder(embedder, cache)
                    _EMBEDDERS[key] = embedder
                self._embedder = _EMBEDDERS[key]
        return self._embedder

    def get_thresholds(self) -> Thresholds:
        return thresholds_for(self.get_embedder().info)
