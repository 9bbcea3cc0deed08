"""GoalCritic: progress toward the goal along the navigation function."""
from __future__ import annotations

import numpy as np

from .base import Critic, time_weights


class GoalCritic(Critic):
    """Time-weighted cost-to-go (metres) at the trajectory's future points.

    Uses the geodesic cost-to-go grid when there is one, so going around a shelf is
    progress; falls back to the Euclidean distance to the goal otherwise. Points outside
    the cost-to-go grid read its largest value (`outside`), so leaving the window is never
    attractive. Weights grow toward the end of the horizon (`time_power`): the end point
    says where the trajectory gets to, the earlier points break ties in favour of getting
    there sooner.
    """

    name = "goal"
    nmpc_form = "smooth"
    PARAMS = dict(Critic.PARAMS, weight=4.0, time_power=1.0)

    def validate(self) -> None:
        if self.time_power < 0.0:
            raise ValueError("goal.time_power must be >= 0")

    def cost(self, data):
        if data.cost_to_go is not None:
            ctg = data.sample_positions(data.cost_to_go)   # shared with the obstacle critic
        else:
            xy = data.trajectories[:, 1:, :2]
            ctg = np.hypot(xy[..., 0] - data.goal.x, xy[..., 1] - data.goal.y)
        return ctg @ time_weights(data.horizon, self.time_power)
