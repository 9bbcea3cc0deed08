"""World-model service under load: POST /v1/predict (world model, 10 steps) at rising
concurrency, dynamic batching against one request per model call (max_batch 1, the peer):
the default (batch_window_ms 0: a call takes whatever queued while the previous one ran, up
to max_batch 64) and a 2 ms window (the first request waits for more); /v1/plan for scale.

Each configuration is a real `python -m wm_service` (uvicorn, one model thread) on loopback;
the load comes from wrk (Debian's, C, keep-alive connections = concurrency), with a Lua
script that gives every request its own robot state. Per point: throughput (requests/s, the
"Hz" column), latency p50 (median column) and p99 from wrk's own histogram, and the mean
batch size the service measured (its /metrics, before and after). Any non-2xx response
fails the run.

wrk and the service share this machine's 2 cores: absolute numbers are low and noisy, the
batching/one-per-call ratio at the same concurrency is the result.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import httpx
from benchlib import main

from wm_service.process import ServiceProcess

CONCURRENCY = (1, 4, 16, 64)
# The service's default: no waiting, a call takes what queued while the last one ran.
GREEDY = {"batch_window_ms": 0.0, "max_batch": 64}
WINDOW = {"batch_window_ms": 2.0, "max_batch": 64}
ONE_PER_CALL = {"batch_window_ms": 0.0, "max_batch": 1}
CONFIGS = (("one request per call", ONE_PER_CALL), ("batching", GREEDY),
           ("batching 2 ms window", WINDOW))
PREDICT_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0
request = function()
  n = n + 1
  local x = (n * 7919) %% 1000 / 10.0
  local body = string.format('{"state": {"x": %%.1f, "y": 3.0, "yaw": 0.5, "v": 0.4}, ' ..
    '"commands": [%s], "payload_kg": 60}', x)
  return wrk.format(nil, "/v1/predict", nil, body)
end
""" % ", ".join(["[0.8, 0.2]"] * 10)
PLAN_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"state": {"x": 0, "y": 0, "yaw": 0, "v": 0.3}, "goal": {"x": 6, "y": 1}, ' ..
  '"obstacles": [{"x": 2.5, "y": 0.3, "radius": 0.4}]}'
wrk.path = "/v1/plan"
"""
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    if not m:
        raise ValueError("wrk latency %r" % text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url: str, script: Path, connections: int, seconds: float) -> Dict[str, float]:
    out = subprocess.run(["wrk", "-t", str(min(2, connections)), "-c", str(connections),
                          "-d", "%ds" % max(1, int(seconds)), "--latency", "--timeout", "10s",
                          "-s", str(script), url], capture_output=True, text=True,
                         timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError("wrk failed: %s" % (out.stderr or out.stdout))
    text = out.stdout
    if "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError("errors under load:\n%s" % text)
    pct = dict(re.findall(r"^\s+(\d+)%\s+(\S+)$", text, re.M))
    return {"p50": _ms(pct["50"]), "p99": _ms(pct["99"]),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
            "n": int(re.search(r"(\d+) requests in", text).group(1))}


def batch_stats(url: str) -> Dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=5.0).text
    def value(name):
        return float(re.search(r"^%s ([\d.e+]+)$" % name, text, re.M).group(1))
    return {"sum": value("wm_service_batch_size_sum"),
            "count": value("wm_service_batch_size_count")}


def run(repeats: Optional[int] = None, seconds: float = 5.0) -> List[dict]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk not found (scripts/setup.sh installs it)")
    seconds = 2.0 if repeats is not None else seconds
    rows: List[dict] = []
    with tempfile.TemporaryDirectory(prefix="wm-bench-service-") as d:
        d = Path(d)
        predict, plan = d / "predict.lua", d / "plan.lua"
        predict.write_text(PREDICT_LUA)
        plan.write_text(PLAN_LUA)
        for label, cfg in CONFIGS:
            with ServiceProcess(dict(cfg, max_horizon=50), d) as svc:
                wrk(svc.url, predict, 4, 1.0)                       # warm-up
                for c in CONCURRENCY:
                    before = batch_stats(svc.url)
                    r = wrk(svc.url, predict, c, seconds)
                    after = batch_stats(svc.url)
                    calls = max(after["count"] - before["count"], 1.0)
                    rows.append({"name": "predict %s c=%d" % (label, c), "median_ms": r["p50"],
                                 "p99_ms": r["p99"], "n": r["n"], "rate_hz": r["rps"],
                                 "mean_batch": (after["sum"] - before["sum"]) / calls})
                if label == "batching":
                    for c in (1, 4):
                        r = wrk(svc.url, plan, c, seconds)
                        rows.append({"name": "plan c=%d" % c, "median_ms": r["p50"],
                                     "p99_ms": r["p99"], "n": r["n"], "rate_hz": r["rps"]})
    _LAST[:] = rows
    return rows


_LAST: List[dict] = []   # the last run's rows, for the throughput ratio in NOTE
PEERS = {"predict %s c=%d" % (label, c): "predict one request per call c=%d" % c
         for label, _ in CONFIGS[1:] for c in CONCURRENCY}


def note(r) -> str:
    peer = {x["name"]: x for x in _LAST}.get(PEERS.get(r["name"], ""))
    parts = []
    if r.get("mean_batch") is not None:
        parts.append("mean batch %.1f" % r["mean_batch"])
    if peer is not None:
        parts.append("throughput %.2fx" % (r["rate_hz"] / max(peer["rate_hz"], 1e-9)))
    return ", ".join(parts)


NOTE = note


if __name__ == "__main__":
    import sys

    sys.exit(main(run, __doc__, peers=PEERS, note=note, quick_repeats=1))
