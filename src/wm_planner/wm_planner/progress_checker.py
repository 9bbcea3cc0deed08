"""Progress checker: has the robot moved at all lately? (Nav2's SimpleProgressChecker.)

The robot must move `required_movement_radius` metres from where it was last measured
within `movement_time_allowance` seconds; each time it does, that pose becomes the new
baseline. Turning on the spot is no progress (it moves nothing), so a robot that turns
back and forth between two ways round a shelf is caught here, and so is one parked in
front of a gap it cannot pass. The controller pauses the check while a recovery runs and
while the robot deliberately waits (a fleet yield), and restarts it after each.

Plain Python (no rclpy); Python 3.8 compatible. Nav2's defaults: 0.5 m within 10 s.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple


class ProgressChecker:
    def __init__(self, required_movement_radius: float = 0.5,
                 movement_time_allowance: float = 10.0):
        if not (required_movement_radius > 0.0 and movement_time_allowance > 0.0):
            raise ValueError("progress checker: radius and time allowance must be positive")
        self.radius = float(required_movement_radius)
        self.allowance = float(movement_time_allowance)
        self._baseline: Optional[Tuple[float, float, float]] = None   # (t, x, y)

    def reset(self) -> None:
        """Forget the baseline: the next `check` starts a new one (a new goal, a recovery
        done, a wait over)."""
        self._baseline = None

    def check(self, now: float, x: float, y: float) -> bool:
        """False when the robot has not left the baseline's radius within the allowance."""
        b = self._baseline
        if b is None or math.hypot(x - b[1], y - b[2]) >= self.radius or now < b[0]:
            self._baseline = (float(now), float(x), float(y))
            return True
        return now - b[0] <= self.allowance

    def time_left(self, now: float) -> float:
        """Seconds until the check fails if the robot does not move (the allowance when
        there is no baseline)."""
        b = self._baseline
        return self.allowance if b is None else max(0.0, self.allowance - (now - b[0]))
