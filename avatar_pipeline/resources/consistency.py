"""Consistency scoring as a Dagster resource: embedder (loaded once), thresholds, reports."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from avatar_pipeline.consistency.cache import CachedEmbedder, EmbeddingCache
from avatar_pipeline.consistency.embedders import load_embedder, thresholds_for
from avatar_pipeline.consistency.types import Embedder, Thresholds


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
    _embedder: Embedder | None = PrivateAttr(default=None)

    def get_embedder(self) -> Embedder:
        if self._embedder is None:
            embedder = load_embedder(
                self.embedder,  # type: ignore[arg-type]
                model_name=self.clip_model,
                pretrained=self.clip_pretrained,
                device=self.device,
                cache_dir=None,
            )
            if self.embedding_cache_dir:
                embedder = CachedEmbedder(embedder, EmbeddingCache(Path(self.embedding_cache_dir)))
            self._embedder = embedder
        return self._embedder

    def get_thresholds(self) -> Thresholds:
        return thresholds_for(self.get_embedder().info)
