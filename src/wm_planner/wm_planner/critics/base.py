"""Critic base class: one cost term of the MPPI objective, configured by parameters.

As in Nav2's MPPI controller each term is a small class that scores a whole batch at
once; the optimizer only sums `score` over its critics. A critic declares its parameters
and defaults in PARAMS, so a ROS/YAML parameter dict maps onto it one to one and a
misspelt key is an error instead of a silently ignored setting. The same class carries
the term's smooth form for the CasADi NMPC (`smooth_cost`, over the NLP's symbols in
critics/smooth.py), so a critic is defined in one place for both solvers.
"""
from __future__ import annotations

from typing import Any, ClassVar, Dict

import numpy as np

from wm_common.records import coerce

from ..critic_data import CriticData
from ..models import Goal
from .smooth import SmoothInputs


class Critic:
    """Base critic. Subclasses set `name`, extend `PARAMS` and implement `cost`.

    score(data) = weight * cost(data), or zeros when disabled. `cost` is the unweighted
    (K,) per-sample cost and must be vectorised over samples and time steps.
    """

    name: ClassVar[str] = "critic"
    PARAMS: ClassVar[Dict[str, Any]] = {"weight": 1.0, "enabled": True}
    # How the CasADi NMPC (wm_planner.nmpc) treats this critic: "smooth" (its objective
    # adds weight * smooth_cost, which the class defines), or "sampler only: <why>" (left
    # to the MPPI; a hybrid refine is still kept only when it is cheaper under all the
    # critics together, this one included). Empty: undeclared, and an NMPC configured with
    # the critic refuses it by name.
    nmpc_form: ClassVar[str] = ""
    # The term is switched on and off by the robot's distance to the goal (`active`). The
    # NMPC's NLP is built once, so it gets the switch as a parameter of every solve
    # (SmoothInputs.active), set from `active`.
    goal_gated: ClassVar[bool] = False

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            raise ValueError("unknown parameter(s) %s for critic %r; valid: %s"
                             % (unknown, self.name, sorted(self.PARAMS)))
        for key, default in self.PARAMS.items():
            value = params.get(key, default)
            setattr(self, key, coerce("%s.%s" % (self.name, key), value, default))
        if not np.isfinite(self.weight) or self.weight < 0.0:
            raise ValueError("critic %r: weight must be finite and >= 0" % self.name)
        self.validate()

    # Declared for type checkers; set from PARAMS in __init__.
    weight: float
    enabled: bool

    def validate(self) -> None:
        """Raise ValueError on inconsistent parameters (called by __init__)."""

    @property
    def params(self) -> Dict[str, Any]:
        return {key: getattr(self, key) for key in self.PARAMS}

    def cost(self, data: CriticData) -> np.ndarray:
        raise NotImplementedError

    def active(self, distance: float, goal: Goal) -> bool:
        """Whether the term counts for a robot `distance` metres from `goal` (a goal-gated
        critic's `cost` and smooth form both follow it)."""
        return True

    def smooth_cost(self, nlp: SmoothInputs) -> Any:
        """The unweighted cost of the NLP's one horizon as a smooth CasADi expression (the
        NMPC adds weight * smooth_cost). Defined by the critics with nmpc_form "smooth";
        the NMPC refuses any other critic by name before it gets here."""
        raise NotImplementedError("critic %r has no smooth form (nmpc_form %r)"
                                  % (self.name, self.nmpc_form))

    def score(self, data: CriticData) -> np.ndarray:
        """(K,) weighted cost of every sample in the batch."""
        if not self.enabled or self.weight == 0.0:
            return np.zeros(data.num_samples)
        return self.weight * self.cost(data)

    def __repr__(self) -> str:
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % kv for kv in self.params.items()))


def time_weights(horizon: int, power: float) -> np.ndarray:
    """(H,) weights proportional to (t/H)^power for t = 1..H, summing to 1.

    power = 0 weighs every step equally; larger powers put the weight on the end of the
    horizon (where the trajectory has had time to make progress).
    """
    t = np.arange(1, horizon + 1, dtype=np.float64) / horizon
    w = t ** power
    return w / w.sum()
