"""The route the MPC follows: the global planner's, or an external one.

Per control cycle the controller calls `update()` with the robot and goal in the map frame,
the live distance field (odom) and map->odom; it gets back the route in the odom frame (or
None, with the reason).

* Global planner (wm_planner.global_planner, Dijkstra on the map_server map with the live
  obstacle layer merged in): replans at `replan_period`, when the goal moves, or when the
  live layer blocks the current route (wm_planner.global_planner.ReplanPolicy).
* Without a static map (a LiDAR-only robot, or before map_server's map arrives) and with
  `without_map`, the same planner runs on a blank map around the robot and the goal, on the
  live layer alone: the robot still gets a route round what it has seen, and a gap narrower
  than its body still gets "no way". The blank region is rebuilt when a goal leaves it.
* Hysteresis: a periodic replan replaces a route that is still free only when the new one
  is at least `switch_margin` metres (in the planner's own metric) cheaper. Two ways round
  an obstacle of nearly equal length must not make the route flip side every second as the
  robot moves (the MPC would follow each flip). A blocked route, a new goal or a failed one
  are always replaced.
* An external path (e.g. Nav2's planner server on `plan`) replaces it while it is fresher than
  `external_timeout` seconds; it may be in the map or the odom frame. A held external path
  (the FollowPath action's) stays until the goal ends (`new_goal`, `release_external`).
* `plan_once` answers a planner-server request (ComputePathToPose) on the same map and live
  layer without touching the robot's route.

`failed_since` / `last_failure` say how long the planner has found no route and why: the
controller aborts a goal with "no way" when clearing the obstacle memory does not help.

Plain Python (no rclpy).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

from wm_common.geometry import Pose2D, inverse, transform_points
from wm_common.map_io import OccupancyMap

from wm_common.geometry import densify

from .global_planner import GlobalPlanner, ReplanPolicy, RoutePlan

# A blank map (no static map) covers the robot and the goal with this much around them [m].
BLANK_MARGIN = 6.0


class RouteManager:
    def __init__(self, robot_radius: float, *, replan_period: float = 1.0,
                 external_timeout: float = 2.0, planning_resolution: float = 0.1,
                 inflation: float = 0.8, map_frame: str = "map", odom_frame: str = "odom",
                 switch_margin: float = 1.0, without_map: bool = True):
        self.robot_radius = float(robot_radius)
        self.planning_resolution = float(planning_resolution)
        self.inflation = float(inflation)
        self.external_timeout = float(external_timeout)
        self.switch_margin = float(switch_margin)
        self.without_map = bool(without_map)
        self.map_frame, self.odom_frame = map_frame, odom_frame
        self.planner: Optional[GlobalPlanner] = None
        self.blank = False            # the planner runs on a blank map (no static map)
        self.policy = ReplanPolicy(replan_period)
        self.route_map: Optional[np.ndarray] = None     # (N, 2) map frame, global planner
        self.last_plan: Optional[RoutePlan] = None
        self.external: Optional[Tuple[float, str, np.ndarray]] = None   # (t, frame, (N, 2))
        self.external_held = False    # no timeout: FollowPath's path, until the goal ends
        self.failed_since: Optional[float] = None
        self.last_failure = ""

    # -- inputs ---------------------------------------------------------------------------

    def set_map(self, static_map: OccupancyMap) -> None:
        """A new static map (file at configure, or a map topic): rebuild the planner."""
        self.planner = GlobalPlanner(static_map, self.robot_radius,
                                     planning_resolution=self.planning_resolution,
                                     inflation=self.inflation)
        self.blank = False
        self.route_map = None
        self.policy.reset()

    @property
    def has_map(self) -> bool:
        return self.planner is not None and not self.blank

    def set_external(self, t: float, frame: str, xy: np.ndarray, hold: bool = False) -> None:
        """An external route (N, 2) in `frame`; `hold`: kept without a timeout until the goal
        ends (FollowPath), else only while fresher than external_timeout (a `plan` topic)."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if xy.shape[0] < 1 or not np.all(np.isfinite(xy)):
            raise ValueError("an external path needs at least one finite pose")
        if frame not in (self.map_frame, self.odom_frame):
            raise ValueError("external path in %r, expected %r or %r"
                             % (frame, self.map_frame, self.odom_frame))
        self.external = (float(t), frame, xy)
        self.external_held = bool(hold)

    def release_external(self) -> None:
        """Drop a held external path (its goal ended)."""
        if self.external_held:
            self.external, self.external_held = None, False

    def new_goal(self) -> None:
        self.release_external()
        self.route_map = None
        self.policy.reset()
        self.failed_since = None
        self.last_failure = ""
        if self.planner is not None:
            self.planner.clear_forbidden()

    def avoid_narrowest(self, robot_map: Sequence[float], within: float = 1.5,
                        narrow: float = 0.15, radius: float = 0.3
                        ) -> Optional[Tuple[float, float]]:
        """The reroute recovery: the narrowest point of the route within `within` metres
        ahead of the robot, if its clearance is less than robot_radius + `narrow` (a
        squeeze), is declared impassable for this goal (a disc of `radius`) and the route
        is replanned at the next update. Returns that point, or None when the way ahead
        has no squeeze, or when the squeeze is the only way (then nothing is forbidden)."""
        if self.planner is None or self.route_map is None:
            return None
        pts = densify(self.route_map, 0.5 * self.planning_resolution)
        k = int(np.argmin(np.hypot(pts[:, 0] - robot_map[0], pts[:, 1] - robot_map[1])))
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts[k:], axis=0).T))])
        ahead = pts[k:][arc <= within]
        if ahead.shape[0] == 0:
            return None
        clear = self.planner.clearance(ahead)
        i = int(np.argmin(clear))
        if clear[i] >= self.robot_radius + narrow:
            return None
        point = (float(ahead[i, 0]), float(ahead[i, 1]))
        goal = self.route_map[-1]
        before = self.planner.forbidden_mask()
        self.planner.forbid(point, radius)
        if not self.planner.plan(robot_map, goal).ok:
            # the squeeze is the only way: keep trying it (the other recoveries, then the
            # progress checker decide), never turn it into "no way"
            self.planner.restore_forbidden(before)
            return None
        self.route_map = None
        self.policy.reset()
        return point

    def clear_memory(self) -> None:
        """Forget every obstacle the live layer remembers and replan at the next update (the
        clear-and-replan recovery)."""
        if self.planner is not None:
            self.planner.clear_live()
        self.route_map = None
        self.policy.reset()

    def plan_once(self, start_map: Sequence[float], goal_map: Sequence[float]) -> RoutePlan:
        """A route from start to goal (map frame) for a planner-server request, on the map and
        live layer the robot's own route uses; the robot's route is left as it is. Without a
        static map (and with `without_map`) it plans on a blank map around both, with no
        live layer."""
        planner = self.planner if self.has_map else None
        if planner is None:
            if not self.without_map:
                return RoutePlan(np.zeros((0, 2)), "no map")
            planner = self._blank_around(start_map, goal_map)
        return planner.plan(start_map, goal_map)

    def _blank_around(self, robot_map, goal_map) -> GlobalPlanner:
        """A planner on a blank map covering robot and goal with BLANK_MARGIN around them."""
        lo = np.minimum(robot_map, goal_map)
        hi = np.maximum(robot_map, goal_map)
        res = self.planning_resolution
        x0 = math.floor((lo[0] - BLANK_MARGIN) / res) * res
        y0 = math.floor((lo[1] - BLANK_MARGIN) / res) * res
        w = int(math.ceil((hi[0] + BLANK_MARGIN - x0) / res))
        h = int(math.ceil((hi[1] + BLANK_MARGIN - y0) / res))
        blank = OccupancyMap(np.zeros((h, w), dtype=np.int8), res, x0, y0, self.map_frame)
        return GlobalPlanner(blank, self.robot_radius, planning_resolution=res,
                             inflation=self.inflation)

    def _blank_planner(self, robot_map, goal_map) -> None:
        """A blank map around robot and goal unless the current one covers both."""
        lo = np.minimum(robot_map, goal_map)
        hi = np.maximum(robot_map, goal_map)
        if self.planner is not None and self.blank:
            m = self.planner.map
            x0, y0 = m.origin_x, m.origin_y
            x1, y1 = x0 + m.width * m.resolution, y0 + m.height * m.resolution
            inner = 0.5 * BLANK_MARGIN
            if lo[0] - inner >= x0 and lo[1] - inner >= y0 and hi[0] + inner <= x1 \
                    and hi[1] + inner <= y1:
                return
        self.planner = self._blank_around(robot_map, goal_map)
        self.blank = True
        self.route_map = None
        self.policy.reset()

    # -- per cycle --------------------------------------------------------------------------

    def update(self, now: float, robot_odom: Pose2D, goal_map_xy: Optional[Tuple[float, float]],
               esdf, map_to_odom: Optional[Pose2D]) -> Tuple[Optional[np.ndarray], str]:
        """(route in odom or None, what happened: 'external', 'planned: <reason>', 'kept',
        'kept: <why>', 'failed: <reason>', or why there is no route)."""
        if self.external is not None and (self.external_held or
                                          now - self.external[0] <= self.external_timeout):
            _, frame, xy = self.external
            if frame == self.odom_frame:
                return xy, "external"
            if map_to_odom is None:
                return None, "external path in map but no map->odom"
            return transform_points(inverse(map_to_odom), xy), "external"
        if map_to_odom is None or goal_map_xy is None:
            return None, "no map->odom"
        robot_map = transform_points(map_to_odom, np.array([[robot_odom.x, robot_odom.y]]))[0]
        if self.planner is None or self.blank:
            if not self.without_map:
                return None, "no map"
            self._blank_planner(robot_map, np.asarray(goal_map_xy, dtype=np.float64))
        if esdf is not None:
            self.planner.update_live(esdf, map_to_odom)
        blocked = self.route_map is not None and self.planner.is_blocked(
            self.route_map, from_xy=robot_map)
        reason = self.policy.due(now, goal_map_xy, blocked=blocked)
        what = "kept"
        if reason is not None:
            plan = self.planner.plan(robot_map, goal_map_xy)
            self.policy.planned(now, goal_map_xy)
            self.last_plan = plan
            if plan.ok:
                self.failed_since = None
                self.last_failure = ""
                keep = False
                # hysteresis between ways to the same end only: a route that ended short of
                # the goal (snapped out of an obstacle that stood on it, a robot since gone)
                # gives way to one that reaches it
                if reason == "period" and self.route_map is not None \
                        and self.switch_margin > 0.0 \
                        and float(np.hypot(*(self.route_map[-1] - plan.route[-1]))) \
                        <= self.planning_resolution:
                    old = self.planner.path_cost(self.route_map, from_xy=robot_map)
                    new = self.planner.path_cost(plan.route)
                    keep = not (new < old - self.switch_margin)
                if keep:
                    what = "kept: no route %.1f m shorter" % self.switch_margin
                else:
                    self.route_map = plan.route
                    what = "planned: " + reason
            else:
                self.route_map = None
                if self.failed_since is None:
                    self.failed_since = float(now)
                self.last_failure = plan.reason
                what = "failed: " + plan.reason
        if self.route_map is None:
            return None, what
        return transform_points(inverse(map_to_odom), self.route_map), what
