"""Consistency reports of a kit: self-contained HTML, JSON, a contact sheet PNG, markdown.

The input is plain data (no SQL, no Dagster): whoever reads the catalog fills a
:class:`KitReportInput`; :func:`build_kit_report` computes the verdicts and summary;
:func:`write_kit_report` writes ``{out_dir}/{kit_id}/report.html|report.json|contact_sheet.png``.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from PIL import Image, ImageDraw, ImageFont

from avatar_pipeline.consistency.embedders.images import UndecodableImageError, decode_rgb
from avatar_pipeline.consistency.types import (
    FAIL,
    PASS,
    UNMEASURED,
    EmbedderInfo,
    Thresholds,
    status_of,
    verdicts_from_dict,
)
from avatar_pipeline.files import atomic_write

THUMBNAIL_PX = 256
_SLOT_ORDER = ("anchor_portrait", "anchor_fullbody", "expression", "pose", "outfit")
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class AssetReportInput:
    """One stored image of the kit, as the catalog knows it."""

    slot: str  # e.g. "anchor_portrait", "expression:happy", "pose:sitting"
    asset_id: str
    storage_path: str
    image: bytes | None  # PNG/JPEG bytes for the thumbnail; None -> no thumbnail
    is_canonical: bool
    scores: dict[str, Any] | None  # SlotScore.as_dict(); None -> not scored
    asset_type: str | None = None
    model: str | None = None
    model_version: str | None = None
    cost_usd: float | None = None
    seed: int | None = None
    derived_from_id: str | None = None
    created_at: datetime | str | None = None
    alternatives: Sequence[dict[str, Any]] = ()  # best-of-N losers: {"asset_id", **as_dict()}
    review_state: str | None = None  # 'pending' = waits for a person


@dataclass(frozen=True)
class KitReportInput:
    kit_id: str
    name: str
    status: str
    prompts: dict[str, str | None]  # appearance_prompt, style_prompt, negative_prompt
    embedder: EmbedderInfo
    thresholds: Thresholds
    assets: Sequence[AssetReportInput]
    required_slots: Sequence[str] = ()  # slots that must have a canonical image
    generated_at: datetime | None = None
    palette_contract: dict[str, Any] | None = None  # the kit's colour callouts (swatches)


@dataclass
class AssetReport:
    slot: str
    asset_id: str
    storage_path: str
    asset_type: str | None
    is_canonical: bool
    verdict: str  # "pass" | "fail" | "unmeasured" (waits for a person) | "unscored"
    identity: float | None
    identity_threshold: float | None
    adherence_rank: int | None
    adherence_label: str | None
    adherence_top: str | None  # the label the text tower ranked first
    copy_distance: int | None
    checks: dict[str, bool]
    notes: dict[str, str]
    embedder: dict[str, str] | None
    model: str | None
    model_version: str | None
    cost_usd: float | None
    seed: int | None
    derived_from_id: str | None
    derived_from_slot: str | None
    created_at: str | None
    alternatives: list[dict[str, Any]]
    # check name -> {"verdict": pass|fail|unmeasured, "why": words}
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)
    palette: dict[str, Any] | None = None  # per-colour deltas against the kit's contract
    review_state: str | None = None
    thumbnail: bytes | None = field(default=None, repr=False)  # JPEG; never in the JSON

    def verdict_words(self) -> list[str]:
        """Each check in words: "identity: pass", "palette: fail — hair ΔE 23 (...)",
        "adherence: not measured — ..."."""
        words = {PASS: "pass", FAIL: "fail", UNMEASURED: "not measured"}
        return [
            f"{name.replace('_', ' ')}: {words.get(v['verdict'], v['verdict'])}"
            + (f" — {v['why']}" if v.get("why") and v["verdict"] != PASS else "")
            for name, v in self.verdicts.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("thumbnail")
        return data


@dataclass
class KitSummary:
    n_assets: int
    n_canonical: int
    n_required: int
    missing_slots: list[str]
    n_failed: int
    failures: list[str]  # "slot (asset id): failed checks"
    min_identity: float | None  # over canonical, scored assets
    mean_identity: float | None
    total_cost_usd: float
    consistent: bool  # every required slot canonical and every canonical asset passes
    n_pending: int = 0  # images waiting for a person (a required check not measured)
    pending: list[str] = field(default_factory=list)  # "slot (asset id): not measured: ..."


@dataclass
class KitReport:
    kit_id: str
    name: str
    status: str
    prompts: dict[str, str | None]
    embedder: dict[str, str]
    thresholds: dict[str, float | int]
    assets: list[AssetReport]
    summary: KitSummary
    generated_at: str
    palette_contract: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "palette_contract": self.palette_contract,
            "kit_id": self.kit_id,
            "name": self.name,
            "status": self.status,
            "prompts": dict(self.prompts),
            "embedder": dict(self.embedder),
            "thresholds": dict(self.thresholds),
            "summary": asdict(self.summary),
            "generated_at": self.generated_at,
            "assets": [a.to_dict() for a in self.assets],
        }


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    contact_sheet_png: Path


def _slot_sort_key(asset: AssetReport) -> tuple[int, str, int, str]:
    family = asset.slot.split(":", 1)[0]
    rank = _SLOT_ORDER.index(family) if family in _SLOT_ORDER else len(_SLOT_ORDER)
    return (rank, asset.slot, 0 if asset.is_canonical else 1, asset.created_at or "")


def _thumbnail(data: bytes | None) -> bytes | None:
    if not data:
        return None
    try:
        image = decode_rgb(data).copy()
    except UndecodableImageError:
        return None
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _asset_report(item: AssetReportInput, slots_by_id: dict[str, str]) -> AssetReport:
    scores = item.scores or {}
    probs = scores.get("adherence_probs") or None
    verdicts = verdicts_from_dict(scores)
    verdict = status_of(verdicts) if scores else "unscored"
    return AssetReport(
        slot=item.slot,
        asset_id=item.asset_id,
        storage_path=item.storage_path,
        asset_type=item.asset_type,
        is_canonical=item.is_canonical,
        verdict=verdict,
        identity=scores.get("identity"),
        identity_threshold=scores.get("identity_threshold"),
        adherence_rank=scores.get("adherence_rank"),
        adherence_label=scores.get("adherence_label"),
        adherence_top=max(probs, key=probs.__getitem__) if probs else None,
        copy_distance=scores.get("copy_distance"),
        checks=dict(scores.get("checks") or {}),
        notes=dict(scores.get("notes") or {}),
        embedder=scores.get("embedder"),
        model=item.model,
        model_version=item.model_version,
        cost_usd=item.cost_usd,
        seed=item.seed,
        derived_from_id=item.derived_from_id,
        derived_from_slot=slots_by_id.get(item.derived_from_id or ""),
        created_at=_iso(item.created_at),
        alternatives=[
            {
                "asset_id": alt.get("asset_id"),
                "identity": alt.get("identity"),
                "passed": alt.get("passed"),
                "checks": alt.get("checks", {}),
                "status": alt.get("status"),
            }
            for alt in item.alternatives
        ],
        verdicts={k: v.as_dict() for k, v in verdicts.items()},
        palette=scores.get("palette"),
        review_state=item.review_state,
        thumbnail=_thumbnail(item.image),
    )


def build_kit_report(kit: KitReportInput) -> KitReport:
    """Verdict per asset and the kit's summary (consistent = every required slot canonical and
    every canonical image passing its checks)."""
    slots_by_id = {a.asset_id: a.slot for a in kit.assets}
    assets = sorted((_asset_report(a, slots_by_id) for a in kit.assets), key=_slot_sort_key)
    canonical = [a for a in assets if a.is_canonical]
    canonical_slots = {a.slot for a in canonical}
    missing = [s for s in kit.required_slots if s not in canonical_slots]
    failed = [a for a in assets if a.verdict == FAIL]
    pending = [a for a in assets if a.verdict == UNMEASURED and not a.is_canonical]
    identities = [a.identity for a in canonical if a.identity is not None]
    summary = KitSummary(
        n_assets=len(assets),
        n_canonical=len(canonical),
        n_required=len(kit.required_slots),
        missing_slots=missing,
        n_failed=len(failed),
        failures=[
            f"{a.slot} ({a.asset_id}): " + "; ".join(w for w in a.verdict_words() if ": fail" in w)
            for a in failed
        ],
        n_pending=len(pending),
        pending=[
            f"{a.slot} ({a.asset_id}) waits for a person: "
            + "; ".join(w for w in a.verdict_words() if ": not measured" in w)
            for a in pending
        ],
        min_identity=min(identities) if identities else None,
        mean_identity=sum(identities) / len(identities) if identities else None,
        total_cost_usd=round(sum(a.cost_usd or 0.0 for a in assets), 6),
        consistent=not missing and all(a.verdict != "fail" for a in canonical),
    )
    return KitReport(
        kit_id=kit.kit_id,
        name=kit.name,
        status=kit.status,
        prompts=dict(kit.prompts),
        embedder=kit.embedder.as_dict(),
        thresholds=asdict(kit.thresholds),
        assets=assets,
        summary=summary,
        generated_at=_iso(kit.generated_at or datetime.now(UTC)) or "",
        palette_contract=dict(kit.palette_contract) if kit.palette_contract else None,
    )


def _data_uri(jpeg: bytes | None) -> str | None:
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}" if jpeg else None


def render_kit_html(report: KitReport) -> str:
    template = _TEMPLATES.get_template("kit_report.html")
    thumbs = {a.asset_id: _data_uri(a.thumbnail) for a in report.assets}
    return template.render(report=report, thumbs=thumbs)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def render_contact_sheet(report: KitReport, columns: int = 5) -> bytes:
    """A labelled grid: thumbnail, slot, identity vs threshold and PASS/FAIL under each."""
    cell_w, label_h, pad = THUMBNAIL_PX, 64, 8
    rows = max(1, math.ceil(len(report.assets) / columns))
    header_h = 40
    sheet = Image.new(
        "RGB",
        (pad + columns * (cell_w + pad), header_h + rows * (cell_w + label_h + pad) + pad),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    title = f"{report.name} ({report.kit_id}) - {report.status} - {report.embedder['kind']}"
    draw.text((pad, 10), title, fill="black", font=_font(18))
    colours = {
        "pass": (22, 128, 61),
        "fail": (185, 28, 28),
        "unmeasured": (120, 120, 120),
        "unscored": (100, 100, 100),
    }
    for index, asset in enumerate(report.assets):
        x = pad + (index % columns) * (cell_w + pad)
        y = header_h + (index // columns) * (cell_w + label_h + pad)
        draw.rectangle((x, y, x + cell_w - 1, y + cell_w - 1), fill=(240, 240, 240))
        if asset.thumbnail:
            thumb = Image.open(io.BytesIO(asset.thumbnail))
            sheet.paste(thumb, (x + (cell_w - thumb.width) // 2, y + (cell_w - thumb.height) // 2))
        colour = colours[asset.verdict]
        draw.rectangle((x, y, x + cell_w - 1, y + cell_w - 1), outline=colour, width=3)
        star = " *canonical" if asset.is_canonical else ""
        draw.text((x, y + cell_w + 4), f"{asset.slot}{star}", fill="black", font=_font(14))
        score = (
            f"identity {asset.identity:.3f} / {asset.identity_threshold:.2f}"
            if asset.identity is not None and asset.identity_threshold is not None
            else "identity -"
        )
        draw.text((x, y + cell_w + 22), score, fill=(60, 60, 60), font=_font(13))
        failed = [n.replace("_", " ") for n, v in asset.verdicts.items() if v["verdict"] == FAIL]
        unmeasured = [
            n.replace("_", " ") for n, v in asset.verdicts.items() if v["verdict"] == UNMEASURED
        ]
        if asset.verdict == UNMEASURED:
            verdict = "NOT MEASURED: " + ", ".join(unmeasured)
        else:
            verdict = asset.verdict.upper() + (f": {', '.join(failed)}" if failed else "")
        draw.text((x, y + cell_w + 40), verdict, fill=colour, font=_font(14))
    out = io.BytesIO()
    sheet.save(out, format="PNG")  # zlib level 6: optimize=True cost ~9x the CPU here
    return out.getvalue()


def write_kit_report(report: KitReport, out_dir: Path) -> ReportFiles:
    """Write report.html (self-contained), report.json and contact_sheet.png under out_dir/kit."""
    folder = Path(out_dir) / report.kit_id
    files = ReportFiles(
        folder / "report.html", folder / "report.json", folder / "contact_sheet.png"
    )
    # links to the kit's model-upgrade comparison reports (generation/upgrade_report.py)
    from avatar_pipeline.generation.upgrade_report import upgrade_links_html

    html = render_kit_html(report).replace("</body>", upgrade_links_html(folder) + "</body>", 1)
    # reports are re-written from the catalog whenever they are stale: no fsync needed
    atomic_write(files.html, html.encode(), durable=False)
    payload = json.dumps(report.to_dict(), indent=2, sort_keys=True).encode()
    atomic_write(files.json, payload, durable=False)
    atomic_write(files.contact_sheet_png, render_contact_sheet(report), durable=False)
    return files


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(report: KitReport) -> str:
    """A markdown summary table (for Dagster metadata)."""
    s = report.summary
    lines = [
        f"**{_md_cell(report.name)}** `{report.kit_id}` — status {report.status}, "
        f"embedder {report.embedder['kind']} ({report.embedder['model']}), "
        f"{s.n_canonical} canonical / {s.n_required} required, "
        f"min identity {_fmt(s.min_identity)}, "
        f"{'consistent' if s.consistent else 'NOT consistent'}",
        "",
        "| slot | score | threshold | adherence | copy | passed | canonical |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in report.assets:
        if a.adherence_rank is not None:
            adherence = f"rank {a.adherence_rank} ({_md_cell(a.adherence_top or '')})"
        else:
            adherence = "—" if a.verdict == "unscored" else "n/a"
        copy = "—" if a.copy_distance is None else str(a.copy_distance)
        passed = {"pass": "yes", "fail": "**no**", "unmeasured": "not measured", "unscored": "—"}[
            a.verdict
        ]
        lines.append(
            f"| {_md_cell(a.slot)} | {_fmt(a.identity)} | {_fmt(a.identity_threshold, 2)} | "
            f"{adherence} | {copy} | {passed} | {'yes' if a.is_canonical else ''} |"
        )
    if s.missing_slots:
        lines += ["", "Missing canonical slots: " + ", ".join(s.missing_slots)]
    reasons = [
        f"- {_md_cell(a.slot)}: " + _md_cell("; ".join(a.verdict_words()))
        for a in report.assets
        if a.verdict in (FAIL, UNMEASURED)
    ]
    if reasons:
        lines += ["", "Why (fail / not measured):", *reasons]
    return "\n".join(lines)


def _fleet_row(report: KitReport) -> dict[str, Any]:
    s = report.summary
    return {
        "kit_id": report.kit_id,
        "name": report.name,
        "status": report.status,
        "n_canonical": s.n_canonical,
        "n_required": s.n_required,
        "min_identity": s.min_identity,
        "mean_identity": s.mean_identity,
        "n_failed": s.n_failed,
        "missing_slots": list(s.missing_slots),
        "consistent": s.consistent,
        "embedder": dict(report.embedder),
        "report": f"{report.kit_id}/report.html",
    }


def write_fleet_summary(reports: list[KitReport], out_dir: Path) -> Path:
    """Write ``index.html`` and ``fleet.json`` listing every kit; returns the index path."""
    out_dir = Path(out_dir)
    rows = sorted((_fleet_row(r) for r in reports), key=lambda r: (r["consistent"], r["kit_id"]))
    generated_at = datetime.now(UTC).isoformat()
    payload = {"generated_at": generated_at, "kits": rows}
    atomic_write(out_dir / "fleet.json", json.dumps(payload, indent=2, sort_keys=True).encode())
    html = _TEMPLATES.get_template("fleet_index.html").render(rows=rows, generated_at=generated_at)
    index = out_dir / "index.html"
    atomic_write(index, html.encode())
    return index


def fleet_markdown(reports: list[KitReport]) -> str:
    lines = [
        "| kit | status | canonical | min identity | mean identity | failures | consistent |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in sorted((_fleet_row(r) for r in reports), key=lambda r: r["kit_id"]):
        lines.append(
            f"| {_md_cell(row['name'])} (`{row['kit_id']}`) | {row['status']} | "
            f"{row['n_canonical']}/{row['n_required']} | {_fmt(row['min_identity'])} | "
            f"{_fmt(row['mean_identity'])} | {row['n_failed']} | "
            f"{'yes' if row['consistent'] else '**no**'} |"
        )
    return "\n".join(lines)
