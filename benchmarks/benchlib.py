"""Helpers shared by the benchmark modules: timing, result rows, the markdown table and the
command line of a `bench_*.py` module run as a script.

Imported as ``from benchlib import ...``: benchmarks/ is on sys.path both when run_all.py
imports the modules and when a module runs as ``python benchmarks/bench_x.py``.
Stays Python 3.8-compatible (bench_dds's child roles import it).
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

Row = Dict[str, object]

# Optional row keys shown in the "also measured" column: key, format.
EXTRA = (("delivered_pct", "delivered %.0f%%"), ("rate_hz", "%.1f Hz"), ("sent", "sent %d"))


def time_calls(fn: Callable[[], object], repeats: int, warmup: int = 1) -> List[float]:
    """Call `fn` `warmup` times untimed, then `repeats` times; the per-call times in ms."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def row(name: str, times_ms: Sequence[float], **extra) -> Row:
    """{name, median_ms, p99_ms, n} of the samples (NaN when there are none), plus `extra`."""
    if len(times_ms):
        median, p99 = float(np.median(times_ms)), float(np.percentile(times_ms, 99))
    else:
        median = p99 = float("nan")
    out: Row = {"name": name, "median_ms": median, "p99_ms": p99, "n": len(times_ms)}
    out.update(extra)
    return out


def to_markdown(rows: Sequence[Mapping[str, object]],
                peers: Optional[Mapping[str, str]] = None,
                note: Optional[Callable[[Mapping[str, object]], str]] = None) -> str:
    """One table line per row; the ratio column divides a row's median by its peer's
    (`peers`: case -> peer case), the last column lists the EXTRA keys a row has and
    `note(row)` where given."""
    lines = ["| case | median ms | p99 ms | n | ratio to peer (median) | also measured |",
             "|---|---:|---:|---:|---|---|"]
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        ratio = ""
        peer = (peers or {}).get(r["name"])
        if peer and peer in by_name and by_name[peer]["median_ms"] > 0:
            ratio = "%.2fx vs %s" % (r["median_ms"] / by_name[peer]["median_ms"], peer)
        also = [fmt % r[k] for k, fmt in EXTRA if r.get(k) is not None]
        if note is not None:
            also = [s for s in [note(r)] if s] + also
        lines.append("| %s | %.2f | %.2f | %d | %s | %s |" % (
            r["name"], r["median_ms"], r["p99_ms"], r["n"], ratio, ", ".join(also)))
    return "\n".join(lines)


def main(run: Callable[..., List[Row]], doc: Optional[str], argv=None,
         extra_args: Optional[Callable[[argparse.ArgumentParser], None]] = None,
         peers: Optional[Mapping[str, str]] = None, quick_repeats: int = 10,
         note: Optional[Callable[[Mapping[str, object]], str]] = None) -> int:
    """The command line of a benchmark module: ``[--quick]`` plus the options `extra_args`
    adds to the parser (each passed to `run` as a keyword argument by its dest); prints
    the table of ``run(repeats=quick_repeats if --quick else None, ...)``."""
    ap = argparse.ArgumentParser(description=(doc or "").strip().split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few repetitions (smoke test)")
    if extra_args is not None:
        extra_args(ap)
    args = vars(ap.parse_args(argv))
    quick = args.pop("quick")
    print(to_markdown(run(repeats=quick_repeats if quick else None, **args), peers, note))
    return 0
