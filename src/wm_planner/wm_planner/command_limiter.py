"""The last word before cmd_vel: whatever a solver returns, what leaves the planner is finite,
within the velocity limits and within the acceleration limits of the previous command; a stop
is a controlled ramp at the deceleration limit, then zero.

Plain Python (no rclpy), so the rules are unit-tested without DDS; the planner node calls
`limit()` for every solver command and `stop_step()` on every tick while stopping.

Why relative to the previous *command* (not the measured velocity): the base's speed loop
tracks commands; a command that jumps by more than a_max * dt asks for an acceleration the
base cannot deliver (or, braking, one that tips a tall payload). `max_gap` bounds how much
elapsed time may justify a change: after a long silence the limiter assumes one period, so a
planner waking up after a stall cannot command a step it "saved up".
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

from wm_world_model.state import RobotLimits


class CommandLimiter:
    def __init__(self, limits: RobotLimits, period: float, max_gap: Optional[float] = None):
        if not (period > 0.0 and math.isfinite(period)):
            raise ValueError("period must be positive and finite")
        self.limits = limits
        self.period = float(period)
        self.max_gap = float(max_gap) if max_gap is not None else 2.0 * self.period
        self.last: Tuple[float, float] = (0.0, 0.0)
        self.last_t: Optional[float] = None
        self.rejected = 0   # non-finite requests replaced by a braking step

    def reset(self, v: float = 0.0, w: float = 0.0) -> None:
        """Forget the history (e.g. on activate: the base is assumed at rest)."""
        self.last = (float(v), float(w))
        self.last_t = None

    def _dt(self, t: float) -> float:
        if self.last_t is None:
            return self.period
        return min(max(t - self.last_t, 0.0), self.max_gap)

    def limit(self, v: float, w: float, t: float) -> Tuple[float, float]:
        """The command to publish at time `t` for the requested (v, w)."""
        if not (math.isfinite(v) and math.isfinite(w)):
            self.rejected += 1
            return self.stop_step(t)
        lim = self.limits
        dt = self._dt(t)
        v0, w0 = self.last
        v = min(max(v, lim.v_min), lim.v_max)
        w = min(max(w, -lim.w_max), lim.w_max)
        dv, dw = lim.a_max * dt, lim.alpha_max * dt
        v = min(max(v, v0 - dv), v0 + dv)
        w = min(max(w, w0 - dw), w0 + dw)
        return self._emit(v, w, t)

    def stop_step(self, t: float) -> Tuple[float, float]:
        """One step of a controlled stop: toward zero at the deceleration limits."""
        dt = self._dt(t)
        v0, w0 = self.last
        dv, dw = self.limits.a_max * dt, self.limits.alpha_max * dt
        v = 0.0 if abs(v0) <= dv else v0 - math.copysign(dv, v0)
        w = 0.0 if abs(w0) <= dw else w0 - math.copysign(dw, w0)
        return self._emit(v, w, t)

    @property
    def stopped(self) -> bool:
        return self.last == (0.0, 0.0)

    def _emit(self, v: float, w: float, t: float) -> Tuple[float, float]:
        # -0.0 would read as "not stopped" to nobody, but keep zeros exact and positive.
        v = 0.0 if v == 0.0 else float(v)
        w = 0.0 if w == 0.0 else float(w)
        self.last = (v, w)
        self.last_t = t
        return v, w


def speed_cap(limits: RobotLimits, horizon_s: float, sensor_range: float,
              margin: float = 0.0) -> float:
    """The largest forward speed from which the robot can stop (at a_max) within what the
    prediction horizon covers (v * T >= v^2 / 2a, i.e. v <= 2 a T) and within the sensor's range
    less a margin (v^2 / 2a <= range - margin)."""
    a = limits.a_max
    by_horizon = 2.0 * a * max(horizon_s, 0.0)
    by_sensor = math.sqrt(2.0 * a * max(sensor_range - margin, 0.0))
    return min(by_horizon, by_sensor)
