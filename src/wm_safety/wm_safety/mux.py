"""Command mux: which command may drive, by priority, with e-stop and pause above all.

Priorities, highest first: e-stop, pause, teleop (a joystick), navigation (the planner). A
source that has not spoken for its timeout is ignored, so a silent joystick hands control
back to navigation, and a silent planner leaves no source at all (the robot stops).

The e-stop latches: a `False` on the e-stop topic does not release it, only an explicit
`resume()` does, and only when the e-stop input is not asserting (its last message was
False, or its last True is older than `estop_hold`: a held button keeps publishing True).
Pause is the operator's controlled stop: set and cleared by the pause service, and ramped by
the velocity smoother like any stop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

NAV, TELEOP = "nav", "teleop"


@dataclass
class Source:
    priority: int
    timeout: float
    cmd: Tuple[float, float] = (0.0, 0.0)
    stamp: Optional[float] = None

    def fresh(self, now: float) -> bool:
        return self.stamp is not None and 0.0 <= now - self.stamp <= self.timeout


@dataclass(frozen=True)
class Selection:
    source: str                      # nav, teleop, estop, paused or none
    cmd: Tuple[float, float]         # what that source asks for ((0, 0) unless nav/teleop)


class CommandMux:
    def __init__(self, nav_timeout: float, teleop_timeout: float, estop_hold: float = 1.0):
        self.sources: Dict[str, Source] = {NAV: Source(1, nav_timeout),
                                           TELEOP: Source(2, teleop_timeout)}
        self.estop = False
        self.paused = False
        self._estop_asserted_at: Optional[float] = None
        self.estop_hold = estop_hold  # an e-stop True this recent blocks resume [s]

    def command(self, name: str, v: float, w: float, now: float) -> bool:
        """A command from `name`; False (ignored) if it is not finite."""
        if not (math.isfinite(v) and math.isfinite(w)):
            return False
        src = self.sources[name]
        src.cmd, src.stamp = (float(v), float(w)), now
        return True

    def estop_input(self, engaged: bool, now: float) -> None:
        """True engages (and latches); False says the button is out, which allows a
        resume but does not release anything by itself."""
        if engaged:
            self.estop = True
            self._estop_asserted_at = now
        else:
            self._estop_asserted_at = None

    def resume(self, now: float) -> Tuple[bool, str]:
        """Release a latched e-stop; refused while the e-stop input still asserts."""
        if not self.estop:
            return True, "e-stop was not engaged"
        t = self._estop_asserted_at
        if t is not None and 0.0 <= now - t < self.estop_hold:
            return False, "e-stop input still asserted %.2f s ago" % (now - t)
        self.estop = False
        return True, "e-stop released"

    def select(self, now: float) -> Selection:
        if self.estop:
            return Selection("estop", (0.0, 0.0))
        if self.paused:
            return Selection("paused", (0.0, 0.0))
        best = None
        for name, src in self.sources.items():
            if src.fresh(now) and (best is None or src.priority > self.sources[best].priority):
                best = name
        if best is None:
            return Selection("none", (0.0, 0.0))
        return Selection(best, self.sources[best].cmd)

    def last_stamp(self, name: str) -> Optional[float]:
        return self.sources[name].stamp
