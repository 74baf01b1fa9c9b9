"""The FastAPI app: ``create_app(settings)``; ``app`` is the default-settings instance that
``avatar-pipeline serve`` (uvicorn ``avatar_pipeline.serving.main:app``) runs.

Nothing is built at import: the catalog engine, object store and ImageService are made on
startup (or on the first request), from the same ``Settings`` the Dagster side reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from avatar_pipeline.serving.config import LazyServices, Services, build_services
from avatar_pipeline.serving.deps import ServicesDep
from avatar_pipeline.serving.errors import install_error_handlers
from avatar_pipeline.serving.routes import api_router
from avatar_pipeline.serving.schemas import Health
from avatar_pipeline.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The API over ``settings`` (default: from the environment). ``services`` replaces what
    would be built from the settings (tests pass their own)."""
    lazy = LazyServices(
        (lambda: services) if services is not None else (lambda: _build(settings or get_settings()))
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        lazy.get()
        try:
            yield
        finally:
            lazy.close()

    app = FastAPI(
        title="avatar_pipeline scene API",
        summary="User scenes drawn from avatar kits, and avatar kit administration.",
        version="1.0",
        lifespan=lifespan,
    )
    app.state.services = lazy
    install_error_handlers(app)
    app.include_router(api_router)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz(services: ServicesDep) -> Health:
        """Liveness and where things live; ``degraded`` when the catalog cannot be queried."""
        try:
            with services.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            database = services.engine.url.get_backend_name()
            state = "ok"
        except Exception as exc:  # report, do not raise: this is the health check
            database, state = f"unreachable: {type(exc).__name__}", "degraded"
        return Health(
            status=state,  # type: ignore[arg-type]
            database=database,
            object_store=services.object_store.describe(),
            image_provider=services.image_service.provider.name,
        )

    return app


def _build(settings: Settings) -> Services:
    return build_services(settings, migrate=settings.environment != "production")


app = create_app()
