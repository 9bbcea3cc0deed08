"""CriticData: everything a critic may look at for one batch of sampled trajectories."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from wm_common.grid import Grid2D

from .models import Goal, RobotLimits, RobotState
from .neighbours import NeighbourPlan
from .predicted_occupancy import PredictedOccupancy


@dataclass
class CriticData:
    """One optimizer iteration's batch, shared read-only by all critics.

    controls: (K, H, 2) clamped [v, w] sequences; trajectories: (K, H+1, 3) their
    rollouts, index 0 being the current pose. esdf / cost_to_go are Grid2D in the odom
    frame, or None when not available. prev_controls is the (H, 2) solution of the
    previous plan call (None after a reset): its first row is the command that was sent.

    in_collision is the one field a critic writes: the obstacle critic sets a (K,) bool
    mask of samples that hit an obstacle, which the optimizer reads to detect the "every
    sample collides" case. Critics otherwise must not modify the batch.
    """

    state: RobotState
    goal: Goal
    controls: np.ndarray
    trajectories: np.ndarray
    dt: float
    limits: RobotLimits
    robot_radius: float
    esdf: Optional[Grid2D] = None
    cost_to_go: Optional[Grid2D] = None
    prev_controls: Optional[np.ndarray] = None
    in_collision: Optional[np.ndarray] = None
    # (C, 3) circles [x, y, r] in base_link covering the footprint (payload overhang
    # included); None means one circle of robot_radius at the origin.
    footprint: Optional[np.ndarray] = None
    # Learned occupancy forecasts (perception's 0.5 s / 1 s), each with its time offset
    # from the state; None or empty when perception publishes none.
    predictions: Optional[Sequence[PredictedOccupancy]] = None
    # Other robots' shared predicted paths (fleet critic), planning frame, times relative to
    # `state`; None or empty when the fleet shares nothing.
    neighbours: Optional[Sequence[NeighbourPlan]] = None

    @property
    def footprint_circles(self) -> np.ndarray:
        if self.footprint is None or len(self.footprint) == 0:
            return np.array([[0.0, 0.0, self.robot_radius]])
        return np.asarray(self.footprint, dtype=np.float64).reshape(-1, 3)

    @property
    def num_samples(self) -> int:
        return int(self.controls.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.controls.shape[1])

    @property
    def previous_command(self) -> np.ndarray:
        """(2,) the [v, w] sent last cycle; the measured velocity if there is none."""
        if self.prev_controls is not None and len(self.prev_controls):
            return np.asarray(self.prev_controls[0], dtype=np.float64)
        return np.array([self.state.v, self.state.w], dtype=np.float64)
