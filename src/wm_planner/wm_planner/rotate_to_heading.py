"""Turn on the spot towards the route before the MPC drives (the idea of Nav2's rotation shim).

Why: the MPC's samples are 1 s long and its critics reward progress along the route. When the
route leaves *behind* a robot standing at a lane end (a fleet yield, a goal behind it, a route
that flipped after a replan), every 1 s sample either drives away from the route or into the
shelf beside it, so the best sample is to stand still: a local minimum (reproduced in
config/scenarios/fleet/one_lane.yaml, where a yielding robot stood at the lane end for 40 s).
A turn on the spot is the manoeuvre the samples miss, and it is safe wherever the circle the
footprint sweeps while turning is clear in the distance field.

Plain Python (no rclpy). The node calls `command()` once per control cycle before the MPC;
a command means "turn, skip the MPC this cycle", None means "let the MPC drive".
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from wm_common.footprint import Footprint
from wm_common.grid import Grid2D

from .clearance import point_clearance, turn_clearance
from .navigation_function import descent_point, unreachable_level


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def lookahead_point(route: np.ndarray, x: float, y: float,
                    lookahead: float) -> Tuple[float, float]:
    """The route point `lookahead` metres (along the route) beyond the one nearest (x, y)."""
    route = np.asarray(route, dtype=np.float64).reshape(-1, 2)
    i = int(np.argmin(np.hypot(route[:, 0] - x, route[:, 1] - y)))
    travelled = 0.0
    for j in range(i + 1, len(route)):
        travelled += float(np.hypot(*(route[j] - route[j - 1])))
        if travelled >= lookahead:
            return float(route[j, 0]), float(route[j, 1])
    return float(route[-1, 0]), float(route[-1, 1])


class RotateToHeading:
    """Hysteresis: starts turning when the route's direction is more than `enter_angle` off
    the robot's heading while the robot (nearly) stands, stops within `exit_angle`, and never
    turns where the swept circle plus `margin` is not clear, unless the footprint polygon
    itself (`footprint`, when given) keeps `polygon_margin` over the whole turn, the short
    way or else the long way round (a rectangle wedged by a shelf corner often turns where
    its corners' circle is not clear). Where neither is clear (a robot that backed into a
    shelf corner), it first creeps straight, forward or back, whichever gains clearance,
    until the turn is clear; with no such way the MPC keeps control.
    """

    def __init__(self, swept_radius: float, *, enter_angle: float = 1.2,
                 exit_angle: float = 0.3, angular_speed: float = 0.6,
                 lookahead: float = 0.8, margin: float = 0.0, standing_speed: float = 0.1,
                 min_route_distance: float = 0.4, creep_speed: float = 0.08,
                 creep_probe: float = 0.15, final_approach: float = 1.0,
                 footprint: Optional[Footprint] = None, polygon_margin: float = 0.05):
        if not 0.0 < exit_angle < enter_angle <= math.pi:
            raise ValueError("rotate angles need 0 < exit_angle < enter_angle <= pi")
        self.swept_radius = float(swept_radius)
        self.enter_angle, self.exit_angle = float(enter_angle), float(exit_angle)
        self.angular_speed = float(angular_speed)
        self.lookahead, self.margin = float(lookahead), float(margin)
        self.standing_speed = float(standing_speed)
        self.min_route_distance = float(min_route_distance)
        self.creep_speed, self.creep_probe = float(creep_speed), float(creep_probe)
        self.final_approach = float(final_approach)
        self.footprint = footprint
        self.polygon_margin = float(polygon_margin)
        self.active = False
        self.turn_sign = 0.0   # the side a turn in progress goes round (+1 left, -1 right)
        self.blocked = False   # wanted to turn, but the swept circle was not clear
        self.creeping = False  # ... and is creeping straight to where it is

    def way_point(self, x: float, y: float, route: Optional[np.ndarray],
                  ctg: Optional[Grid2D] = None) -> Optional[Tuple[float, float]]:
        """Where the way to the goal goes from (x, y), `lookahead` metres on: down the MPC's
        own cost-to-go (`ctg`, seeded along the route: wm_planner.navigation_function), so
        the turn and the MPC cannot pull towards different sides of an obstacle; the
        route's lookahead point where the cost-to-go has no way from the robot's cell (too
        close to a shelf) or there is none."""
        if ctg is not None:
            p = descent_point(ctg, x, y, self.lookahead, unreachable_level(ctg))
            if p is not None:
                return p
        if route is not None and len(route) >= 2:
            return lookahead_point(route, x, y, self.lookahead)
        return None

    def heading_error(self, x: float, y: float, yaw: float, route: Optional[np.ndarray],
                      goal: Optional[Tuple[float, float]] = None,
                      goal_tolerance: float = 0.0,
                      ctg: Optional[Grid2D] = None) -> Optional[float]:
        """Signed angle from the heading to the way's lookahead point (`way_point`), or in
        the final approach (the way's end within reach) to the goal itself when it lies to
        the side (None: nothing to turn to; a goal ahead or behind is the MPC's own
        approach)."""
        p = self.way_point(x, y, route, ctg)
        if p is not None:
            px, py = p
            if math.hypot(px - x, py - y) >= self.min_route_distance:
                return wrap_angle(math.atan2(py - y, px - x) - yaw)
        if goal is None:
            return None
        # A goal 10 cm to the side of where the robot arrived: no 1 s sample turns and creeps
        # that, so the robot hovered beside its goal until the timeout (one_lane scenario).
        d = math.hypot(goal[0] - x, goal[1] - y)
        if not goal_tolerance < d < self.final_approach:
            return None
        err = wrap_angle(math.atan2(goal[1] - y, goal[0] - x) - yaw)
        return err if abs(err) <= math.pi - self.enter_angle else None

    def clear(self, x: float, y: float, field: Grid2D) -> bool:
        return point_clearance(field, x, y) >= self.swept_radius + self.margin

    def polygon_turn(self, x: float, y: float, yaw: float, err: float,
                     field: Grid2D) -> Optional[float]:
        """The direction (+1 / -1) of a whole turn to `err` in which the footprint polygon
        keeps polygon_margin: the short way, else the long way round (a rectangle wedged by
        a shelf corner on one side); once turning, the side it chose. None without a
        footprint or when neither way is clear."""
        if self.footprint is None:
            return None
        ways = [err, err - math.copysign(2.0 * math.pi, err)]
        if self.turn_sign:
            ways = [a for a in ways if a * self.turn_sign > 0.0]
        for a in ways:
            if turn_clearance(field, self.footprint, x, y, yaw, a) >= self.polygon_margin:
                return math.copysign(1.0, a)
        return None

    def creep(self, x: float, y: float, yaw: float, field: Grid2D) -> Optional[float]:
        """The straight speed (forward or back) that gains clearance, None when neither does."""
        here = point_clearance(field, x, y)
        best = None
        for sign in (1.0, -1.0):
            d = point_clearance(field, x + sign * self.creep_probe * math.cos(yaw),
                           y + sign * self.creep_probe * math.sin(yaw))
            if d > here + 0.02 and (best is None or d > best[0]):
                best = (d, sign)
        return None if best is None else best[1] * self.creep_speed

    def command(self, x: float, y: float, yaw: float, v: float,
                route: Optional[np.ndarray], field: Grid2D,
                goal: Optional[Tuple[float, float]] = None,
                goal_tolerance: float = 0.0,
                ctg: Optional[Grid2D] = None) -> Optional[Tuple[float, float]]:
        """(0, w) while turning towards the way (or, in the final approach, a goal to the
        side); None when the MPC should plan."""
        self.blocked = self.creeping = False
        err = self.heading_error(x, y, yaw, route, goal, goal_tolerance, ctg)
        if err is None:
            self.active = False
            return None
        if not self.active and (abs(err) < self.enter_angle or abs(v) > self.standing_speed):
            return None
        if self.active and abs(err) <= self.exit_angle:
            self.active = False
            return None
        if not self.active:
            self.turn_sign = 0.0
        self.active = True
        clear = self.clear(x, y, field)
        sign = math.copysign(1.0, err) if clear and not self.turn_sign \
            else self.polygon_turn(x, y, yaw, err, field)
        if sign is None and clear:
            sign = math.copysign(1.0, err)
        if sign is not None:
            self.turn_sign = sign
            return 0.0, sign * self.angular_speed
        self.blocked = True
        v_creep = self.creep(x, y, yaw, field)
        if v_creep is None:
            self.active = False
            return None
        self.creeping = True
        return v_creep, 0.0

