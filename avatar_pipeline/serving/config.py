"""What the API runs on: one ``Services`` object built from the one ``Settings``.

The same layer objects the Dagster side uses (catalog sessions, object store, ImageService),
built lazily on first use so that importing the app never touches a disk or a database.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog.db import is_sqlite, make_engine, make_session_factory
from avatar_pipeline.catalog.migrate import upgrade_database
from avatar_pipeline.imaging.service import ImageService
from avatar_pipeline.serving.uploads import UploadLimits
from avatar_pipeline.settings import Settings
from avatar_pipeline.storage.base import ObjectStore
from avatar_pipeline.storage.factory import build_object_store


@dataclass
class Services:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    object_store: ObjectStore
    image_service: ImageService
    upload_limits: UploadLimits = field(default_factory=UploadLimits)

    def close(self) -> None:
        self.engine.dispose()


def build_services(
    settings: Settings, *, migrate: bool, image_service: ImageService | None = None
) -> Services:
    """Engine + sessions on ``settings.catalog_url``, the configured object store and the
    ImageService. ``migrate`` (every environment but production) also upgrades the catalog to
    head and creates missing buckets; production runs ``avatar-pipeline db upgrade`` instead.
    ``image_service`` replaces the configured one."""
    from avatar_pipeline.imaging.factory import build_image_service

    if migrate:
        upgrade_database(settings.catalog_url)
    engine = make_engine(settings.catalog_url, **api_pool_options(settings))
    store = build_object_store(settings, create_buckets=migrate)
    if migrate:
        store.ensure_buckets()
    return Services(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        object_store=store,
        image_service=image_service or build_image_service(settings),
        upload_limits=UploadLimits(max_bytes=settings.api_max_upload_bytes),
    )


def default_executor_threads() -> int:
    """Size of asyncio's default executor (``asyncio.to_thread``), as CPython computes it."""
    return min(32, (os.cpu_count() or 1) + 4)


def api_pool_size(settings: Settings) -> int:
    """Connections the API may hold: one per thread that can touch the catalog at once (the
    worker threads of blocking handlers, as many teardown threads committing and closing
    request sessions, asyncio's executor the scene flow uses, and two spare), so a request
    never queues for a connection behind other requests."""
    if settings.api_db_pool_size is not None:
        return settings.api_db_pool_size
    return 2 * settings.api_max_threads + default_executor_threads() + 2


def api_pool_options(settings: Settings) -> dict[str, object]:
    """``create_engine`` pool arguments for the API. In-memory SQLite keeps its single shared
    connection (StaticPool has no size)."""
    url = settings.catalog_url
    if is_sqlite(url) and (":memory:" in url or "mode=memory" in url or url.endswith("://")):
        return {}
    return {
        "pool_size": api_pool_size(settings),
        "max_overflow": 0,
        "pool_timeout": settings.api_db_pool_timeout_seconds,
    }


class LazyServices:
    """Builds ``Services`` once, on first use, from thread pool workers or the event loop."""

    def __init__(self, factory: Callable[[], Services]) -> None:
        self._factory = factory
        self._services: Services | None = None
        self._lock = threading.Lock()

    def get(self) -> Services:
        if self._services is None:
            with self._lock:
                if self._services is None:
                    self._services = self._factory()
        return self._services

    def close(self) -> None:
        with self._lock:
            if self._services is not None:
                self._services.close()
                self._services = None
