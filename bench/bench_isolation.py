"""Wall and CPU time of isolation + weight-free embedding of a 1024 px image (and palette).

.venv/bin/python bench/bench_isolation.py [--n 20]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from avatar_pipeline.consistency.embedders import PerceptualEmbedder  # noqa: E402
from avatar_pipeline.consistency.isolation import isolate  # noqa: E402
from avatar_pipeline.consistency.palette import compare_palette, extract_palette  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    files = sorted((ROOT / "bench" / "eval_set").glob("*/pose1.png"))[: args.n]
    images = []
    for f in files:
        buf = io.BytesIO()
        Image.open(f).convert("RGB").resize((1024, 1024), Image.Resampling.BICUBIC).save(buf, "PNG")
        images.append(buf.getvalue())
    embedder = PerceptualEmbedder()
    contract = extract_palette(images[0])
    for name, fn in (
        ("decode+isolate", lambda b: isolate(b)),
        ("decode+isolate+embed", lambda b: embedder.embed_images([b])),
        ("palette compare", lambda b: compare_palette(contract, b)),
    ):
        times, cpu = [], []
        for data in images:
            start, start_cpu = time.perf_counter(), time.process_time()
            fn(data)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(f"{name:22} 1024 px: wall median {1000 * statistics.median(times):.0f} ms, "
              f"CPU median {1000 * statistics.median(cpu):.0f} ms, max "
              f"{1000 * max(cpu):.0f} ms ({len(times)} images)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
