"""The robot's state and limits: what every motion model starts from and must respect.

RobotState is the pose (odom frame) and the measured body velocities; RobotLimits the base's
velocity and acceleration limits. The planner, the monitor, the service and the simulator's
data generation speak these types to a motion model (wm_world_model.motion_model).
"""
from __future__ import annotations

from dataclasses import dataclass

from wm_common.records import FromDict, check_finite


@dataclass
class RobotState(FromDict):
    """Pose (odom frame) and current body velocities of the robot."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    v: float = 0.0
    w: float = 0.0


@dataclass
class RobotLimits(FromDict):
    """Velocity (m/s, rad/s) and acceleration (m/s^2, rad/s^2) limits of the base."""

    v_max: float = 0.8
    v_min: float = -0.2
    w_max: float = 1.2
    a_max: float = 1.0
    alpha_max: float = 2.5

    def __post_init__(self) -> None:
        check_finite(self, "v_max", "v_min", "w_max", "a_max", "alpha_max")
        # v_min <= 0 <= v_max so that "stop" is always a feasible command.
        if not (self.v_min <= 0.0 <= self.v_max):
            raise ValueError("RobotLimits needs v_min <= 0 <= v_max")
        if self.w_max < 0.0 or self.a_max <= 0.0 or self.alpha_max <= 0.0:
            raise ValueError("RobotLimits needs w_max >= 0 and positive accelerations")
