"""The route the MPC's path_follow critic follows: the global planner's, or an external one.

Per control cycle the node calls `update()` with the robot and goal in the map frame, the live
distance field (odom) and map->odom; it gets back the route in the odom frame for the critics
(or None: no map, no localization, no route: the planner then relies on its geodesic
cost-to-go, which covers the perception window only).

* Global planner (wm_planner.global_planner, A* / Dijkstra on the map_server map with the live
  obstacle layer merged in): replans at `replan_period`, when the goal moves, or when the
  live layer blocks the current route (wm_planner.global_planner.ReplanPolicy).
* An external path (e.g. Nav2's planner server on `plan`) replaces it while it is fresher than
  `external_timeout` seconds; it may be in the map or the odom frame.

Plain Python (no rclpy).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from wm_common.geometry import Pose2D, inverse, transform_points

from .global_planner import GlobalPlanner, ReplanPolicy, RoutePlan
from wm_common.map_io import OccupancyMap


class RouteManager:
    def __init__(self, robot_radius: float, *, replan_period: float = 1.0,
                 external_timeout: float = 2.0, planning_resolution: float = 0.1,
                 inflation: float = 0.8, map_frame: str = "map", odom_frame: str = "odom"):
        self.robot_radius = float(robot_radius)
        self.planning_resolution = float(planning_resolution)
        self.inflation = float(inflation)
        self.external_timeout = float(external_timeout)
        self.map_frame, self.odom_frame = map_frame, odom_frame
        self.planner: Optional[GlobalPlanner] = None
        self.policy = ReplanPolicy(replan_period)
        self.route_map: Optional[np.ndarray] = None     # (N, 2) map frame, global planner
        self.last_plan: Optional[RoutePlan] = None
        self.external: Optional[Tuple[float, str, np.ndarray]] = None   # (t, frame, (N, 2))

    # -- inputs ---------------------------------------------------------------------------

    def set_map(self, static_map: OccupancyMap) -> None:
        """A new static map (file at configure, or a map topic): rebuild the planner."""
        self.planner = GlobalPlanner(static_map, self.robot_radius,
                                     planning_resolution=self.planning_resolution,
                                     inflation=self.inflation)
        self.route_map = None
        self.policy.reset()

    def set_external(self, t: float, frame: str, xy: np.ndarray) -> None:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if xy.shape[0] < 1 or not np.all(np.isfinite(xy)):
            raise ValueError("an external path needs at least one finite pose")
        if frame not in (self.map_frame, self.odom_frame):
            raise ValueError("external path in %r, expected %r or %r"
                             % (frame, self.map_frame, self.odom_frame))
        self.external = (float(t), frame, xy)

    def new_goal(self) -> None:
        self.route_map = None
        self.policy.reset()

    # -- per cycle --------------------------------------------------------------------------

    def update(self, now: float, robot_odom: Pose2D, goal_map_xy: Optional[Tuple[float, float]],
               esdf, map_to_odom: Optional[Pose2D]) -> Tuple[Optional[np.ndarray], str]:
        """(route in odom or None, what happened: 'external', 'planned: <reason>', 'kept',
        'failed: <reason>', or why there is no route)."""
        if self.external is not None and now - self.external[0] <= self.external_timeout:
            _, frame, xy = self.external
            if frame == self.odom_frame:
                return xy, "external"
            if map_to_odom is None:
                return None, "external path in map but no map->odom"
            return transform_points(inverse(map_to_odom), xy), "external"
        if self.planner is None:
            return None, "no map"
        if map_to_odom is None or goal_map_xy is None:
            return None, "no map->odom"
        if esdf is not None:
            self.planner.update_live(esdf, map_to_odom)
        robot_map = transform_points(map_to_odom, np.array([[robot_odom.x, robot_odom.y]]))[0]
        blocked = self.route_map is not None and self.planner.is_blocked(
            self.route_map, from_xy=robot_map)
        reason = self.policy.due(now, goal_map_xy, blocked=blocked)
        what = "kept"
        if reason is not None:
            plan = self.planner.plan(robot_map, goal_map_xy)
            self.policy.planned(now, goal_map_xy)
            self.last_plan = plan
            if plan.ok:
                self.route_map = plan.route
                what = "planned: " + reason
            else:
                self.route_map = None
                what = "failed: " + plan.reason
        if self.route_map is None:
            return None, what
        return transform_points(inverse(map_to_odom), self.route_map), what
