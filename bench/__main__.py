"""``make bench`` / ``python -m bench``: run every benchmark module in :data:`BENCHMARKS` and print results.

Each module exposes ``run() -> list[str]`` (lines to print). Add a benchmark by adding its module name.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ["bench.ingest", "bench.ingest_limits", "bench.squad", "bench.raw_url", "bench.analyze"]


def main(argv: list[str]) -> int:
    selected = [b for b in BENCHMARKS if not argv or any(a in b for a in argv)]
    for name in selected:
        print(f"== {name}", flush=True)
        for line in importlib.import_module(name).run():
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
