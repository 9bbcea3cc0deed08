"""Robot dynamics behind a small interface, and a differential-drive model with actuator lag,
acceleration limits and slip.

`RobotDynamics` is the seam: the simulator loop, odometry and the ROS node only use
reset / step / pose / body_velocity / wheel_angles, so a MuJoCo-backed model can replace
`DiffDriveRobot` later without touching them.

The true motion deliberately differs from ideal unicycle kinematics (first-order wheel lag,
slip that grows with payload and turn rate, side-slip in turns) so that a learned residual
model has something real to learn, and so that wheel odometry drifts as on a real robot.

Plain numpy/math, no rclpy; Python 3.8 compatible.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import Optional, Tuple

from wm_common.geometry import Pose2D, wrap_angle

# Internal integration step: the wheel lag (tau ~ 0.15 s) and the pose arc integration stay
# accurate even when the caller steps at a coarse control period (e.g. 0.1 s).
_MAX_SUBSTEP = 0.005


def _wheel_update(w0: float, target: float, alpha: float, beta: float,
                  dmax: float) -> Tuple[float, float]:
    """One substep of a wheel speed loop: (speed at the end, mean speed over the substep).

    The mean is what moves the robot and the encoder. Under the lag alone it is the exact
    integral of the exponential approach (so with tau = 0 the wheel is at its target for the
    whole substep and the robot follows a unicycle exactly); when the acceleration limit
    binds, the speed ramps linearly and the mean is the trapezoid.
    """
    step = alpha * (target - w0)
    if abs(step) <= dmax:
        return w0 + step, target + (w0 - target) * beta
    w1 = w0 + math.copysign(dmax, step)
    return w1, 0.5 * (w0 + w1)


class RobotDynamics(abc.ABC):
    """What the rest of the simulator needs from a robot model (true state, map frame)."""

    @abc.abstractmethod
    def reset(self, pose: Pose2D) -> None:
        """Place the robot at rest at `pose` (map frame); wheel angles restart at zero."""

    @abc.abstractmethod
    def step(self, cmd_v: float, cmd_w: float, dt: float) -> None:
        """Advance the true state by dt seconds under a body-frame velocity command."""

    @property
    @abc.abstractmethod
    def pose(self) -> Pose2D:
        """True pose of base_link in the map frame."""

    @property
    @abc.abstractmethod
    def body_velocity(self) -> Tuple[float, float]:
        """True (v forward m/s, w yaw rate rad/s) of base_link."""

    @property
    @abc.abstractmethod
    def wheel_angles(self) -> Tuple[float, float]:
        """(left, right) encoder angles in rad, unwrapped, as a wheel encoder reports."""


@dataclass
class DiffDriveParams:
    """Differential-drive robot parameters (SI units).

    Slip model: wheel odometry assumes the wheel surface speed is the ground speed; here the
    ground only receives a fraction (1 - s) of it, with
        s_long = payload_factor * (slip_long + slip_turn_gain * |cmd_w|)
        s_yaw  = payload_factor * (slip_yaw  + slip_turn_gain * |cmd_w|)
        payload_factor = 1 + payload_mass / payload_ref_mass
    (a heavier load and harder turns mean more tyre scrub and caster drag, so a diff drive
    under-turns), clipped to slip_max; plus a lateral side-slip velocity
        v_lat = -lateral_slip_gain * payload_factor * v * w
    outward of the turn, proportional to the centripetal acceleration v*w.
    Setting slip_long = slip_yaw = slip_turn_gain = lateral_slip_gain = 0 gives no slip.
    """

    wheel_radius: float = 0.1
    track: float = 0.5
    max_wheel_speed: float = 15.0      # rad/s at the wheel: 1.5 m/s with r = 0.1
    actuator_tau: float = 0.15         # s, first-order lag of each wheel's speed loop
    max_wheel_accel: float = 20.0      # rad/s^2 at the wheel: 2 m/s^2 with r = 0.1
    slip_long: float = 0.02
    slip_yaw: float = 0.04
    slip_turn_gain: float = 0.05       # per rad/s of commanded yaw rate
    lateral_slip_gain: float = 0.02    # s (side-slip speed per m/s^2 of centripetal accel)
    slip_max: float = 0.5
    payload_mass: float = 0.0          # kg carried on top
    payload_ref_mass: float = 100.0    # kg at which the slip doubles

    def __post_init__(self):
        if self.wheel_radius <= 0.0 or self.track <= 0.0:
            raise ValueError("wheel_radius and track must be positive")
        if self.max_wheel_speed <= 0.0 or self.max_wheel_accel <= 0.0:
            raise ValueError("wheel speed and acceleration limits must be positive")
        if self.actuator_tau < 0.0 or self.payload_mass < 0.0 or self.payload_ref_mass <= 0.0:
            raise ValueError("actuator_tau and payload_mass must be >= 0, payload_ref_mass > 0")

    @property
    def max_speed(self) -> float:
        """Top forward speed (m/s) when both wheels run at max_wheel_speed."""
        return self.max_wheel_speed * self.wheel_radius

    @classmethod
    def ideal(cls, **overrides) -> "DiffDriveParams":
        """No lag, no slip, effectively unlimited acceleration: a unicycle within the speed
        limit (for tests and as the nominal model a residual is learned against)."""
        kw = dict(actuator_tau=0.0, max_wheel_accel=1e9, slip_long=0.0, slip_yaw=0.0,
                  slip_turn_gain=0.0, lateral_slip_gain=0.0)
        kw.update(overrides)
        return cls(**kw)


class DiffDriveRobot(RobotDynamics):
    """Two driven wheels + casters: wheel speed loops with lag and limits, slip to ground."""

    def __init__(self, params: Optional[DiffDriveParams] = None,
                 pose: Pose2D = Pose2D(0.0, 0.0, 0.0)):
        self.params = params if params is not None else DiffDriveParams()
        self.reset(pose)

    # --- RobotDynamics -------------------------------------------------------------------
    def reset(self, pose: Pose2D) -> None:
        self._x, self._y, self._yaw = float(pose.x), float(pose.y), float(wrap_angle(pose.yaw))
        self._wl = 0.0  # wheel speeds, rad/s
        self._wr = 0.0
        self._angle_l = 0.0
        self._angle_r = 0.0
        self._v = 0.0
        self._w = 0.0
        self._v_lat = 0.0

    def step(self, cmd_v: float, cmd_w: float, dt: float) -> None:
        if dt < 0.0 or not math.isfinite(dt):
            raise ValueError("dt must be a finite non-negative number")
        if dt == 0.0:
            return
        p = self.params
        cmd_v = float(cmd_v) if math.isfinite(cmd_v) else 0.0
        cmd_w = float(cmd_w) if math.isfinite(cmd_w) else 0.0
        tl, tr = self._wheel_targets(cmd_v, cmd_w)
        f_payload = 1.0 + p.payload_mass / p.payload_ref_mass
        turn = p.slip_turn_gain * abs(cmd_w)
        s_long = min(p.slip_max, f_payload * (p.slip_long + turn))
        s_yaw = min(p.slip_max, f_payload * (p.slip_yaw + turn))
        k_lat = p.lateral_slip_gain * f_payload

        n = max(1, int(math.ceil(dt / _MAX_SUBSTEP - 1e-9)))
        h = dt / n
        # Exact discretisation of the first-order lag over one substep.
        if p.actuator_tau <= 0.0:
            alpha, beta = 1.0, 0.0
        else:
            alpha = 1.0 - math.exp(-h / p.actuator_tau)
            beta = p.actuator_tau / h * alpha
        dmax = p.max_wheel_accel * h
        r, b = p.wheel_radius, p.track
        for _ in range(n):  # a handful of scalar substeps per call; one robot, not rays
            self._wl, wl_m = _wheel_update(self._wl, tl, alpha, beta, dmax)
            self._wr, wr_m = _wheel_update(self._wr, tr, alpha, beta, dmax)
            self._angle_l += wl_m * h
            self._angle_r += wr_m * h
            # Ground motion: what the wheels would give without slip, minus the slip.
            v = r * (wl_m + wr_m) * 0.5 * (1.0 - s_long)
            w = r * (wr_m - wl_m) / b * (1.0 - s_yaw)
            v_lat = -k_lat * v * w
            self._integrate(v, v_lat, w, h)
        self._v, self._w, self._v_lat = v, w, v_lat

    @property
    def pose(self) -> Pose2D:
        return Pose2D(self._x, self._y, self._yaw)

    @property
    def body_velocity(self) -> Tuple[float, float]:
        return (self._v, self._w)

    @property
    def wheel_angles(self) -> Tuple[float, float]:
        return (self._angle_l, self._angle_r)

    # --- extras --------------------------------------------------------------------------
    @property
    def lateral_velocity(self) -> float:
        """True sideways slip speed (m/s, +left) of base_link; zero without slip."""
        return self._v_lat

    @property
    def wheel_speeds(self) -> Tuple[float, float]:
        """(left, right) true wheel speeds, rad/s."""
        return (self._wl, self._wr)

    def _wheel_targets(self, cmd_v: float, cmd_w: float) -> Tuple[float, float]:
        """Wheel speed set-points; if one exceeds the limit both are scaled by the same
        factor, keeping the commanded curvature (the path shape) rather than the speed."""
        p = self.params
        half = 0.5 * p.track * cmd_w
        tl = (cmd_v - half) / p.wheel_radius
        tr = (cmd_v + half) / p.wheel_radius
        m = max(abs(tl), abs(tr))
        if m > p.max_wheel_speed:
            k = p.max_wheel_speed / m
            tl *= k
            tr *= k
        return tl, tr

    def _integrate(self, v: float, v_lat: float, w: float, h: float) -> None:
        """Exact SE(2) integration of a constant body twist (v, v_lat, w) over h: the robot
        moves on a circular arc, so a coarse step does not cut corners."""
        th = w * h
        if abs(th) < 1e-9:
            a, bb = 1.0 - th * th / 6.0, 0.5 * th  # sin(th)/th, (1-cos th)/th series
        else:
            a, bb = math.sin(th) / th, (1.0 - math.cos(th)) / th
        dx = (a * v - bb * v_lat) * h
        dy = (bb * v + a * v_lat) * h
        c, s = math.cos(self._yaw), math.sin(self._yaw)
        self._x += c * dx - s * dy
        self._y += s * dx + c * dy
        self._yaw = float(wrap_angle(self._yaw + th))
