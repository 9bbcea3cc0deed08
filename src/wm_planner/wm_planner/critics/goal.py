"""GoalCritic: progress toward the goal along the navigation function."""
from __future__ import annotations

import numpy as np

from .base import Critic, time_weights
from .smooth import ca

EPS_DIST = 0.05      # m: smoothing of the Euclidean goal distance (a cone at the goal)


class GoalCritic(Critic):
    """Time-weighted cost-to-go (metres) at the trajectory's future points.

    Uses the geodesic cost-to-go grid when there is one, so going around a shelf is
    progress; falls back to the Euclidean distance to the goal otherwise. Points outside
    the cost-to-go grid read its largest value (`outside`), so leaving the window is never
    attractive. Weights grow toward the end of the horizon (`time_power`): the end point
    says where the trajectory gets to, the earlier points break ties in favour of getting
    there sooner. Smooth form: the same sum over the cost-to-go's spline, or over the
    Euclidean distance with its cone at the goal rounded off (EPS_DIST).
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

    def smooth_cost(self, nlp):
        tw = time_weights(nlp.horizon, self.time_power)
        goal, ctg = nlp.goal, nlp.cost_to_go
        total = 0
        for k, xk in enumerate(nlp.states):
            if ctg is not None:
                dist = ctg(xk[0], xk[1])
            else:
                dist = ca.sqrt((xk[0] - goal[0]) ** 2 + (xk[1] - goal[1]) ** 2 + EPS_DIST ** 2)
            total += tw[k] * dist
        return total
