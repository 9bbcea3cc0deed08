import math

from wm_planner.goal_checker import goal_reached
from wm_planner.models import Goal
from wm_world_model.state import RobotState


def test_goal_reached_tolerances():
    g = Goal(1.0, 2.0, math.pi - 0.1, xy_tolerance=0.25, yaw_tolerance=0.5)
    assert goal_reached(RobotState(1.1, 2.1, math.pi - 0.1), g)
    assert goal_reached(RobotState(1.0, 2.0, -math.pi + 0.2), g)       # wraps across +-pi
    assert not goal_reached(RobotState(1.3, 2.0, math.pi - 0.1), g)    # too far
    assert not goal_reached(RobotState(1.0, 2.0, 2.0), g)              # wrong heading
    free_yaw = Goal(0.0, 0.0, 0.0, yaw_tolerance=3.2)
    assert goal_reached(RobotState(0.0, 0.1, math.pi), free_yaw)
