"""Velocity smoother: speed, acceleration and jerk limits on every command that reaches the base.

Open loop (the last output is the state, as Nav2's velocity_smoother in OPEN_LOOP mode): the
base follows its commands closely, and odometry is exactly what a fault may corrupt. Per axis
(linear, angular) the acceleration is limited to `accel` when speeding up and `decel` when
slowing down, and may change by at most `jerk * dt` per step; near the target it is reduced
ahead of time so the speed settles without overshoot. So no
output step exceeds max(accel, decel) * dt.

The one exception is `emergency_stop()`: zero at once, as an e-stop must be. For the gate's
escape from the stop zone, `along()` gives a step that keeps the direction of (v, w) while it
ramps, within the same per-step limits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class AxisLimits:
    min_speed: float   # most negative allowed speed (<= 0)
    max_speed: float
    accel: float       # when |speed| grows [unit/s^2]
    decel: float       # when |speed| shrinks
    jerk: float        # [unit/s^3]; 0 disables the jerk limit


class Axis:
    """One smoothed axis: speed and acceleration state."""

    def __init__(self, limits: AxisLimits):
        self.limits = limits
        self.speed = 0.0
        self.accel = 0.0

    def step(self, target: float, dt: float) -> float:
        lim = self.limits
        target = min(max(target, lim.min_speed), lim.max_speed)
        if dt <= 0.0:
            return self.speed  # no time passed: nothing may change
        err = target - self.speed
        if err == 0.0:
            self.accel = 0.0
            return self.speed
        slowing = self.speed != 0.0 and (err > 0) != (self.speed > 0)
        a_max = lim.decel if slowing else lim.accel
        a = math.copysign(min(abs(err) / dt, a_max), err)
        if lim.jerk > 0.0:
            # brake the acceleration in time to arrive without overshoot: this step (a dt)
            # plus ramping a down to zero afterwards (a^2 / 2j + a dt / 2) must fit in |err|
            h = 1.5 * dt
            a_arrive = lim.jerk * (-h + math.sqrt(h * h + 2.0 * abs(err) / lim.jerk))
            a = math.copysign(min(abs(a), a_arrive), err)
            j = lim.jerk * dt
            a = min(max(a, self.accel - j), self.accel + j)
        step = a * dt
        a_land = err / dt
        if abs(a_land) <= a_max and (lim.jerk <= 0.0 or (
                abs(a_land - self.accel) <= lim.jerk * dt and abs(a_land) <= lim.jerk * dt)):
            # reachable this step, and holding it next step is within the jerk limit too
            step = err
        elif (err > 0 and step >= err) or (err < 0 and step <= err) \
                or abs(err) <= 0.5 * lim.jerk * dt * dt:
            step = err  # would pass the target, or is within one jerk step: land on it
        elif step != 0.0 and (step > 0) != (err > 0):
            # still unwinding an acceleration the other way: hold, never move away
            step = 0.0
        self.speed += step
        self.accel = step / dt
        return self.speed

    def stop_now(self) -> None:
        self.speed = 0.0
        self.accel = 0.0


class VelocitySmoother:
    """(v, w) through two limited axes."""

    def __init__(self, linear: AxisLimits, angular: AxisLimits):
        self.linear = Axis(linear)
        self.angular = Axis(angular)

    @property
    def output(self) -> Tuple[float, float]:
        return self.linear.speed, self.angular.speed

    def step(self, v: float, w: float, dt: float) -> Tuple[float, float]:
        if not (math.isfinite(v) and math.isfinite(w)):
            v, w = 0.0, 0.0  # never pass a non-finite target on; stop smoothly instead
        return self.linear.step(v, dt), self.angular.step(w, dt)

    def preview(self, v: float, w: float, dt: float) -> Tuple[float, float]:
        """What step(v, w, dt) would output, without changing the state."""
        saved = [(a, a.speed, a.accel) for a in (self.linear, self.angular)]
        try:
            return self.step(v, w, dt)
        finally:
            for axis, speed, accel in saved:
                axis.speed, axis.accel = speed, accel

    def along(self, v: float, w: float, dt: float) -> Optional[Tuple[float, float]]:
        """A step towards (v, w) that stays on its ray k (v, w), 0 <= k <= 1: the largest k
        for which each axis lies between its speed now and where step() would take it, so
        no axis moves further than step() allows. While the axes ramp at their own rates
        step() may leave the ray (turn first, back later); an escape must follow the path
        it was checked on (gate.py). None when no point of the ray is within this step (the
        robot moves another way). The state is not changed: see set_output."""
        targets = (v, w)
        new = self.preview(v, w, dt)
        lo, hi = 0.0, 1.0
        for axis, target, x in zip((self.linear, self.angular), targets, new):
            a, b = min(axis.speed, x), max(axis.speed, x)
            if target == 0.0:
                if not a <= 0.0 <= b:
                    return None
                continue
            k1, k2 = sorted((a / target, b / target))
            lo, hi = max(lo, k1), min(hi, k2)
        if lo > hi:
            return None
        return hi * v, hi * w

    def set_output(self, v: float, w: float, dt: float) -> Tuple[float, float]:
        """Take (v, w), which preview() or along() returned for this dt, as this step's
        output."""
        if dt > 0.0:  # no time passed: preview() and along() returned the speeds as they are
            for axis, x in ((self.linear, v), (self.angular, w)):
                axis.accel = (x - axis.speed) / dt
                axis.speed = x
        return self.output

    def emergency_stop(self) -> Tuple[float, float]:
        self.linear.stop_now()
        self.angular.stop_now()
        return 0.0, 0.0

    def max_step(self, dt: float) -> Tuple[float, float]:
        """The largest change one step of dt may make (what fault drills check against)."""
        lv, la = self.linear.limits, self.angular.limits
        return max(lv.accel, lv.decel) * dt, max(la.accel, la.decel) * dt
