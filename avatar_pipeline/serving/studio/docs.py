"""``/docs`` and ``/redoc`` that work offline: Swagger UI and ReDoc served by the app.

The assets come from the ``fastapi-offline`` package (MIT; it ships Swagger UI, Apache-2.0,
and ReDoc, MIT, as plain files), served under ``/static/docs``; the studio's own CSS and JS
are under ``/static/studio``. Nothing is loaded from a CDN (ReDoc's Google fonts are off).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STUDIO_STATIC = Path(__file__).resolve().parent.parent / "static"


def docs_assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """Mount the static files and add /docs and /redoc (create the app with docs_url=None,
    redoc_url=None)."""
    app.mount("/static/docs", StaticFiles(directory=docs_assets_dir()), name="docs-static")
    app.mount("/static/studio", StaticFiles(directory=STUDIO_STATIC), name="studio-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url="/static/docs/redoc.standalone.js",
            redoc_favicon_url="/static/docs/favicon.png",
            with_google_fonts=False,
        )
