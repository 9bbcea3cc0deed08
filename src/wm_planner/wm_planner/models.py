"""Plain data types of the planner: settings, goal and the plan result (the robot's state and
limits are the world model's: wm_world_model.state).

Parameters reach these classes from ROS parameters / YAML through `from_dict`
(wm_common.records), which raises on unknown keys.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from wm_common.records import FromDict, check_finite


@dataclass
class OptimizerSettings(FromDict):
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
        check_finite(self, "dt", "temperature", "noise_sigma_v", "noise_sigma_w",
                      "time_budget_ms")
        if self.dt <= 0.0 or self.temperature <= 0.0:
            raise ValueError("dt and temperature must be positive")
        if self.noise_sigma_v < 0.0 or self.noise_sigma_w < 0.0 or self.time_budget_ms < 0.0:
            raise ValueError("noise sigmas and time_budget_ms must be >= 0")
        if self.seed is not None:
            self.seed = int(self.seed)


@dataclass
class Goal(FromDict):
    """Goal pose in the odom frame with the tolerances the goal checker uses."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    xy_tolerance: float = 0.25
    yaw_tolerance: float = 0.5

    def __post_init__(self) -> None:
        check_finite(self, "x", "y", "yaw", "xy_tolerance", "yaw_tolerance")
        if self.xy_tolerance < 0.0 or self.yaw_tolerance < 0.0:
            raise ValueError("goal tolerances must be >= 0")


# Status strings of PlanResult (plain strings so they map 1:1 onto a ROS message field).
STATUS_OK = "ok"
STATUS_COLLISION = "collision"
STATUS_FAILED = "failed"


def _empty(*shape: int) -> np.ndarray:
    return np.zeros(shape, dtype=np.float64)


@dataclass
class PlanResult(FromDict):
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
