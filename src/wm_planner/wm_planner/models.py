"""Plain data types of the planner: limits, settings, state, goal and the plan result.

Parameters reach these classes from ROS parameters / YAML through `from_dict`, which
raises on unknown keys: a misspelt parameter silently falling back to its default is a
classic source of "the tuning does nothing" bugs on a real robot.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

import numpy as np


def _coerce(name: str, value: Any, default: Any) -> Any:
    # YAML writes `v_max: 1` as an int and ROS may hand back numpy scalars; coerce to the
    # default's type so that arithmetic and validation see what the dataclass declares.
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError("%s must be a bool, got %r" % (name, value))
        return bool(value)
    if isinstance(default, int):
        if isinstance(value, (bool, np.bool_)) or float(value) != int(float(value)):
            raise TypeError("%s must be an integer, got %r" % (name, value))
        return int(float(value))
    if isinstance(default, float):
        if isinstance(value, (bool, np.bool_)):
            raise TypeError("%s must be a number, got %r" % (name, value))
        return float(value)
    return value


class _FromDict:
    """Mixin: `from_dict` that rejects unknown keys and coerces to the defaults' types."""

    @classmethod
    def from_dict(cls, d: Optional[Mapping[str, Any]] = None):
        d = dict(d or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError("unknown %s parameter(s) %s; valid: %s"
                             % (cls.__name__, unknown, sorted(fields)))
        kwargs = {}
        for name, value in d.items():
            f = fields[name]
            default = f.default if f.default is not dataclasses.MISSING else None
            kwargs[name] = value if value is None else _coerce(name, value, default)
        return cls(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def _check_finite(obj, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if not math.isfinite(v):
            raise ValueError("%s.%s must be finite, got %r" % (type(obj).__name__, n, v))


@dataclass
class RobotLimits(_FromDict):
    """Velocity (m/s, rad/s) and acceleration (m/s^2, rad/s^2) limits of the base."""

    v_max: float = 0.8
    v_min: float = -0.2
    w_max: float = 1.2
    a_max: float = 1.0
    alpha_max: float = 2.5

    def __post_init__(self) -> None:
        _check_finite(self, "v_max", "v_min", "w_max", "a_max", "alpha_max")
        # v_min <= 0 <= v_max so that "stop" is always a feasible command.
        if not (self.v_min <= 0.0 <= self.v_max):
            raise ValueError("RobotLimits needs v_min <= 0 <= v_max")
        if self.w_max < 0.0 or self.a_max <= 0.0 or self.alpha_max <= 0.0:
            raise ValueError("RobotLimits needs w_max >= 0 and positive accelerations")


@dataclass
class OptimizerSettings(_FromDict):
    """MPPI sampling and update settings; `horizon` steps of `dt` seconds each."""

    num_samples: int = 512
    horizon: int = 10
    dt: float = 0.1
    temperature: float = 0.3
    noise_sigma_v: float = 0.3
    noise_sigma_w: float = 0.6
    iterations: int = 1
    time_budget_ms: float = 20.0
    seed: Optional[int] = None
    # Sample-count control (MPPI._adapt_samples): after a plan over time_budget_ms the next
    # plans sample fewer sequences (down to min_samples), after plans with slack more again
    # (up to num_samples). Off: always num_samples.
    adaptive_samples: bool = False
    min_samples: int = 64
    # Ask malloc to keep freed memory mapped (optimizer.retain_freed_memory): process-wide,
    # saves the page faults a plan's large temporaries otherwise cost every cycle.
    retain_freed_memory: bool = True

    def __post_init__(self) -> None:
        # Two special samples (stop, previous mean) plus at least one noisy one.
        if self.num_samples < 3 or self.min_samples < 3:
            raise ValueError("num_samples and min_samples must be >= 3")
        if self.horizon < 1 or self.iterations < 1:
            raise ValueError("horizon and iterations must be >= 1")
        _check_finite(self, "dt", "temperature", "noise_sigma_v", "noise_sigma_w",
                      "time_budget_ms")
        if self.dt <= 0.0 or self.temperature <= 0.0:
            raise ValueError("dt and temperature must be positive")
        if self.noise_sigma_v < 0.0 or self.noise_sigma_w < 0.0 or self.time_budget_ms < 0.0:
            raise ValueError("noise sigmas and time_budget_ms must be >= 0")
        if self.seed is not None:
            self.seed = int(self.seed)


@dataclass
class RobotState(_FromDict):
    """Pose (odom frame) and current body velocities of the robot."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    v: float = 0.0
    w: float = 0.0


@dataclass
class Goal(_FromDict):
    """Goal pose in the odom frame with the tolerances the goal checker uses."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    xy_tolerance: float = 0.25
    yaw_tolerance: float = 0.5

    def __post_init__(self) -> None:
        _check_finite(self, "x", "y", "yaw", "xy_tolerance", "yaw_tolerance")
        if self.xy_tolerance < 0.0 or self.yaw_tolerance < 0.0:
            raise ValueError("goal tolerances must be >= 0")


# Status strings of PlanResult (plain strings so they map 1:1 onto a ROS message field).
STATUS_OK = "ok"
STATUS_COLLISION = "collision"
STATUS_FAILED = "failed"


def _empty(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=np.float64)


@dataclass
class PlanResult(_FromDict):
    """Output of one `MPPI.plan` call.

    controls: (H, 2) [v, w] sequence; controls[0] is the command to send now.
    trajectory: (H+1, 3) [x, y, yaw] rollout of `controls` from the current state.
    sampled_trajectories: (M, H+1, 3) a few samples of the last iteration, for RViz.
    """

    controls: np.ndarray = field(default_factory=lambda: _empty(0, 2))
    trajectory: np.ndarray = field(default_factory=lambda: _empty(0, 3))
    cost: float = 0.0
    iterations: int = 0
    solve_time_ms: float = 0.0
    status: str = STATUS_OK
    sampled_trajectories: np.ndarray = field(default_factory=lambda: _empty(0, 0, 3))

    def __post_init__(self) -> None:
        self.controls = np.asarray(self.controls, dtype=np.float64).reshape(-1, 2)
        self.trajectory = np.asarray(self.trajectory, dtype=np.float64).reshape(-1, 3)
        st = np.asarray(self.sampled_trajectories, dtype=np.float64)
        self.sampled_trajectories = st.reshape((0, 0, 3)) if st.size == 0 else st
        if self.status not in (STATUS_OK, STATUS_COLLISION, STATUS_FAILED):
            raise ValueError("unknown plan status %r" % (self.status,))

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def command(self):
        """(v, w) to send now; a stop when there is no control sequence."""
        if self.controls.shape[0] == 0:
            return 0.0, 0.0
        return float(self.controls[0, 0]), float(self.controls[0, 1])
