"""Other robots' intended paths, as the fleet shares them, ready for the planner's fleet critic.

A neighbour publishes its predicted trajectory with a time per point on its own ROS clock (the
fleet runs chrony, see README). The node that receives it (the fleet client) rejects entries
too far in the future or past, transforms the points into the planning frame and expresses
the times relative to the state the planner plans from; this module holds the result, answers
"where will it be at t?", and turns a fleet snapshot's robots into such plans
(`neighbour_plans`, for the planner node).

Plain numpy; Python 3.8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, List, Sequence, Tuple

import numpy as np

from wm_common.geometry import Pose2D, inverse

MIN_RADIUS = 0.05   # a neighbour that shares no footprint is at least this big [m]


@dataclass(frozen=True)
class NeighbourPlan:
    """One neighbour's predicted path in the planning frame.

    times: (M,) increasing seconds relative to the planner's state time (may start < 0: the
    neighbour's prediction was made a little earlier); xy: (M, 2); radius: its footprint
    radius incl. payload [m]. Beyond the last point the neighbour is assumed to stay there
    (it intends to be there; a robot whose plan ends is stopping), before the first it is at
    the first point.
    """

    robot_id: str
    times: np.ndarray
    xy: np.ndarray
    radius: float

    def __post_init__(self) -> None:
        t = np.asarray(self.times, dtype=np.float64).reshape(-1)
        xy = np.asarray(self.xy, dtype=np.float64).reshape(-1, 2)
        if t.size == 0 or t.size != xy.shape[0]:
            raise ValueError("neighbour %s: %d times for %d points" % (self.robot_id, t.size,
                                                                       xy.shape[0]))
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(xy))):
            raise ValueError("neighbour %s: non-finite trajectory" % self.robot_id)
        if np.any(np.diff(t) <= 0.0):
            raise ValueError("neighbour %s: times must increase" % self.robot_id)
        if not (np.isfinite(self.radius) and self.radius > 0.0):
            raise ValueError("neighbour %s: radius must be positive" % self.robot_id)
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "xy", xy)

    def positions_at(self, t: np.ndarray) -> np.ndarray:
        """(len(t), 2) positions at times `t` (linear between points, held at the ends)."""
        t = np.asarray(t, dtype=np.float64)
        return np.stack([np.interp(t, self.times, self.xy[:, 0]),
                         np.interp(t, self.times, self.xy[:, 1])], axis=-1)


def to_planning_frame(robot_id: str, times_abs, xy_shared, radius: float, frame_to_plan,
                      t_state: float) -> NeighbourPlan:
    """A neighbour's shared path (absolute ROS times, points in the shared frame, e.g. map)
    as a NeighbourPlan in the planning frame: `frame_to_plan` is the Pose2D of the shared
    frame in the planning frame (odom->map inverse), times become relative to t_state."""
    xy = np.asarray(xy_shared, dtype=np.float64).reshape(-1, 2)
    c, s = np.cos(frame_to_plan.yaw), np.sin(frame_to_plan.yaw)
    px = frame_to_plan.x + c * xy[:, 0] - s * xy[:, 1]
    py = frame_to_plan.y + s * xy[:, 0] + c * xy[:, 1]
    t = np.asarray(times_abs, dtype=np.float64).reshape(-1) - t_state
    return NeighbourPlan(robot_id, t, np.stack([px, py], axis=1), radius)


def neighbour_plans(robots: Iterable[Tuple[str, Sequence[Tuple[float, float, float]],
                                           Tuple[float, float, float],
                                           Sequence[Tuple[float, float]]]],
                    map_to_odom: Pose2D, t_state: float
                    ) -> Tuple[List[NeighbourPlan], List[str]]:
    """The fleet snapshot's robots as NeighbourPlans in odom, times relative to t_state, and
    why any was left out. robots: (robot_id, its shared path [(t, x, y)] in map, where it is
    (t, x, y), its footprint's points [(x, y)]); one that shares no path stays where it is,
    its radius is its footprint's (at least MIN_RADIUS)."""
    o2m = inverse(map_to_odom)
    out, errors = [], []
    for robot_id, path, here, footprint in robots:
        pts = list(path) or [here]
        radius = max([math.hypot(x, y) for x, y in footprint] + [MIN_RADIUS])
        try:
            out.append(to_planning_frame(robot_id, [p[0] for p in pts], [p[1:] for p in pts],
                                         radius, o2m, t_state))
        except ValueError as e:
            errors.append(str(e))
    return out, errors
