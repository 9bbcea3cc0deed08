"""Goal checker: is the robot at the goal pose within the goal's tolerances?"""
from __future__ import annotations

import math

from wm_common.geometry import wrap_angle

from wm_world_model.state import RobotState
from .models import Goal


def goal_reached(state: RobotState, goal: Goal) -> bool:
    """True when position and heading are both within the goal's tolerances.

    Velocity is deliberately not checked: the node stops the base once this is true, and
    requiring v == 0 first would make the robot creep around the goal.
    """
    if math.hypot(state.x - goal.x, state.y - goal.y) > goal.xy_tolerance:
        return False
    return abs(float(wrap_angle(state.yaw - goal.yaw))) <= goal.yaw_tolerance
