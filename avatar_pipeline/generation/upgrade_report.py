"""The old-vs-new comparison report of a model-upgrade canary (see ``upgrade.py``).

Written beside the kit's consistency report: ``{reports_dir}/{kit_id}/upgrade-<set id>.html``
(self-contained: thumbnails inline, old and new side by side per slot, with identity scores,
model versions, the verdict and its reason) and ``upgrade-<set id>.json``;
``upgrades.json`` in the same folder lists every canary of the kit (newest last) so that the kit
report can link them.
"""

from __future__ import annotations

import base64
import html
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from avatar_pipeline.files import atomic_write
from avatar_pipeline.storage.base import ObjectStore

if TYPE_CHECKING:
    from avatar_pipeline.generation.canary import CanaryVerdict

THUMB_PX = 160


def _thumb(store: ObjectStore, location: tuple[str, str] | None) -> str:
    if location is None:
        return "<span class='none'>none</span>"
    try:
        data = store.get(*location)
        with Image.open(io.BytesIO(data)) as img:
            thumb = img.convert("RGB")
            thumb.thumbnail((THUMB_PX, THUMB_PX))
            buf = io.BytesIO()
            thumb.save(buf, format="JPEG", quality=80)
    except Exception as exc:  # a missing object is reported, not fatal
        return f"<span class='none'>unreadable ({html.escape(type(exc).__name__)})</span>"
    encoded = base64.b64encode(buf.getvalue()).decode()
    return f"<img src='data:image/jpeg;base64,{encoded}' alt=''>"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def set_short_id(candidate_set: str | None) -> str:
    return (candidate_set or "none").split(":")[-1]


def write_upgrade_report(
    verdict: CanaryVerdict,
    store: ObjectStore,
    locations: dict[str, tuple[tuple[str, str] | None, tuple[str, str] | None]],
    reports_dir: Path,
) -> tuple[Path, Path]:
    """Write the HTML and JSON report of one canary; returns their paths."""
    folder = Path(reports_dir) / verdict.kit_id
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"upgrade-{set_short_id(verdict.candidate_set)}"
    html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
    verdict.report_html, verdict.report_json = str(html_path), str(json_path)
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    payload = {**verdict.as_dict(), "generated_at": generated}
    atomic_write(json_path, json.dumps(payload, indent=2, sort_keys=True).encode())

    rows = []
    for c in verdict.slots:
        old_loc, new_loc = locations.get(c.slot, (None, None))
        rows.append(
            "<tr>"
            f"<td>{html.escape(c.slot)}</td>"
            f"<td>{_thumb(store, old_loc)}<br><code>{html.escape(str(c.old_model_version))}"
            f"</code><br>identity {_fmt(c.old_identity)}</td>"
            f"<td>{_thumb(store, new_loc)}<br><code>{html.escape(str(c.new_model_version))}"
            f"</code><br>identity {_fmt(c.new_identity)} · "
            f"{html.escape(c.new_verdict or ('pass' if c.new_passed else 'fail'))}</td>"
            f"<td>{html.escape(c.note)}</td>"
            "</tr>"
        )
    outcome = "promoted" if verdict.promoted else "not promoted"
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Model upgrade {html.escape(stem)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}td{{vertical-align:top;padding:4px 10px;
border-bottom:1px solid #ddd}}img{{max-width:{THUMB_PX}px}}.none{{color:#999}}
.verdict{{font-size:1.1em;padding:.5em;background:#f4f4f4}}</style></head><body>
<h1>Model upgrade canary · kit {html.escape(verdict.kit_id)}</h1>
<p class="verdict"><b>{outcome}</b> ({html.escape(verdict.kit_status)} kit):
{html.escape(verdict.reason)}</p>
<p>Candidate set <code>{html.escape(str(verdict.candidate_set))}</code> ·
mean identity old {_fmt(verdict.old_mean_identity)} → new {_fmt(verdict.new_mean_identity)} ·
tolerance {verdict.tolerance:g} · generated {generated}</p>
<table><tr><th>slot</th><th>old (canonical before)</th><th>new (candidate)</th><th>note</th></tr>
{"".join(rows)}
</table></body></html>
"""
    atomic_write(html_path, page.encode())

    index_path = folder / "upgrades.json"
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = []
    index = [e for e in index if e.get("candidate_set") != verdict.candidate_set]
    index.append(
        {
            "candidate_set": verdict.candidate_set,
            "promoted": verdict.promoted,
            "reason": verdict.reason,
            "report": html_path.name,
            "generated_at": generated,
        }
    )
    atomic_write(index_path, json.dumps(index, indent=2).encode())
    return html_path, json_path


def upgrade_reports(reports_dir: Path, kit_id: str) -> list[dict]:
    """The canaries recorded for a kit (for a link from the kit report)."""
    try:
        return list(json.loads((Path(reports_dir) / kit_id / "upgrades.json").read_text()))
    except (OSError, ValueError):
        return []


def upgrade_links_html(kit_folder: Path) -> str:
    """A small "Model upgrades" section linking the kit's canary reports ('' when none)."""
    entries = upgrade_reports(Path(kit_folder).parent, Path(kit_folder).name)
    if not entries:
        return ""
    items = "".join(
        f"<li><a href='{html.escape(str(e['report']))}'>{html.escape(str(e['candidate_set']))}"
        f"</a>: {'promoted' if e.get('promoted') else 'not promoted'} "
        f"({html.escape(str(e.get('reason', '')))})</li>"
        for e in reversed(entries)
    )
    return f"<section id='model-upgrades'><h2>Model upgrades</h2><ul>{items}</ul></section>\n"
