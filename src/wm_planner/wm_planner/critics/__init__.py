"""MPPI critics: one cost term per class, composed from a parameter dict.

make_critics({"goal": {"weight": 4.0}, "obstacle": {"collision_cost": 1e4}}) builds the
listed critics in that order; make_critics() builds DEFAULT_CRITICS. Velocity limits are
hard-clamped in the sampler (wm_world_model.kinematics.clamp_controls), so there is no
velocity-limit critic.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Type

from .base import Critic, time_weights
from .control_effort import ControlEffortCritic
from .fleet import FleetCritic
from .goal import GoalCritic
from .goal_angle import GoalAngleCritic
from .keep_right import KeepRightCritic
from .obstacle import ObstacleCritic
from .path_angle import PathAngleCritic
from .path_follow import PathFollowCritic
from .predicted_occupancy import PredictedOccupancyCritic
from .prefer_forward import PreferForwardCritic
from .smoothness import SmoothnessCritic

CRITIC_REGISTRY: Dict[str, Type[Critic]] = {}


def register_critic(cls: Type[Critic]) -> Type[Critic]:
    """Add a Critic subclass under its `name` (usable as a class decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Critic)):
        raise TypeError("%r is not a Critic subclass" % (cls,))
    if cls.name in CRITIC_REGISTRY and CRITIC_REGISTRY[cls.name] is not cls:
        raise ValueError("a different critic is already registered as %r" % cls.name)
    CRITIC_REGISTRY[cls.name] = cls
    return cls


for _cls in (GoalCritic, GoalAngleCritic, PathAngleCritic, ObstacleCritic,
             ControlEffortCritic, SmoothnessCritic, PreferForwardCritic,
             PredictedOccupancyCritic, FleetCritic, PathFollowCritic, KeepRightCritic):
    register_critic(_cls)

# The default composition, every critic with its class defaults. predicted_occupancy costs
# nothing until perception publishes a forecast, so including it changes nothing without one.
DEFAULT_CRITICS = ("goal", "goal_angle", "path_angle", "obstacle", "control_effort",
                   "smoothness", "prefer_forward", "predicted_occupancy")


def make_critics(config: Optional[Mapping[str, Optional[Mapping[str, Any]]]] = None
                 ) -> List[Critic]:
    """Build critics from {name: {param: value}} (a None/empty entry means defaults).

    None builds DEFAULT_CRITICS. Unknown critic names or parameters raise ValueError.
    """
    if config is None:
        config = {name: {} for name in DEFAULT_CRITICS}
    critics = []
    for name, params in config.items():
        cls = CRITIC_REGISTRY.get(name)
        if cls is None:
            raise ValueError("unknown critic %r; registered: %s"
                             % (name, sorted(CRITIC_REGISTRY)))
        critics.append(cls(**dict(params or {})))
    return critics


__all__ = ["Critic", "CRITIC_REGISTRY", "DEFAULT_CRITICS", "ControlEffortCritic",
           "FleetCritic", "GoalAngleCritic", "GoalCritic", "KeepRightCritic", "ObstacleCritic",
           "PathAngleCritic",
           "PathFollowCritic",
           "PredictedOccupancyCritic", "PreferForwardCritic",
           "SmoothnessCritic", "make_critics", "register_critic", "time_weights"]
