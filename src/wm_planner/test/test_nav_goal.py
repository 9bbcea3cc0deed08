"""The planner node's goal bookkeeping (wm_planner.nav_goal): Nav2's error code for every way
a goal ends, how an action ends, feedback, preemption and a navigator's replan, and the checks
behind follow_path and compute_path_to_pose. Plain Python."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_common.nav2_codes import CODES
from wm_planner import controller as ctl
from wm_planner.configure import planner_params
from wm_planner.controller import Controller, GoalOutcome
from wm_planner.nav_goal import (DEACTIVATED, FOLLOW, NAVIGATE, OUTCOME_CODES, PREEMPTED,
                                 GoalTracker, NavGoal, check_frame, has_orientation,
                                 path_end, path_points, pose_error, route_error, route_poses,
                                 to_map)


class Done:
    """A stand-in for the rclpy Future an action awaits."""

    def __init__(self):
        self.results = []

    def set_result(self, value):
        self.results.append(value)


def controller(**overrides):
    return Controller(planner_params(dict({"world_model_artifact": ""}, **overrides)))


def test_every_outcome_has_nav2s_codes_and_the_first_end_counts():
    for outcome in (ctl.REACHED, ctl.CANCELED, ctl.TIMEOUT, ctl.NO_WAY, ctl.BLOCKED,
                    ctl.NO_PROGRESS, ctl.STALE_INPUTS, PREEMPTED, DEACTIVATED):
        assert outcome in OUTCOME_CODES
    done = Done()
    nav = NavGoal(Pose2D(1.0, 2.0, 0.0), "map", handle=object(), done=done)
    nav.finish(ctl.NO_WAY, "no way")
    nav.finish(ctl.REACHED)          # too late: it ended already
    assert done.results == [ctl.NO_WAY] and nav.error_msg == "no way"
    # a navigator reports the failing part's code: the route's
    assert nav.error_code == CODES["ComputePathToPose"]["NO_VALID_PATH"]
    follow = NavGoal(Pose2D(1.0, 2.0, 0.0), "map", action=FOLLOW)
    follow.finish(ctl.NO_PROGRESS)
    assert follow.error_code == CODES["FollowPath"]["FAILED_TO_MAKE_PROGRESS"]
    stale = NavGoal(Pose2D(0.0, 0.0, 0.0), "odom")   # no future: goal_pose
    stale.finish(ctl.STALE_INPUTS)
    assert stale.error_code == CODES["FollowPath"]["CONTROLLER_TIMED_OUT"]


@pytest.mark.parametrize("outcome,cancel_requested,ending", [
    (ctl.REACHED, False, "succeed"), (ctl.REACHED, True, "succeed"),
    (ctl.CANCELED, True, "canceled"), (ctl.CANCELED, False, "abort"),
    (ctl.TIMEOUT, True, "abort"), (PREEMPTED, False, "abort")])
def test_how_the_action_ends(outcome, cancel_requested, ending):
    goal = NavGoal(Pose2D(0.0, 0.0, 0.0), "map")
    goal.finish(outcome)
    assert goal.ending(cancel_requested) == ending


def test_feedback_pose_progress_and_period():
    goal = NavGoal(Pose2D(3.0, 0.0, 0.0), "map", action=NAVIGATE)
    goal.started = 10.0
    fb = goal.feedback(12.5, 0.5)
    assert (fb.elapsed, fb.distance_remaining, fb.recoveries, fb.time_remaining) == \
        (2.5, 0.0, 0, None)                        # distance not known yet
    m2o = Pose2D(1.0, 0.0, 0.0)
    goal.observe(Pose2D(0.5, 0.0, 0.0), 0.3, m2o, "map", "odom")
    assert goal.current_pose == (Pose2D(1.5, 0.0, 0.0), "map") and goal.speed == 0.3
    goal.observe(Pose2D(0.5, 0.0, 0.0), 0.3, None, "map", "odom")   # map->odom unknown
    assert goal.current_pose == (Pose2D(0.5, 0.0, 0.0), "odom")
    goal.track(2.0, 1)
    goal.track(math.nan, 5)                       # unknown: the last one stays
    fb = goal.feedback(13.0, 0.5)
    assert (fb.distance_remaining, fb.recoveries, fb.time_remaining) == (2.0, 1, 4.0)
    assert goal.feedback(13.0, 0.0).time_remaining is None
    assert goal.feedback_due(20.0) and not goal.feedback_due(20.1)
    assert goal.feedback_due(20.25)


def test_a_new_goal_preempts_and_a_replan_to_the_same_end_goes_on():
    goals = GoalTracker(controller())
    first = NavGoal(Pose2D(2.0, 0.0, 0.0), "map", handle="a", done=Done())
    goals.set(first, 1.0)
    assert goals.controller.goal.pose == first.pose and goals.of_handle("a") is first
    path = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    follow, new = goals.follow(path, "map", Pose2D(3.0, 0.0, 0.0), 2.0, handle="b")
    assert new and follow.started == 2.0 and follow.action == FOLLOW
    assert first.outcome == PREEMPTED and first.done.results == [PREEMPTED]
    assert goals.of_handle("a") is None and goals.of_handle("b") is follow
    follow.track(2.5, 1)
    follow.observe(Pose2D(0.5, 0.0, 0.0), 0.4, None, "map", "odom")
    # a navigator sends the same end again a second later: the goal goes on
    again, new = goals.follow(path, "map", Pose2D(3.0, 0.0, 0.0), 3.0, handle="c")
    assert not new and again.started == 2.0 and follow.outcome == PREEMPTED
    assert (again.distance_remaining, again.recoveries, again.speed) == (2.5, 1, 0.4)
    assert again.current_pose == follow.current_pose
    # a cycle ends it
    goals.ended(again, GoalOutcome(ctl.REACHED))
    assert goals.current is None and again.outcome == ctl.REACHED
    # cancel / deactivate end it from outside, and the controller lets go
    goals.set(NavGoal(Pose2D(1.0, 0.0, 0.0), "odom"), 4.0)
    ended = goals.end(ctl.CANCELED, "canceled")
    assert ended.outcome == ctl.CANCELED and goals.current is None
    assert goals.controller.goal is None
    assert goals.end(DEACTIVATED, "planner deactivated") is None


def test_frames_and_poses_in_map():
    assert check_frame("", "map", "odom") == "map"
    assert check_frame("odom", "map", "odom") == "odom"
    with pytest.raises(ValueError, match="goal frame 'base_link' is neither 'map' nor 'odom'"):
        check_frame("base_link", "map", "odom")
    pose = Pose2D(1.0, 0.0, 0.0)
    assert to_map("map", pose, None, "map", "odom") == pose
    assert to_map("odom", pose, Pose2D(0.0, 2.0, 0.0), "map", "odom") == Pose2D(1.0, 2.0, 0.0)
    with pytest.raises(ValueError) as e:
        to_map("odom", pose, None, "map", "odom")
    assert pose_error(str(e.value)) == "TF_ERROR"
    with pytest.raises(ValueError, match="pose frame") as e:
        to_map("base_link", pose, None, "map", "odom")
    assert pose_error(str(e.value)) == "UNKNOWN"


def test_the_target_of_a_path():
    with pytest.raises(ValueError, match="the path is empty"):
        path_points([], "map", "map", "odom")
    with pytest.raises(ValueError, match="path frame"):
        path_points([[0.0, 0.0]], "base_link", "map", "odom")
    with pytest.raises(ValueError, match="non-finite"):
        path_points([[0.0, math.nan]], "", "map", "odom")
    xy, frame = path_points([[0.0, 0.0], [1.0, 1.0]], "", "map", "odom")
    assert frame == "map" and xy.shape == (2, 2)
    # no orientation given: facing along the last leg; one point: yaw 0
    assert path_end(xy, None) == Pose2D(1.0, 1.0, math.pi / 4)
    assert path_end(xy[:1], None) == Pose2D(0.0, 0.0, 0.0)
    assert path_end(xy, Pose2D(1.0, 1.0, 2.0)) == Pose2D(1.0, 1.0, 2.0)
    q = SimpleNamespace
    assert has_orientation(q(x=0.0, y=0.0, z=0.0, w=1.0))
    assert not has_orientation(q(x=0.0, y=0.0, z=0.0, w=0.0))
    assert not has_orientation(q(x=0.0, y=0.0, z=0.0, w=math.nan))


def test_compute_path_failures_and_the_path():
    assert route_error("start (1.00, 2.00) is outside the map") == "START_OUTSIDE_MAP"
    assert route_error("goal (9.00, 2.00) is outside the map") == "GOAL_OUTSIDE_MAP"
    assert route_error("start is inside an obstacle") == "START_OCCUPIED"
    assert route_error("goal is inside an obstacle") == "GOAL_OCCUPIED"
    assert route_error("no map") == "INVALID_PLANNER"
    assert route_error("no way through") == "NO_VALID_PATH"
    poses = route_poses(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]), 3.0)
    assert poses.shape == (3, 3)
    assert poses[:, 2] == pytest.approx([0.0, math.pi / 2, 3.0])
