"""The consistency reports (HTML, JSON, contact sheet) and the fleet index, for signed-in
admins: ``/reports/index.html`` and ``/reports/{kit_id}/{report.html|report.json|
contact_sheet.png}``, read from ``settings.reports_dir``. Dagster metadata links here."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import FileResponse

from avatar_pipeline.serving.deps import ServicesDep
from avatar_pipeline.serving.studio.auth import StudioAdmin
from avatar_pipeline.serving.studio.pages import StudioError

router = APIRouter(prefix="/reports", include_in_schema=False)

KIT_FILES = {
    "report.html": "text/html; charset=utf-8",
    "report.json": "application/json",
    "contact_sheet.png": "image/png",
}


def _file(path, media_type: str) -> FileResponse:  # type: ignore[no-untyped-def]
    if not path.is_file():
        raise StudioError(
            404,
            "No report yet",
            f"{path.name} has not been written yet.",
            hint="Reports are written after each kit run (or `avatar-pipeline report KIT`).",
        )
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-store"})


@router.get("/index.html")
def fleet_index(services: ServicesDep, _admin: StudioAdmin) -> FileResponse:
    return _file(services.settings.reports_dir / "index.html", KIT_FILES["report.html"])


@router.get("/{kit_id}/{name}")
def kit_report(
    services: ServicesDep, _admin: StudioAdmin, kit_id: uuid.UUID, name: str
) -> FileResponse:
    if name not in KIT_FILES:
        raise StudioError(404, "No such report file", f"use one of {', '.join(KIT_FILES)}")
    return _file(services.settings.reports_dir / str(kit_id) / name, KIT_FILES[name])
