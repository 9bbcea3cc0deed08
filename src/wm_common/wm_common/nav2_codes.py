"""Nav2's error codes (nav2_msgs, Jazzy and later), by action, as plain data.

The numbers are part of the interface; they are spelled out here because Humble's nav2_msgs
does not define them. Plain Python (no ROS): plain modules decide which code a goal ends with,
wm_common.ros.nav2 (the action types, `set_error`) re-exports them for the nodes.
"""
from __future__ import annotations

CODES = {
    "NavigateToPose": {"NONE": 0, "GOAL_REJECTED": 1, "UNKNOWN": 9000,
                       "FAILED_TO_LOAD_BEHAVIOR_TREE": 9001, "TF_ERROR": 9002,
                       "TIMEOUT": 9003},
    "FollowPath": {"NONE": 0, "GOAL_REJECTED": 1, "UNKNOWN": 100, "INVALID_CONTROLLER": 101,
                   "TF_ERROR": 102, "INVALID_PATH": 103, "PATIENCE_EXCEEDED": 104,
                   "FAILED_TO_MAKE_PROGRESS": 105, "NO_VALID_CONTROL": 106,
                   "CONTROLLER_TIMED_OUT": 107, "TIMEOUT": 108},
    "ComputePathToPose": {"NONE": 0, "GOAL_REJECTED": 1, "UNKNOWN": 200,
                          "INVALID_PLANNER": 201, "TF_ERROR": 202, "START_OUTSIDE_MAP": 203,
                          "GOAL_OUTSIDE_MAP": 204, "START_OCCUPIED": 205,
                          "GOAL_OCCUPIED": 206, "TIMEOUT": 207, "NO_VALID_PATH": 208},
}
