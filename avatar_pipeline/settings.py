"""One settings object for the pipeline and the serving API (environment prefix ``AVATAR_``).

Every value has an embedded default that needs no accounts and no network: a SQLite catalog
and a local object store under ``./var/``, and the offline image provider. Secrets are
``SecretStr`` so they never appear in reprs or logs, and a default signing secret is refused
outside development.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SIGNING_SECRET = "dev-only-signing-secret-change-me"

Environment = Literal["local", "development", "test", "production"]


class Settings(BaseSettings):
    """Where the catalog, the object store and the image provider live."""

    model_config = SettingsConfigDict(
        env_prefix="AVATAR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    environment: Environment = Field(
        default="local",
        description="'local' (embedded defaults), 'test', or 'production' (refuses dev secrets).",
    )
    var_dir: Path = Field(default=Path("var"), description="Root for embedded-default state.")

    # Catalog
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalog. Default: sqlite under var_dir/catalog.db. "
        "For PostgreSQL use postgresql+psycopg2://user@host:5432/db.",
    )

    # Object store
    storage_backend: Literal["local", "s3"] = Field(default="local")
    storage_local_root: Path | None = Field(
        default=None, description="Root directory of the local store (default var_dir/objects)."
    )
    s3_endpoint_url: str | None = Field(default=None, description="Any S3-compatible endpoint.")
    s3_region: str = Field(default="us-east-1")
    s3_avatars_bucket: str = Field(default="avatars")
    s3_scenes_bucket: str = Field(default="scenes")
    s3_access_key_id: SecretStr | None = Field(default=None)
    s3_secret_access_key: SecretStr | None = Field(default=None)
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of the serving API; local signed URLs point under it.",
    )
    signed_url_ttl_seconds: int = Field(default=900, ge=1, le=7 * 24 * 3600)
    signing_secret: SecretStr = Field(default=SecretStr(DEV_SIGNING_SECRET))

    # Serving API under load (api_load)
    api_max_threads: int = Field(
        default=20, ge=1, le=1000, description="Worker threads for the API's blocking handlers."
    )
    api_db_pool_size: int | None = Field(
        default=None,
        ge=1,
        description="Catalog connections the API may hold (default: enough for every worker "
        "thread, so a request never waits for one).",
    )
    api_db_pool_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Wait for a free connection before answering 503."
    )
    api_retry_after_seconds: int = Field(
        default=2, ge=1, description="Retry-After sent with a 503 (busy catalog)."
    )
    api_max_json_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest non-upload request body."
    )
    api_max_upload_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest uploaded image file."
    )
    # Studio (the art-ops pages served by the API app)
    dagster_ui_url: str = Field(
        default="http://127.0.0.1:3000",
        description="Base URL of the Dagster UI; the studio links kit runs there.",
    )
    signin_link_ttl_seconds: int = Field(
        default=900, ge=30, le=7 * 24 * 3600, description="How long a one-time sign-in link works."
    )
    studio_session_ttl_seconds: int = Field(
        default=12 * 3600, ge=60, le=30 * 24 * 3600, description="How long a studio sign-in lasts."
    )

    # Image provider
    image_provider: Literal["offline", "replicate"] = Field(default="offline")
    replicate_api_token: SecretStr | None = Field(
        default=None,
        validation_alias="REPLICATE_API_TOKEN",
        description="Read from REPLICATE_API_TOKEN only; never logged or stored.",
    )
    replicate_base_url: str = Field(default="https://api.replicate.com/v1")
    replicate_edit_model: str = Field(default="black-forest-labs/flux-kontext-pro")
    replicate_multi_reference_model: str = Field(default="black-forest-labs/flux-2-pro")
    replicate_generate_model: str = Field(default="black-forest-labs/flux-1.1-pro")
    replicate_google_model: str = Field(default="google/imagen-4")
    replicate_use_google: bool = Field(
        default=False, description="Use the Google image model (on Replicate) for generate()."
    )
    replicate_google_edit_model: str = Field(
        default="google/nano-banana",
        description="Google model that edits from references (image_input), e.g. "
        "google/nano-banana or google/nano-banana-pro.",
    )
    replicate_use_google_for_edit: bool = Field(
        default=False, description="Use the Google edit model (on Replicate) for edit()."
    )
    replicate_max_prediction_attempts: int = Field(
        default=3,
        ge=1,
        le=6,
        description="Predictions per call when one fails transiently (KeyError 'sample', no "
        "output, timeout); safety refusals are never retried.",
    )
    replicate_max_concurrency: int = Field(default=16, ge=1)
    replicate_predictions_per_minute: int = Field(default=600, ge=1)
    replicate_timeout_seconds: float = Field(default=300.0, gt=0)
    replicate_max_retries: int = Field(default=4, ge=0)
    replicate_pinned_versions: dict[str, str] = Field(
        default_factory=dict,
        description="Model id -> version id to run (JSON, e.g. "
        '\'{"black-forest-labs/flux-kontext-pro": "<version id>"}\'); unpinned models run latest.',
    )
    offline_latency_seconds: float = Field(
        default=0.0, ge=0, description="Simulated per-image latency of the offline provider."
    )
    # Fleet: one provider budget for the instance (catalog tables, migration 0006)
    provider_budget: Literal["auto", "instance", "process"] = Field(
        default="auto",
        description="'instance': calls in flight and creates/minute are capped across every "
        "process sharing the catalog database; 'process': per-process limits only; 'auto': "
        "instance for replicate, process for the offline renderer.",
    )
    provider_max_in_flight: int | None = Field(
        default=None, ge=1, description="Instance-wide calls in flight (default: max concurrency)."
    )
    provider_creates_per_minute: int | None = Field(
        default=None, ge=1, description="Instance-wide creates/minute (default: predictions/min)."
    )
    provider_lease_ttl_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A call's budget lease expires this long after its holder stops renewing it.",
    )

    # Consistency
    embedder: Literal["auto", "clip", "perceptual"] = Field(default="auto")
    clip_model: str = Field(default="ViT-B-32")
    clip_pretrained: str = Field(
        default="laion2b_s34b_b79k",
        description="open_clip pretrained tag or a local checkpoint path.",
    )
    clip_device: str = Field(default="cpu")
    thresholds_file: Path | None = Field(
        default=None,
        description="JSON thresholds (e.g. written by `avatar-pipeline consistency pairs "
        "--calibrate FILE`) that replace the shipped pass marks per embedder.",
    )
    candidates_per_slot: int = Field(default=1, ge=1, le=8, description="Best-of-N per slot.")
    kit_cost_budget_usd: float = Field(default=5.0, ge=0)
    unmeasured_policy: Literal["review", "reject"] = Field(
        default="review",
        description="An image whose required checks could not all be measured (e.g. adherence "
        "without a text tower) is never promoted on its own. 'review': stored non-canonical "
        "with review_state='pending' until a person approves the kit or accepts it; "
        "'reject': kept as a plain failed candidate (approval does not pick it up).",
    )

    # Scene flow: the scene writer and scene drift
    scene_writer: Literal["offline", "replicate"] = Field(
        default="offline",
        description="Who writes scene prompts from the episode: 'offline' (the deterministic "
        "composer) or 'replicate' (a language model; falls back to offline on failure).",
    )
    replicate_language_model: str = Field(
        default="meta/meta-llama-3-8b-instruct",
        description="Replicate model of the 'replicate' scene writer.",
    )
    scene_writer_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    scene_context_messages: int = Field(
        default=12, ge=1, le=100, description="Recent episode messages the scene writer reads."
    )
    scene_drift_window: int = Field(
        default=20, ge=1, le=1000, description="Recent scenes per kit the drift check reads."
    )
    scene_drift_min_scenes: int = Field(
        default=3, ge=1, description="Fewer scored scenes than this: drift is not measured."
    )
    scene_drift_margin: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="A kit drifts when its recent scenes' median identity is below the "
        "embedder's identity threshold minus this margin.",
    )

    @model_validator(mode="after")
    def _refuse_default_secret_outside_development(self) -> Settings:
        if (
            self.environment == "production"
            and self.signing_secret.get_secret_value() == DEV_SIGNING_SECRET
        ):
            raise ValueError(
                "AVATAR_SIGNING_SECRET is the development default; set a real secret "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`) "
                "before running with AVATAR_ENVIRONMENT=production."
            )
        if (
            self.environment == "production"
            and self.image_provider == "replicate"
            and self.replicate_api_token is None
        ):
            raise ValueError("AVATAR_IMAGE_PROVIDER=replicate needs REPLICATE_API_TOKEN set.")
        return self

    @property
    def instance_budget(self) -> bool:
        """Whether provider calls draw from the instance-wide budget (see provider_budget)."""
        if self.provider_budget == "auto":
            return self.image_provider == "replicate"
        return self.provider_budget == "instance"

    @property
    def catalog_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'catalog.db').resolve()}"

    @property
    def local_store_root(self) -> Path:
        return (self.storage_local_root or (self.var_dir / "objects")).resolve()

    @property
    def embedding_cache_dir(self) -> Path:
        return (self.var_dir / "embeddings").resolve()

    @property
    def image_cache_dir(self) -> Path:
        return (self.var_dir / "image_cache").resolve()

    @property
    def reports_dir(self) -> Path:
        return (self.var_dir / "reports").resolve()


@lru_cache
def get_settings() -> Settings:
    return Settings()
