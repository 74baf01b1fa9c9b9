"""CPU cost of a kit's not-a-copy and palette checks: before vs after, side by side in one run.

Builds ``--kits`` offline-provider kits (portrait anchor, full body, the 8 default expressions
and 4 poses, at ``--size`` px, as ``bench/offline_kit_scores.py`` makes them) and runs each
kit's real sequence of checks, in ``score_slots`` order: the palette contract from the anchor,
then per generated image ``find_copy`` against its targets (every reference, the primary
anchor, the earlier siblings of its kind, labelled as the generator labels them) and
``compare_palette``. Each kit is run by:

- ``before``: ``copies.py`` and ``palette.py`` as of ``--baseline`` (a git revision, loaded
  from ``git show``; default: the commit before the cheaper checks),
- ``after``: the current code,
- ``after, no screen``: the current code with ``find_copy(..., screen=False)`` (every target
  registered and measured at working size).

Each run starts from empty memos, and each image's two checks share decoded images as in
``score_slots`` (``decode_once``; there the embedder has decoded the candidate and the anchor
before the checks run, so here they are decoded before the clock starts). CPU is
``time.process_time`` of this process, with one OpenBLAS thread (see ``BLAS_THREADS``); each
kit is run ``--repeat`` times by each implementation, in turn, and the least CPU of the
repeats is kept (the machine is shared: the least is the run least disturbed). The time spent
inside ``isolation.isolate`` (each image at 192 px: before, the copy and the palette check
each isolated it; after, once, shared) is reported on its own line. The verdicts are
compared too: copy verdicts and the closest changed fraction, palette pass/fail and ΔE.

    .venv/bin/python bench/bench_copy_cost.py [--kits 3] [--repeat 2] [--size 512]
        [--baseline d1ecc17]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

# One OpenBLAS thread unless told otherwise (before numpy loads): on 2 cores OpenBLAS threads
# spin after every product and their CPU lands on whatever runs next (measured: both
# implementations then cost ~1.5-2x the CPU, spread at random over the rows).
BLAS_THREADS = os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from offline_kit_scores import KITS, _kit  # noqa: E402

import avatar_pipeline.consistency.isolation as isolation  # noqa: E402
from avatar_pipeline.consistency import copies, palette  # noqa: E402
from avatar_pipeline.consistency.embedders.images import decode_once, decode_rgb  # noqa: E402
from avatar_pipeline.domain.vocab import DEFAULT_EXPRESSIONS, DEFAULT_POSES  # noqa: E402

BASELINE = "d1ecc17"  # the last commit before the screened not-a-copy check

Targets = list[tuple[str, bytes]]


@dataclass
class KitImages:
    anchor: bytes
    checks: list[tuple[str, bytes, Targets]]  # (slot, image, copy targets) in scoring order


def kit_images(index: int, size: int) -> KitImages:
    """One offline kit and the copy targets each of its images is checked against."""
    desc, style = KITS[index % len(KITS)]
    anchor, expressions, bodies = asyncio.run(_kit(desc, style, 100 + 7 * index, size))
    fullbody, poses = bodies[0], bodies[1:]
    ref_anchor = ("reference 1: anchor_portrait", anchor)
    checks: list[tuple[str, bytes, Targets]] = [
        ("fullbody", fullbody, [ref_anchor, ("primary anchor", anchor)])
    ]
    for i, (expr, image) in enumerate(zip(DEFAULT_EXPRESSIONS, expressions, strict=False)):
        siblings = [
            (f"expression:{e.name} (this run)", expressions[k])
            for k, e in enumerate(DEFAULT_EXPRESSIONS[:i])
        ]
        targets = [ref_anchor, ("primary anchor", anchor), *siblings]
        checks.append((f"expression:{expr.name}", image, targets))
    for j, (pose, image) in enumerate(zip(DEFAULT_POSES, poses, strict=False)):
        siblings = [
            (f"pose:{p.name} (this run)", poses[k]) for k, p in enumerate(DEFAULT_POSES[:j])
        ]
        targets = [
            ref_anchor,
            ("reference 2: anchor_fullbody", fullbody),
            ("primary anchor", anchor),
        ]
        checks.append((f"pose:{pose.name}", image, [*targets, *siblings]))
    return KitImages(anchor, checks)


def load_baseline(revision: str) -> tuple[ModuleType, ModuleType] | None:
    """``copies`` and ``palette`` as of ``revision`` (None when git cannot show them)."""
    folder = Path(tempfile.mkdtemp(prefix="copy_cost_"))
    modules = []
    for name in ("copies", "palette"):
        try:
            text = subprocess.run(
                ["git", "show", f"{revision}:avatar_pipeline/consistency/{name}.py"],
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"no baseline: git show {revision} failed ({exc})", file=sys.stderr)
            return None
        path = folder / f"baseline_{name}.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location(f"baseline_{name}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules[0], modules[1]


class IsolationClock:
    """CPU seconds spent in ``isolation.isolate``, whoever calls it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._real = isolation.isolate

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return self._real(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - started
            self.calls += 1

    def install(self, *modules: ModuleType) -> None:
        isolation.isolate = self  # type: ignore[assignment]
        for module in modules:
            if hasattr(module, "isolate"):
                module.isolate = self


@dataclass
class Run:
    """One implementation on one kit."""

    copy_cpu: float = 0.0  # find_copy, isolation excluded
    palette_cpu: float = 0.0  # extract_palette + compare_palette, isolation excluded
    isolation_cpu: float = 0.0
    isolations: int = 0
    comparisons: int = 0
    refined: int = 0
    verdicts: list[tuple[bool, str, float]] = field(default_factory=list)  # copy
    palettes: list[tuple[bool, dict[str, float]]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return self.copy_cpu + self.palette_cpu + self.isolation_cpu


@dataclass
class Impl:
    name: str
    find_copy: Callable[..., Any]
    extract_palette: Callable[[bytes], Any]
    compare_palette: Callable[..., Any]
    clear: Callable[[], None]


def run_kit(impl: Impl, kit: KitImages, clock: IsolationClock) -> Run:
    impl.clear()
    run = Run()
    iso0, calls0 = clock.seconds, clock.calls

    def timed(call: Callable[[], Any]) -> tuple[Any, float]:
        before_iso = clock.seconds
        started = time.process_time()
        value = call()
        return value, time.process_time() - started - (clock.seconds - before_iso)

    contract, spent = timed(lambda: impl.extract_palette(kit.anchor).as_dict())
    run.palette_cpu += spent
    for _slot, image, targets in kit.checks:
        with decode_once():  # as score_slots scores one slot's candidates
            decode_rgb(kit.anchor), decode_rgb(image)  # the embedder's decode, not timed
            verdict, spent = timed(
                lambda image=image, targets=targets: impl.find_copy(image, targets)
            )
            run.copy_cpu += spent
            comparison, spent = timed(
                lambda image=image, contract=contract: impl.compare_palette(contract, image)
            )
            run.palette_cpu += spent
        run.comparisons += len(verdict.comparisons)
        run.refined += sum(getattr(c, "refined", True) for c in verdict.comparisons)
        closest = verdict.closest
        run.verdicts.append((verdict.is_copy, closest.against, closest.changed_fraction))
        run.palettes.append((comparison.passed, {d.name: d.delta_e for d in comparison.deltas}))
    run.isolation_cpu = clock.seconds - iso0
    run.isolations = clock.calls - calls0
    return run


def _clear_current() -> None:
    copies._PREPARED.clear()
    copies._ISOLATIONS.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kits", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2, help="runs per kit; the least is kept")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--baseline", default=BASELINE, help="git revision of 'before'")
    args = parser.parse_args()

    clock = IsolationClock()
    impls = [
        Impl(
            "after",
            copies.find_copy,
            palette.extract_palette,
            palette.compare_palette,
            _clear_current,
        ),
        Impl(
            "after, no screen",
            lambda image, targets: copies.find_copy(image, targets, screen=False),
            palette.extract_palette,
            palette.compare_palette,
            _clear_current,
        ),
    ]
    baseline = load_baseline(args.baseline)
    if baseline is not None:
        old_copies, old_palette = baseline
        impls.insert(
            0,
            Impl(
                f"before ({args.baseline})",
                old_copies.find_copy,
                old_palette.extract_palette,
                old_palette.compare_palette,
                old_copies._PREPARED.clear,
            ),
        )
        clock.install(copies, palette, old_copies, old_palette)
    else:
        clock.install(copies, palette)

    runs: dict[str, list[Run]] = {impl.name: [] for impl in impls}
    for k in range(args.kits):
        kit = kit_images(k, args.size)
        tries: dict[str, list[Run]] = {impl.name: [] for impl in impls}
        for _ in range(args.repeat):
            for impl in impls:  # side by side, kit by kit (the machine's load drifts)
                tries[impl.name].append(run_kit(impl, kit, clock))
        for name, done in tries.items():
            runs[name].append(min(done, key=lambda r: r.total))
        print(f"kit {k}: " + ", ".join(f"{n} {r[-1].total:.2f} s" for n, r in runs.items()),
              file=sys.stderr)  # fmt: skip

    n = args.kits
    names = list(runs)
    print(
        f"{n} offline kits at {args.size} px, {len(kit.checks)} images each, least of "
        f"{args.repeat} runs, OPENBLAS_NUM_THREADS={BLAS_THREADS}"
    )
    print("| per kit | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    rows: list[tuple[str, Callable[[Run], float], str]] = [
        ("not-a-copy: find_copy, isolation excluded (s)", lambda r: r.copy_cpu, "{:.2f}"),
        ("palette: contract + compare_palette, isolation excluded (s)",
         lambda r: r.palette_cpu, "{:.2f}"),
        ("isolation at 192 px (s)", lambda r: r.isolation_cpu, "{:.2f}"),
        ("isolations", lambda r: r.isolations, "{:.0f}"),
        ("all three (s)", lambda r: r.total, "{:.2f}"),
        ("comparisons", lambda r: r.comparisons, "{:.0f}"),
        ("of which registered and measured at 192 px", lambda r: r.refined, "{:.0f}"),
        ("find_copy per comparison, isolation excluded (ms)",
         lambda r: 1000 * r.copy_cpu / max(r.comparisons, 1), "{:.1f}"),
    ]  # fmt: skip
    for label, value, fmt in rows:
        cells = [fmt.format(sum(value(r) for r in runs[name]) / n) for name in names]
        print(f"| {label} | " + " | ".join(cells) + " |")
    reference = names[0]
    for name in names[1:]:
        ratios = [
            sum(value(r) for r in runs[reference]) / max(sum(value(r) for r in runs[name]), 1e-9)
            for _, value, _ in (rows[0], rows[1], rows[4])
        ]
        print(f"{reference} / {name}: not-a-copy {ratios[0]:.1f}x, palette {ratios[1]:.1f}x, "
              f"all three {ratios[2]:.1f}x")  # fmt: skip
        _compare_verdicts(runs[reference], runs[name], f"{name} vs {reference}")
    return 0


def _compare_verdicts(old: list[Run], new: list[Run], title: str) -> None:
    copy_same = copy_total = palette_same = palette_total = 0
    closest_diff: list[float] = []
    de_diff: list[float] = []
    for a, b in zip(old, new, strict=True):
        for (copy_a, _, frac_a), (copy_b, _, frac_b) in zip(a.verdicts, b.verdicts, strict=True):
            copy_total += 1
            copy_same += copy_a == copy_b
            closest_diff.append(frac_b - frac_a)
        for (pass_a, de_a), (pass_b, de_b) in zip(a.palettes, b.palettes, strict=True):
            palette_total += 1
            palette_same += pass_a == pass_b and set(de_a) == set(de_b)
            de_diff.extend(abs(de_b[k] - de_a[k]) for k in de_a if k in de_b)
    print(
        f"{title}: copy verdicts same {copy_same}/{copy_total}, closest changed fraction "
        f"differs by {100 * min(closest_diff):+.1f} .. {100 * max(closest_diff):+.1f} points; "
        f"palette verdicts (pass/fail, callouts) same {palette_same}/{palette_total}, "
        f"|ΔE difference| max {max(de_diff, default=0.0):.2f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
