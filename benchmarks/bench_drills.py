"""Fault drills (wm_eval.drills): the stop time of each fault, from the moment it struck to
the first zero command that stayed zero at the simulated base, in simulated seconds (shown in
the ms columns as ms), against the bound the drill asserts (detecting timeout + v / a_max +
jerk ramp + two control periods). One run per drill: n is 1, median = p99 = that run.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import List, Optional

from benchlib import main, row

from wm_eval import drills


def _note(r) -> str:
    parts = []
    if r.get("bound_ms") is not None:
        parts.append("bound %.0f ms (%s)" % (r["bound_ms"], r["timeout_name"]))
    parts.append("speed at fault %.2f m/s" % r["speed_at_fault"] if r.get("speed_at_fault")
                 else "no stop required")
    if r.get("held_max_speed") is not None:
        parts.append("held at %.2f m/s (limit %.2f) while Redis was frozen, %.2f m/s after"
                     % (r["held_max_speed"], r["held_limit"], r["max_speed_after"] or 0.0))
    parts.append("worst step %.2f of a_max*dt" % r["worst_step_ratio"])
    parts.append("resumed and reached goal" if r["reached"] else "DID NOT reach the goal")
    parts.append("%d contacts" % r["contacts"])
    return ", ".join(parts)


NOTE = _note


def run(repeats: Optional[int] = None) -> List[dict]:
    rows = []
    os.environ["WM_RUN_DOMAIN_ID"] = str(random.SystemRandom().randint(150, 200))
    with tempfile.TemporaryDirectory() as tmp:
        for d in drills.DRILLS:
            r = drills.run_drill(d, Path(tmp) / d.name)
            stop = [] if r["stop_s"] is None else [1e3 * r["stop_s"]]
            rows.append(row(d.name, stop,
                            bound_ms=None if r["stop_bound_s"] is None
                            else 1e3 * r["stop_bound_s"],
                            timeout_name=d.timeout_name, speed_at_fault=r.get("speed_at_fault"),
                            worst_step_ratio=r["worst_step_ratio"], reached=r["reached"],
                            contacts=r["contacts"], held_max_speed=r.get("held_max_speed"),
                            held_limit=r.get("held_limit"),
                            max_speed_after=r.get("max_speed_after")))
            print("  %s: %s" % (d.name, _note(rows[-1])), flush=True)
    return rows


if __name__ == "__main__":
    main(run, __doc__)
