"""The goal the planner node pursues, and the decisions behind its Nav2 actions.

A goal comes from navigate_to_pose or follow_path (with the action's handle) or from
goal_pose (without). This module keeps the bookkeeping the node's adapters
(wm_planner.nav2_actions, wm_planner.planner_inputs) only turn into messages:

* NavGoal: one goal, how it ended (a wm_planner.controller outcome, PREEMPTED or
  DEACTIVATED), Nav2's error code for that, and what its feedback reports;
* GoalTracker: the current goal, kept in step with the Controller (a new goal preempts the
  old one; a follow_path goal to the same end is a navigator's replan: the robot goes on);
* the frame checks of goals and paths, the target of a FollowPath path, and the error code of
  a ComputePathToPose failure.

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from wm_common.geometry import Pose2D, compose
from wm_common.nav2_codes import CODES

from . import controller as ctl

PREEMPTED, DEACTIVATED = "preempted", "deactivated"   # goal ends the node decides
NAVIGATE, FOLLOW = "navigate", "follow"   # NavigateToPose, FollowPath
FEEDBACK_PERIOD = 0.2   # an action's feedback at most this often [s]

NAV, FOLLOW_PATH, ROUTE = (CODES["NavigateToPose"], CODES["FollowPath"],
                           CODES["ComputePathToPose"])
# How a goal ended (wm_planner.controller, or the node) -> Nav2's error code, for
# navigate_to_pose and for follow_path (a navigator reports the failing part's code)
OUTCOME_CODES = {
    ctl.REACHED: (NAV["NONE"], FOLLOW_PATH["NONE"]),
    ctl.CANCELED: (NAV["NONE"], FOLLOW_PATH["NONE"]),
    ctl.TIMEOUT: (NAV["TIMEOUT"], FOLLOW_PATH["TIMEOUT"]),
    ctl.NO_WAY: (ROUTE["NO_VALID_PATH"], FOLLOW_PATH["INVALID_PATH"]),
    ctl.BLOCKED: (FOLLOW_PATH["NO_VALID_CONTROL"], FOLLOW_PATH["NO_VALID_CONTROL"]),
    ctl.NO_PROGRESS: (FOLLOW_PATH["FAILED_TO_MAKE_PROGRESS"],
                      FOLLOW_PATH["FAILED_TO_MAKE_PROGRESS"]),
    # Nav2's controller server: "costmap timed out waiting for update"
    ctl.STALE_INPUTS: (FOLLOW_PATH["CONTROLLER_TIMED_OUT"], FOLLOW_PATH["CONTROLLER_TIMED_OUT"]),
    PREEMPTED: (NAV["UNKNOWN"], FOLLOW_PATH["UNKNOWN"]),
    DEACTIVATED: (NAV["UNKNOWN"], FOLLOW_PATH["UNKNOWN"]),
}


@dataclass(frozen=True)
class Feedback:
    """What a goal's action feedback reports (the adapter fills the installed type's fields)."""

    elapsed: float                   # since the goal was accepted [s]
    distance_remaining: float        # 0 while unknown [m]
    recoveries: int
    speed: float                     # the robot's, at the last cycle [m/s]
    time_remaining: Optional[float]  # at v_max; None while unknown [s]


class NavGoal:
    """The goal being pursued: from navigate_to_pose or follow_path (with a handle) or from
    goal_pose (without). `done`, where given (an rclpy Future the action awaits), is completed
    when the goal ends."""

    def __init__(self, pose: Pose2D, frame_id: str, handle=None, action: str = NAVIGATE,
                 done=None):
        self.pose = pose
        self.frame_id = frame_id
        self.handle = handle
        self.action = action   # NAVIGATE (NavigateToPose) or FOLLOW (FollowPath)
        self.done = done
        self.finished = False
        self.outcome = ""     # a wm_planner.controller outcome, PREEMPTED or DEACTIVATED
        self.error_msg = ""
        self.distance_remaining = float("nan")
        self.current_pose: Optional[Tuple[Pose2D, str]] = None   # (pose, frame) for feedback
        self.speed = 0.0
        self.started: Optional[float] = None  # node-clock time of acceptance
        self.recoveries = 0
        self.last_feedback = -1e9

    def finish(self, outcome: str, msg: str = "") -> None:
        """End the goal (the first end counts)."""
        if not self.finished:
            self.finished = True
            self.outcome, self.error_msg = outcome, msg
            if self.done is not None:
                self.done.set_result(outcome)

    @property
    def error_code(self) -> int:
        """Nav2's code for how it ended."""
        return OUTCOME_CODES[self.outcome][0 if self.action == NAVIGATE else 1]

    def ending(self, cancel_requested: bool) -> str:
        """How the action's goal ends: 'succeed', 'canceled' or 'abort'."""
        if self.outcome == ctl.REACHED:
            return "succeed"
        if self.outcome == ctl.CANCELED and cancel_requested:
            return "canceled"
        return "abort"

    def observe(self, pose: Pose2D, v: float, map_to_odom: Optional[Pose2D], map_frame: str,
                odom_frame: str) -> None:
        """The robot's pose (odom) and speed at a cycle, for feedback: in map for a map-frame
        goal while map->odom is known, else in odom."""
        self.current_pose = ((compose(map_to_odom, pose), map_frame)
                             if map_to_odom is not None and self.frame_id == map_frame
                             else (pose, odom_frame))
        self.speed = v

    def track(self, distance_remaining: float, recoveries: int) -> None:
        """A cycle's progress (an unknown distance keeps the last one)."""
        if math.isfinite(distance_remaining):
            self.distance_remaining = distance_remaining
            self.recoveries = recoveries

    def carry_progress(self, old: "NavGoal") -> None:
        """Take over what `old` reported (a replan of the same goal)."""
        self.distance_remaining, self.recoveries = old.distance_remaining, old.recoveries
        self.current_pose, self.speed = old.current_pose, old.speed

    def feedback_due(self, now: float) -> bool:
        """Whether feedback is due at `now` (then the next is FEEDBACK_PERIOD later)."""
        if now - self.last_feedback < FEEDBACK_PERIOD:
            return False
        self.last_feedback = now
        return True

    def feedback(self, now: float, v_max: float) -> Feedback:
        d = self.distance_remaining
        known = math.isfinite(d)
        return Feedback(now - self.started, float(d) if known else 0.0, int(self.recoveries),
                        float(self.speed),
                        d / v_max if known and v_max > 0 else None)


class GoalTracker:
    """The node's current goal, kept in step with the controller's."""

    def __init__(self, controller: ctl.Controller):
        self.controller = controller
        self.current: Optional[NavGoal] = None

    def set(self, goal: NavGoal, now: float) -> None:
        """Pursue `goal` (an earlier one ends: preempted)."""
        if self.current is not None and self.current is not goal:
            self.current.finish(PREEMPTED, "preempted by a new goal")
        self.current = goal
        self.controller.set_goal(goal.pose, goal.frame_id, now)

    def follow(self, xy, frame: str, end: Pose2D, now: float, handle=None,
               done=None) -> Tuple[NavGoal, bool]:
        """A FollowPath goal: (the goal, whether it is a new one). The same end again is a
        navigator's replan: the route is replaced, the robot goes on and the goal keeps its
        start and progress (the earlier goal still ends: preempted)."""
        old = self.current
        new = self.controller.follow_path(xy, frame, end, now)
        goal = NavGoal(end, frame, handle, action=FOLLOW, done=done)
        goal.started = now if new or old is None else old.started
        if old is not None:
            if not new:
                goal.carry_progress(old)
            old.finish(PREEMPTED, "preempted by a new goal")
        self.current = goal
        return goal, new

    def of_handle(self, handle) -> Optional[NavGoal]:
        """The current goal if it is the action goal of `handle`."""
        goal = self.current
        return goal if goal is not None and goal.handle is handle else None

    def end(self, outcome: str, msg: str) -> Optional[NavGoal]:
        """End the current goal from outside the cycle (cancel, deactivate); the controller
        stops pursuing it."""
        goal = self.current
        if goal is None:
            return None
        goal.finish(outcome, msg)
        self.current = None
        self.controller.cancel()
        return goal

    def ended(self, goal: NavGoal, outcome: ctl.GoalOutcome) -> None:
        """`goal` ended in a cycle (the controller has dropped it already)."""
        goal.finish(outcome.code, outcome.message)
        if self.current is goal:
            self.current = None


def check_frame(frame_id: str, map_frame: str, odom_frame: str, what: str = "goal") -> str:
    """The frame of a goal, path or pose (empty: the map frame); ValueError unless it is the
    map or the odom frame."""
    frame = frame_id or map_frame
    if frame not in (map_frame, odom_frame):
        raise ValueError("%s frame %r is neither %r nor %r" % (what, frame, map_frame,
                                                               odom_frame))
    return frame


def to_map(frame_id: str, pose: Pose2D, map_to_odom: Optional[Pose2D], map_frame: str,
           odom_frame: str) -> Pose2D:
    """A pose given in map or odom (empty: map) as a map-frame pose; ValueError when the frame
    is neither or map->odom is unknown ('no transform ...')."""
    frame = check_frame(frame_id, map_frame, odom_frame, "pose")
    if frame == map_frame:
        return pose
    if map_to_odom is None:
        raise ValueError("no transform %s->%s" % (map_frame, frame))
    return compose(map_to_odom, pose)


def path_points(xy, frame_id: str, map_frame: str, odom_frame: str) -> Tuple[np.ndarray, str]:
    """(xy (N, 2), frame) of a FollowPath path (its frame_id, else its last pose's, else map);
    ValueError if it cannot be followed."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if xy.shape[0] == 0:
        raise ValueError("the path is empty")
    frame = check_frame(frame_id, map_frame, odom_frame, "path")
    if not np.all(np.isfinite(xy)):
        raise ValueError("the path has non-finite positions")
    return xy, frame


def has_orientation(q: Any) -> bool:
    """Whether a quaternion (x, y, z, w attributes) gives an orientation (all zeros: none)."""
    return math.isfinite(q.w) and (q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w) > 0.5


def path_end(xy: np.ndarray, oriented: Optional[Pose2D]) -> Pose2D:
    """The goal at the end of a path: its last pose where oriented, else its last point facing
    along the last leg (0 for a single point)."""
    if oriented is not None:
        return oriented
    if xy.shape[0] >= 2:
        d = xy[-1] - xy[-2]
        return Pose2D(xy[-1, 0], xy[-1, 1], math.atan2(d[1], d[0]))
    return Pose2D(xy[-1, 0], xy[-1, 1], 0.0)


def pose_error(why: str) -> str:
    """ComputePathToPose's error for a start or goal pose that could not be used."""
    return "TF_ERROR" if "no transform" in why else "UNKNOWN"


def route_error(reason: str) -> str:
    """ComputePathToPose's error for a route that failed (wm_planner.global_planner's
    reason)."""
    if "outside the map" in reason:
        return "START_OUTSIDE_MAP" if reason.startswith("start") else "GOAL_OUTSIDE_MAP"
    if "inside an obstacle" in reason:
        return "START_OCCUPIED" if reason.startswith("start") else "GOAL_OCCUPIED"
    if reason == "no map":
        return "INVALID_PLANNER"
    return "NO_VALID_PATH"


def route_poses(route: np.ndarray, goal_yaw: float) -> np.ndarray:
    """(N, 3) [x, y, yaw] of a route (N, 2): each point facing the next, the last the goal's
    heading."""
    route = np.asarray(route, dtype=np.float64)
    yaw = np.arctan2(np.diff(route[:, 1]), np.diff(route[:, 0]))
    return np.column_stack([route, np.append(yaw, goal_yaw)])
