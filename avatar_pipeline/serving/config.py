"""What the API runs on: one ``Services`` object built from the one ``Settings``.

The same layer objects the Dagster side uses (catalog sessions, object store, ImageService),
built lazily on first use so that importing the app never touches a disk or a database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog.db import make_engine, make_session_factory
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
    engine = make_engine(settings.catalog_url)
    store = build_object_store(settings, create_buckets=migrate)
    if migrate:
        store.ensure_buckets()
    return Services(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        object_store=store,
        image_service=image_service or build_image_service(settings),
    )


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
