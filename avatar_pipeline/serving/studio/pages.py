"""Rendering studio pages: one Jinja2 environment, security headers, HTML error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

# Everything the studio loads comes from this origin (images may come from the object store's
# signed URLs, e.g. an S3 endpoint); no inline script, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: http: https:; "
    "script-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class StudioError(Exception):
    """An error a studio page shows as HTML (or JSON for the status endpoints)."""

    def __init__(self, status_code: int, title: str, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message
        self.hint = hint


def render(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    signed = getattr(request.state, "studio_user", None)
    page = templates.get_template(f"studio/{name}").render(
        request=request,
        me=signed.user if signed else None,
        csrf_token=signed.csrf_token if signed else "",
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)


def wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json") or "application/json" in request.headers.get(
        "accept", ""
    )


async def studio_error_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StudioError)
    if wants_json(request):
        return JSONResponse(
            {"detail": exc.message, "title": exc.title}, status_code=exc.status_code
        )
    return render(
        request,
        "error.html",
        {"title": exc.title, "message": exc.message, "hint": exc.hint},
        status_code=exc.status_code,
    )
