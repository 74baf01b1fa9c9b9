"""Scores as numeric Dagster metadata (so the UI plots them per kit partition over time), and
the kit's links (report, contact sheet, studio page) as clickable URLs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import dagster as dg

from avatar_pipeline.consistency.types import SlotScore

_DELTA_E_KEYS = ("delta_e_max", "max_delta_e", "delta_e", "worst_delta_e")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def palette_delta_e_max(palette: Mapping[str, Any] | None) -> float | None:
    """The largest colour difference (CIE ΔE) recorded in a score's palette detail, wherever
    the detail keeps it (top level, or per region)."""
    if not palette:
        return None
    found: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                number = _number(value)
                if number is not None and str(key).lower() in _DELTA_E_KEYS:
                    found.append(number)
                elif isinstance(value, Mapping | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(palette)
    return max(found) if found else None


def score_metadata(score: SlotScore | None) -> dict[str, Any]:
    """Float metadata per score; a check that was not measured is left out (never a 0)."""
    if score is None:
        return {}
    out: dict[str, Any] = {}
    if score.identity is not None:
        out["identity"] = dg.MetadataValue.float(float(score.identity))
        out["identity_margin"] = dg.MetadataValue.float(
            float(score.identity) - float(score.identity_threshold)
        )
    out["identity_threshold"] = dg.MetadataValue.float(float(score.identity_threshold))
    if score.adherence_rank is not None:
        out["adherence_rank"] = dg.MetadataValue.int(int(score.adherence_rank))
    if score.adherence_probs and score.adherence_label in score.adherence_probs:
        out["adherence_probability"] = dg.MetadataValue.float(
            float(score.adherence_probs[score.adherence_label])
        )
    if score.copy_distance is not None:
        out["copy_distance"] = dg.MetadataValue.int(int(score.copy_distance))
    delta_e = palette_delta_e_max(getattr(score, "palette", None))
    if delta_e is not None:
        out["palette_delta_e_max"] = dg.MetadataValue.float(delta_e)
    status = getattr(score, "status", None)
    if status:
        out["verdict"] = str(status)
    return out


def kit_urls(public_base_url: str, kit_id: str) -> dict[str, str]:
    """The kit's pages on the API app: the studio page and the report files (admin session)."""
    base = public_base_url.rstrip("/")
    kit = quote(str(kit_id), safe="")
    return {
        "studio_page": f"{base}/studio/kits/{kit}",
        "report_html": f"{base}/reports/{kit}/report.html",
        "report_json": f"{base}/reports/{kit}/report.json",
        "contact_sheet": f"{base}/reports/{kit}/contact_sheet.png",
    }


def fleet_url(public_base_url: str) -> str:
    return f"{public_base_url.rstrip('/')}/reports/index.html"


def url_metadata(urls: Mapping[str, str]) -> dict[str, Any]:
    return {name: dg.MetadataValue.url(url) for name, url in urls.items()}
