"""Deadlocks between robots: two robots that block each other (a one-lane aisle, face to face)
must not wait forever.

Blocked: this robot has a goal, has not moved faster than `speed` for `time` seconds, and a
neighbour within `radius` is not moving either. Who yields is decided by one rule every
robot applies to the same shared data: the lower task priority yields; on equal priority the
larger robot id (string order) yields. The decision is also written to Redis with SET NX
(wm_fleet.client.FleetClient.decide_yield), so both robots act on the same answer even if
their views of each other differ for a moment. The yielding robot drives to the nearest
passing place that lies on its own side (farther from the other robot than from itself) and
waits there until the other robot has passed (it is moving away and is `release_distance`
beyond), or `timeout` has run out.

Plain Python; no rclpy, no Redis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from wm_fleet.schema import RobotEntry


@dataclass(frozen=True)
class DeadlockConfig:
    time: float = 4.0              # no progress for this long [s]
    radius: float = 6.0            # ... with a stopped neighbour this close [m]
    speed: float = 0.05            # "not moving" [m/s]
    release_distance: float = 2.0  # the other robot passed and is this far [m]
    timeout: float = 60.0          # longest wait at a passing place [s]


def who_yields(a: RobotEntry, b: RobotEntry) -> str:
    """The id of the robot that gives way: lower priority, then the larger id."""
    if a.priority != b.priority:
        return a.robot_id if a.priority < b.priority else b.robot_id
    return max(a.robot_id, b.robot_id)


def parse_places(text: str) -> Tuple[Tuple[float, float], ...]:
    """'x1,y1;x2,y2' (map frame) -> ((x1, y1), (x2, y2))."""
    out = []
    for part in text.split(";"):
        if part.strip():
            x, y = (float(v) for v in part.split(","))
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError("passing place %r is not finite" % part)
            out.append((x, y))
    return tuple(out)


def passing_place(me: Sequence[float], other: Sequence[float],
                  places: Sequence[Tuple[float, float]]) -> Optional[Tuple[float, float]]:
    """The nearest place on this robot's side: farther from the other robot than from us."""
    best, best_d = None, math.inf
    for p in places:
        d_me = math.hypot(p[0] - me[0], p[1] - me[1])
        d_other = math.hypot(p[0] - other[0], p[1] - other[1])
        if d_other > d_me + 0.5 and d_me < best_d:
            best, best_d = p, d_me
    return best


def has_passed(me: RobotEntry, other: RobotEntry, release_distance: float,
               moving: float = 0.15) -> bool:
    """The other robot drives (faster than `moving`: odometry jitters around zero) away from
    us and is far enough."""
    dx, dy = other.pose[0] - me.pose[0], other.pose[1] - me.pose[1]
    if math.hypot(dx, dy) < release_distance or abs(other.velocity[0]) < moving:
        return False
    yaw, v = other.pose[2], other.velocity[0]
    return v * (math.cos(yaw) * dx + math.sin(yaw) * dy) > 0.0


class BlockDetector:
    """Tracks how long this robot has been stuck next to a stopped neighbour."""

    def __init__(self, cfg: DeadlockConfig):
        self.cfg = cfg
        self.slow_since: Optional[float] = None

    def update(self, now: float, me: RobotEntry, neighbours: Sequence[RobotEntry],
               goal_active: bool) -> Optional[RobotEntry]:
        """The neighbour we are deadlocked with, or None."""
        if not goal_active or abs(me.velocity[0]) > self.cfg.speed:
            self.slow_since = None
            return None
        if self.slow_since is None:
            self.slow_since = now
        if now - self.slow_since < self.cfg.time:
            return None
        close = [n for n in neighbours
                 if math.hypot(n.pose[0] - me.pose[0], n.pose[1] - me.pose[1]) < self.cfg.radius
                 and abs(n.velocity[0]) <= self.cfg.speed]
        if not close:
            return None
        return min(close, key=lambda n: math.hypot(n.pose[0] - me.pose[0],
                                                   n.pose[1] - me.pose[1]))
