"""The provider interface: one implementation per backend (Replicate, offline)."""

from __future__ import annotations

import abc

from avatar_pipeline.imaging.types import EditRequest, GenerateRequest, ProviderResult

# What model_for() answers for a model run at its newest version before the provider has seen
# which version that is (the ImageService then asks latest_model_versions() once).
UNKNOWN_VERSION = "latest"


class ImageProvider(abc.ABC):
    """A backend that turns validated requests into PNG bytes."""

    name: str

    @abc.abstractmethod
    async def generate(self, request: GenerateRequest) -> ProviderResult: ...

    @abc.abstractmethod
    async def edit(self, request: EditRequest) -> ProviderResult: ...

    @abc.abstractmethod
    def model_for(self, operation: str, reference_count: int = 0) -> tuple[str, str]:
        """(model id, pinned version) that ``operation`` ('generate'|'edit') would use now."""

    async def current_model_version(
        self, operation: str, reference_count: int = 0
    ) -> tuple[str, str]:
        """(model id, real version) a call made now would run; providers whose models run at
        "whatever is newest" look the version up here (never answer a placeholder)."""
        return self.model_for(operation, reference_count)

    @abc.abstractmethod
    async def latest_model_versions(self) -> dict[str, str]:
        """Model id -> newest version the provider offers (to detect upgrades)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release network clients."""
