"""The art-ops studio: server-rendered pages (Jinja2 + a little JS) in the API app, for admins
signed in with a one-time link (session cookie + CSRF). ``install_studio(app)`` adds it."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from avatar_pipeline.serving.studio import auth, kits, reports, review
from avatar_pipeline.serving.studio.docs import install_docs
from avatar_pipeline.serving.studio.pages import StudioError, studio_error_page

studio_router = APIRouter()
studio_router.include_router(auth.router)
studio_router.include_router(kits.router)
studio_router.include_router(review.router)
studio_router.include_router(reports.router)


def install_studio(app: FastAPI) -> None:
    """The studio pages, the reports, offline /docs and /redoc, and their static files."""
    app.add_exception_handler(StudioError, studio_error_page)
    app.include_router(studio_router)
    install_docs(app)


__all__ = ["install_studio", "studio_router"]
