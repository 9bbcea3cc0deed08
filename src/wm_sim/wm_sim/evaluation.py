"""Ground-truth collision checks and navigation KPIs for simulated runs.

Everything here uses TRUE poses (from the dynamics), never the robot's own estimate: the
point is to score what physically happened.

Plain numpy, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from wm_common.geometry import Pose2D
from .world import World


def clearance(world: World, pose: Pose2D, footprint_radius: float) -> float:
    """Gap (m) between a circular footprint and the nearest box; negative = penetration."""
    return float(world.signed_distance(np.array([pose.x, pose.y]))) - footprint_radius


def collision(world: World, pose: Pose2D, footprint_radius: float) -> bool:
    """True when the footprint circle at `pose` touches or overlaps any box."""
    return clearance(world, pose, footprint_radius) <= 0.0


def robot_collisions(poses: Mapping[str, Pose2D], radius: float) -> List[Tuple[str, str]]:
    """Pairs (a, b), a before b in `poses` order, whose footprint circles touch."""
    ids = list(poses)
    if len(ids) < 2:
        return []
    xy = np.array([[poses[k].x, poses[k].y] for k in ids], dtype=np.float64)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    ii, jj = np.nonzero(np.triu(d <= 2.0 * radius, k=1))
    return [(ids[i], ids[j]) for i, j in zip(ii, jj)]


class _RobotStats:
    def __init__(self):
        self.path_length = 0.0
        self.last_xy: Optional[Tuple[float, float]] = None
        self.goal: Optional[Pose2D] = None
        self.goal_t: Optional[float] = None
        self.times_to_goal: List[float] = []
        self.world_episodes = 0
        self.robot_episodes = 0
        self.in_world_contact = False
        self.in_robot_contact = False
        self.min_clearance = math.inf
        self.samples = 0


class Kpis:
    """Accumulates per-robot KPIs from a stream of true poses.

    Call set_goal() when a robot is sent a goal and update() every simulation step (or at
    any steady rate). A collision is counted once per contact EPISODE (rising edge of
    contact), not per sample, so the count does not depend on the simulation rate or on
    how long a robot stays pinned against a shelf. Robot-world and robot-robot contacts
    are tracked separately; `collisions` in the summary is their sum.
    """

    def __init__(self, world: World, footprint_radius: float = 0.35,
                 goal_tolerance: float = 0.25):
        self.world = world
        self.radius = float(footprint_radius)
        self.goal_tolerance = float(goal_tolerance)
        self._stats: Dict[str, _RobotStats] = {}
        self._pairs_in_contact: set = set()
        self.robot_pair_episodes = 0
        self.collision_points: Dict[str, List[Tuple[float, float]]] = {}
        self._t0: Optional[float] = None
        self._t_last: Optional[float] = None

    def _get(self, robot_id: str) -> _RobotStats:
        if robot_id not in self._stats:
            self._stats[robot_id] = _RobotStats()
            self.collision_points[robot_id] = []
        return self._stats[robot_id]

    def set_goal(self, robot_id: str, goal: Pose2D, t: float) -> None:
        st = self._get(robot_id)
        st.goal = goal
        st.goal_t = float(t)

    def update(self, t: float, poses: Mapping[str, Pose2D]) -> None:
        if self._t0 is None:
            self._t0 = float(t)
        self._t_last = float(t)
        ids = list(poses)
        if not ids:
            return
        xy = np.array([[poses[k].x, poses[k].y] for k in ids], dtype=np.float64)
        gaps = self.world.signed_distance(xy) - self.radius   # one vectorised call for all
        pairs = robot_collisions(poses, self.radius)
        current = {(a, b) if a < b else (b, a) for a, b in pairs}
        # A pair episode starts when the pair was not touching at the previous update.
        self.robot_pair_episodes += len(current - self._pairs_in_contact)
        self._pairs_in_contact = current
        touching = {k for p in pairs for k in p}
        for k, (x, y), gap in zip(ids, xy, gaps):
            st = self._get(k)
            st.samples += 1
            if st.last_xy is not None:
                st.path_length += math.hypot(x - st.last_xy[0], y - st.last_xy[1])
            st.last_xy = (float(x), float(y))
            st.min_clearance = min(st.min_clearance, float(gap))
            in_world = gap <= 0.0
            if in_world and not st.in_world_contact:
                st.world_episodes += 1
                self.collision_points[k].append((float(x), float(y)))
            st.in_world_contact = bool(in_world)
            in_robot = k in touching
            if in_robot and not st.in_robot_contact:
                st.robot_episodes += 1
                self.collision_points[k].append((float(x), float(y)))
            st.in_robot_contact = in_robot
            if st.goal is not None and math.hypot(x - st.goal.x, y - st.goal.y) \
                    <= self.goal_tolerance:
                st.times_to_goal.append(float(t) - float(st.goal_t))
                st.goal = None  # reached: count each goal once
                st.goal_t = None

    def summary(self) -> dict:
        """{'robots': {id: {...}}, 'totals': {...}} with plain Python numbers (JSON-safe;
        unreached / unknown values are None rather than inf)."""
        robots = {}
        for k, st in self._stats.items():
            robots[k] = {
                "path_length": st.path_length,
                "goals_reached": len(st.times_to_goal),
                "time_to_goal": st.times_to_goal[-1] if st.times_to_goal else None,
                "times_to_goal": list(st.times_to_goal),
                "goal_pending": st.goal is not None,
                "collisions": st.world_episodes + st.robot_episodes,
                "world_collisions": st.world_episodes,
                "robot_collisions": st.robot_episodes,
                "min_clearance": st.min_clearance if math.isfinite(st.min_clearance) else None,
                "samples": st.samples,
            }
        clear = [r["min_clearance"] for r in robots.values() if r["min_clearance"] is not None]
        totals = {
            "robots": len(robots),
            "path_length": sum(r["path_length"] for r in robots.values()),
            "goals_reached": sum(r["goals_reached"] for r in robots.values()),
            "world_collisions": sum(r["world_collisions"] for r in robots.values()),
            "robot_pair_collisions": self.robot_pair_episodes,
            "min_clearance": min(clear) if clear else None,
            "duration": (self._t_last - self._t0) if self._t0 is not None else 0.0,
        }
        return {"robots": robots, "totals": totals}

