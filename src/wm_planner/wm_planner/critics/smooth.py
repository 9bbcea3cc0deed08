"""What a critic's smooth form is written in (the NMPC's NLP symbols), and the smoothing
helpers the forms share.

The CasADi NMPC (wm_planner.nmpc) sums weight * critic.smooth_cost(inputs) over its
critics whose nmpc_form is "smooth", `inputs` a SmoothInputs of one horizon, as the MPPI
sums weight * critic.cost(data) over a CriticData batch. A smooth form follows its
critic's `cost` with the kinks rounded off (hinges, |angle|, a cone at the goal): a kink
costs a Newton-type solver its fast convergence.

casadi is imported here once, guarded, and the critics take it from here (`from .smooth
import ca`): the critics also serve where only the MPPI plans and casadi is not installed
(the world-model service's image: tests/test_service_deploy.py), and there no smooth form
is ever built.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from wm_world_model.state import RobotLimits

try:
    import casadi as ca
except ImportError:   # MPPI only: nothing calls a smooth form
    ca = None

EPS_ANGLE = 0.05     # rad: smoothing of |angle| near 0
EPS_HINGE = 0.05     # smoothing of the hinges (obstacle inflation, path angle)


@dataclass(frozen=True)
class SmoothInputs:
    """The NLP's symbols (CasADi expressions) for one horizon of H steps.

    controls     (2, H) commands, column k = [v, w] of step k
    states       H future states, states[k] = [x, y, yaw, v, w] after step k
    goal         [x, y, yaw] of the goal
    previous     [v, w] of the command sent last cycle (step 0's predecessor)
    horizon, dt, limits: as CriticData's
    cost_to_go   f(x, y): the navigation function's smooth form over the field window, or
                 None (no field, or use_navigation_function off)
    resolution   the field's cell size (m; 0.1 without a field): the step of finite
                 differences on cost_to_go
    clearances   per future step k and footprint circle j (index k * C + j): the distance
                 field at the circle's centre minus its radius; empty without a field
    active       the critic's per-solve switch (a parameter, 1 or 0 from its `active`) for
                 a goal-gated critic, 1.0 otherwise; the NMPC passes each critic its own
    """

    controls: Any
    states: Sequence[Any]
    goal: Any
    previous: Any
    horizon: int
    dt: float
    limits: RobotLimits
    cost_to_go: Optional[Callable[[Any, Any], Any]]
    resolution: float
    clearances: Sequence[Any]
    active: Any = 1.0


def smooth_relu(z, delta: float = EPS_HINGE):
    """max(z, 0), smoothed over |z| < delta (C-infinity; the critics' hinges are kinks)."""
    return 0.5 * (z + ca.sqrt(z ** 2 + delta ** 2))


def smooth_chord(cos_e):
    """|wrap(e)| near 0 from cos(e): the chord 2|sin(e/2)|, smoothed at 0."""
    return ca.sqrt(2.0 - 2.0 * cos_e + EPS_ANGLE ** 2) - EPS_ANGLE


def smooth_abs_angle(e):
    """|wrap(e)| near 0 (the chord 2|sin(e/2)|, smoothed at 0): smooth, 2pi-periodic."""
    return smooth_chord(ca.cos(e))

