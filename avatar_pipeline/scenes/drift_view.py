"""The per-kit drift view: scores over time (an inline SVG), per model version, and the worst
scenes as thumbnails — as data for the studio, and as an HTML section for the kit's report.

``kit_drift_view()`` returns plain data (JSON-safe); ``render_drift_section()`` renders the
partial ``templates/drift_section.html`` (self-contained: thumbnails are data URIs), which the
studio may include as it is and the kit's report appends (``append_to_report``).
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session, sessionmaker

from avatar_pipeline.catalog.db import session_scope
from avatar_pipeline.files import atomic_write
from avatar_pipeline.scenes.drift import KitDrift, kit_drift
from avatar_pipeline.storage.base import ObjectStore, StorageError

THUMBNAIL_PX = 160
CHART_W, CHART_H = 480, 120
MARKER = "<!-- scene-drift -->"
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _thumbnail(store: ObjectStore, bucket: str, path: str) -> str | None:
    try:
        data = store.get(bucket, path)  # type: ignore[arg-type]
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except (StorageError, UnidentifiedImageError, OSError):
        return None
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def _chart(drift: KitDrift) -> dict[str, Any]:
    """Polyline points of the scores over time and the threshold's y, in SVG coordinates."""
    scores = [p.score for p in drift.points]
    if not scores:
        return {"points": "", "threshold_y": None, "dots": []}
    low = min([*scores, drift.threshold or 1.0, 0.5]) - 0.02
    high = max([*scores, drift.threshold or 0.0, 1.0])

    def y(value: float) -> float:
        return round(CHART_H - 8 - (value - low) / (high - low) * (CHART_H - 16), 1)

    step = (CHART_W - 16) / max(1, len(scores) - 1)
    dots = [
        {"x": round(8 + i * step, 1), "y": y(s), "below": drift.threshold is not None
         and s < drift.threshold}
        for i, s in enumerate(scores)
    ]  # fmt: skip
    return {
        "points": " ".join(f"{d['x']},{d['y']}" for d in dots),
        "threshold_y": y(drift.threshold) if drift.threshold is not None else None,
        "dots": dots,
    }


def drift_view(drift: KitDrift, store: ObjectStore | None) -> dict[str, Any]:
    """The drift data plus chart coordinates and the worst scenes' thumbnails."""
    data = drift.as_dict()
    data["chart"] = {"width": CHART_W, "height": CHART_H, **_chart(drift)}
    for point in data["worst"]:
        point["thumbnail"] = (
            _thumbnail(store, point["storage_bucket"], point["storage_path"]) if store else None
        )
    return data


def kit_drift_view(
    session_factory: sessionmaker[Session],
    store: ObjectStore | None,
    kit_id: uuid.UUID | str,
    *,
    window: int = 20,
    min_scenes: int = 3,
    margin: float = 0.0,
) -> dict[str, Any]:
    """For the studio: the kit's drift view as JSON-safe data (see :func:`drift_view`)."""
    with session_scope(session_factory) as session:
        drift = kit_drift(session, kit_id, window=window, min_scenes=min_scenes, margin=margin)
    return drift_view(drift, store)


def render_drift_section(view: dict[str, Any]) -> str:
    """The drift view as a self-contained HTML section (the studio's partial)."""
    return _TEMPLATES.get_template("drift_section.html").render(drift=view)


def append_to_report(html_path: Path, json_path: Path | None, view: dict[str, Any]) -> None:
    """Add the drift section to a written kit report (before ``</body>``; replaces an earlier
    one) and the drift data to its JSON under ``scene_drift``."""
    html = html_path.read_text(encoding="utf-8")
    section = f"{MARKER}\n{render_drift_section(view)}\n{MARKER}"
    if MARKER in html:
        head, _, rest = html.partition(MARKER)
        _, _, tail = rest.partition(MARKER)
        html = head + section + tail
    elif "</body>" in html:
        html = html.replace("</body>", section + "\n</body>", 1)
    else:
        html += section
    atomic_write(html_path, html.encode("utf-8"))
    if json_path is not None and json_path.exists():
        data = json.loads(json_path.read_text(encoding="utf-8"))
        data["scene_drift"] = {k: v for k, v in view.items() if k != "chart"}
        for point in data["scene_drift"].get("worst", []):
            point.pop("thumbnail", None)
        atomic_write(json_path, json.dumps(data, indent=2, default=str).encode("utf-8"))


def add_drift_to_kit_report(
    files: Any,
    kit_id: uuid.UUID | str,
    *,
    session_factory: sessionmaker[Session],
    store: ObjectStore | None,
) -> dict[str, Any]:
    """The kit report's hook: append the drift section to ``files.html`` / ``files.json``
    (a ``consistency.report.ReportFiles``), with the settings' drift window and margin."""
    from avatar_pipeline.settings import get_settings

    settings = get_settings()
    view = kit_drift_view(
        session_factory,
        store,
        kit_id,
        window=settings.scene_drift_window,
        min_scenes=settings.scene_drift_min_scenes,
        margin=settings.scene_drift_margin,
    )
    append_to_report(Path(files.html), Path(files.json) if files.json else None, view)
    return view
