"""Deadlocks between robots: two robots that block each other (a one-lane aisle, face to face)
must not wait forever.

Blocked, either way:
- standing: this robot has a goal, has not moved faster than `speed` for `time` seconds, and
  a neighbour within `radius` is not moving either;
- no progress: this robot has a goal, its distance to it has not come `progress_distance`
  closer than its best for `progress_time` seconds, and a neighbour is within `radius`. Two
  robots that take turns entering a lane and backing out of it again (each giving way to
  the other, measured in config/scenarios/fleet/one_lane.yaml) never stand still, yet make
  no progress.
Either way the neighbour must be working on a goal too (it shares an intended path): a parked
robot is an obstacle to drive around, not one to wait for. Who yields is decided by one rule every
robot applies to the same shared data: the lower task priority yields; on equal priority the
larger robot id (string order) yields. The decision is also written to Redis with SET NX
(wm_fleet.client.FleetClient.decide_yield), so both robots act on the same answer even if
their views of each other differ for a moment. The yielding robot drives to the nearest
passing place that lies on its own side (farther from the other robot than from itself) and
waits there until the other robot has passed (it is moving away and is `release_distance`
beyond), has parked (it shares no intended path any more: its goal is reached), or
`timeout` has run out; the first two must hold for `release_hold` seconds in a row before the
robot is released (a hold-off: a robot that passes by and then pauses, or whose entry flickers
for a cycle, must not make the yielding robot drive back into the lane and yield again).
A robot that only pauses in front of us (it shares its stay-here path) has not passed.

YieldArbiter runs all of this for one robot; the fleet client node and the in-process
evaluation (wm_eval.episode) both call it, the node with Redis's SET NX as the referee.

Plain Python; no rclpy, no Redis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from wm_fleet.schema import RobotEntry


@dataclass(frozen=True)
class DeadlockConfig:
    time: float = 4.0              # no progress for this long [s]
    radius: float = 6.0            # ... with a stopped neighbour this close [m]
    speed: float = 0.05            # "not moving" [m/s]
    release_distance: float = 2.0  # the other robot passed and is this far [m]
    timeout: float = 60.0          # longest wait at a passing place [s]
    progress_time: float = 10.0    # no progress towards the goal for this long ... [s]
    progress_distance: float = 1.0  # ... is not getting this much closer than the best [m]
    release_hold: float = 2.0      # the release condition must hold this long [s]


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
    """Tracks how long this robot has stood, or made no progress, next to a neighbour."""

    def __init__(self, cfg: DeadlockConfig):
        self.cfg = cfg
        self.slow_since: Optional[float] = None
        self.best_distance: Optional[float] = None   # closest to the goal so far
        self.best_since: Optional[float] = None      # ... reached then

    def reset(self) -> None:
        self.slow_since = self.best_distance = self.best_since = None

    def update(self, now: float, me: RobotEntry, neighbours: Sequence[RobotEntry],
               goal_active: bool,
               distance_to_goal: Optional[float] = None) -> Optional[RobotEntry]:
        """The neighbour we are deadlocked with, or None."""
        if not goal_active:
            self.reset()
            return None
        stuck = self._no_progress(now, distance_to_goal)
        if abs(me.velocity[0]) > self.cfg.speed:
            self.slow_since = None
        elif self.slow_since is None:
            self.slow_since = now
        standing = self.slow_since is not None and now - self.slow_since >= self.cfg.time
        if not (standing or stuck):
            return None

        def dist(n):
            return math.hypot(n.pose[0] - me.pose[0], n.pose[1] - me.pose[1])

        # a neighbour that shares no intended path has no goal: parked, it is an obstacle to
        # drive around, not a robot to agree with (yielding to it would wait for ever)
        close = [n for n in neighbours if dist(n) < self.cfg.radius and n.trajectory
                 and (stuck or abs(n.velocity[0]) <= self.cfg.speed)]
        return min(close, key=dist) if close else None

    def _no_progress(self, now: float, distance: Optional[float]) -> bool:
        if distance is None or not math.isfinite(distance):
            return False
        if self.best_distance is None or distance < self.best_distance - \
                self.cfg.progress_distance:
            self.best_distance, self.best_since = distance, now
            return False
        return now - self.best_since >= self.cfg.progress_time


@dataclass(frozen=True)
class YieldAction:
    """What the arbiter decided this cycle: "yield" (drive to `place` and wait there for
    `other`), "release" (back to the goal), or "deadlock" (blocked by `other`; the other
    robot yields, or no passing place is on our side: `place` None). `other_at` is where the
    other robot stood when it was decided (map frame), for the log."""

    kind: str
    other: str
    place: Optional[Tuple[float, float]] = None
    note: str = ""
    other_at: Optional[Tuple[float, float]] = None


class YieldArbiter:
    """The fleet's deadlock rule for one robot, from the shared entries alone.

    `decide(other_id, proposed)` returns the id of the robot that yields: the fleet
    client asks Redis (SET NX, wm_fleet.client.FleetClient.decide_yield) so that both
    robots act on one answer; without a shared referee it is `proposed` (who_yields).
    """

    def __init__(self, robot_id: str, cfg: DeadlockConfig,
                 places: Sequence[Tuple[float, float]] = ()):
        self.robot_id = robot_id
        self.cfg = cfg
        self.places = tuple(places)
        self.blocks = BlockDetector(cfg)
        self.yielding: Optional[Tuple[str, float]] = None   # (other id, since)
        self._release_since: Optional[float] = None

    def update(self, now: float, own: RobotEntry, neighbours: Sequence[RobotEntry],
               goal_active: bool, distance_to_goal: Optional[float],
               decide: Optional[Callable[[str, str], str]] = None) -> Optional[YieldAction]:
        if self.yielding is not None:
            other_id, since = self.yielding
            other = next((n for n in neighbours if n.robot_id == other_id), None)
            gone = other is None or not other.trajectory \
                or has_passed(own, other, self.cfg.release_distance)
            if not gone:
                self._release_since = None
            elif self._release_since is None:
                self._release_since = now
            held = gone and now - self._release_since >= self.cfg.release_hold
            if held or now - since > self.cfg.timeout or not goal_active:
                self.yielding = None
                self._release_since = None
                self.blocks.reset()   # progress is measured afresh from here
                return YieldAction("release", other_id,
                                   note="timeout" if not held else "passed or parked")
            return None
        other = self.blocks.update(now, own, neighbours, goal_active, distance_to_goal)
        if other is None:
            return None
        proposed = who_yields(own, other)
        decided = decide(other.robot_id, proposed) if decide is not None else proposed
        if decided != self.robot_id:
            return YieldAction("deadlock", other.robot_id, note="%s yields" % decided)
        place = passing_place(own.pose[:2], other.pose[:2], self.places)
        if place is None:
            return YieldAction("deadlock", other.robot_id,
                               note="no passing place on this side")
        self.yielding = (other.robot_id, now)
        self._release_since = None
        return YieldAction("yield", other.robot_id, place,
                           other_at=(float(other.pose[0]), float(other.pose[1])))
