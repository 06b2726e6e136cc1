"""Run benchmarks by id: `python -m bench S1 S2`, or `python -m bench all`.

Each benchmark module `bench/s<N>.py` exposes `run() -> bool` which prints its workload, its
figures and, last, `S<N> PASS|MISS <figure> <unit> (target <target>)`. Exit status is non-zero
if any benchmark missed its target.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        (
            m.name.upper()
            for m in pkgutil.iter_modules([str(here)])
            if m.name.startswith("s") and m.name[1:].isdigit()
        ),
        key=lambda name: int(name[1:]),
    )


def main(argv: list[str]) -> int:
    ids = available() if not argv or argv == ["all"] else [a.upper() for a in argv]
    unknown = [i for i in ids if i not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}")
        return 2
    ok = True
    for bench_id in ids:
        module = importlib.import_module(f"bench.{bench_id.lower()}")
        ok = module.run() and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
