"""The FastAPI app: ``create_app(settings)``; ``app`` is the default-settings instance that
``avatar-pipeline serve`` (uvicorn ``avatar_pipeline.serving.main:app``) runs.

Nothing is built at import: the catalog engine, object store and ImageService are made on
startup (or on the first request), from the same ``Settings`` the Dagster side reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from avatar_pipeline.serving.config import LazyServices, Services, build_services
from avatar_pipeline.serving.deps import ServicesDep
from avatar_pipeline.serving.errors import install_error_handlers
from avatar_pipeline.serving.guard import RequestGuard
from avatar_pipeline.serving.openapi_errors import install_openapi
from avatar_pipeline.serving.routes import api_router
from avatar_pipeline.serving.schemas import Health
from avatar_pipeline.serving.studio import install_studio
from avatar_pipeline.settings import Settings, get_settings


def create_app(settings: Settings | None = None, *, services: Services | None = None) -> FastAPI:
    """The API over ``settings`` (default: from the environment). ``services`` replaces what
    would be built from the settings (tests pass their own)."""
    lazy = LazyServices(
        (lambda: services) if services is not None else (lambda: _build(settings or get_settings()))
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        built = lazy.get()
        # The worker threads of blocking handlers; the catalog pool is sized to match
        # (config.api_pool_size), so no request waits for a connection behind others.
        anyio.to_thread.current_default_thread_limiter().total_tokens = (
            built.settings.api_max_threads
        )
        try:
            yield
        finally:
            lazy.close()

    app = FastAPI(
        title="avatar_pipeline scene API",
        summary="User scenes drawn from avatar kits, and avatar kit administration.",
        version="1.0",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_studio (assets from a package, no CDN)
        redoc_url=None,
    )
    app.state.services = lazy
    install_error_handlers(app)
    app.include_router(api_router)
    install_studio(app)
    # Answers OPTIONS, 401 and 413 before the app reads a body (see serving/guard.py).
    app.add_middleware(RequestGuard, app_routes=lambda: app.routes)
    install_openapi(app)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["health"],
        responses={503: {"model": Health, "description": "A dependency is unreachable."}},
    )
    def healthz(services: ServicesDep) -> Health | JSONResponse:
        """For probes: ``ok`` (200) or ``degraded`` (503) and which dependency failed; nothing
        about where or what things are (no paths, hosts or versions)."""
        database = object_store = "ok"
        try:
            with services.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # report, do not raise: this is the health check
            database = "unreachable"
        try:
            services.object_store.exists("avatars", HEALTH_PROBE_KEY)
        except Exception:
            object_store = "unreachable"
        ok = database == object_store == "ok"
        health = Health(
            status="ok" if ok else "degraded",
            database=database,  # type: ignore[arg-type]
            object_store=object_store,  # type: ignore[arg-type]
        )
        if ok:
            return health
        return JSONResponse(health.model_dump(), status_code=503)

    return app


HEALTH_PROBE_KEY = "healthz/probe.png"
"""An object that is never written; asking whether it exists proves the store answers."""


def _build(settings: Settings) -> Services:
    return build_services(settings, migrate=settings.environment != "production")


app = create_app()
