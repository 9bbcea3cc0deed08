"""Build the optimizer from flat parameters (ROS parameters or a YAML dict), so the node and
the benchmarks configure it the same way."""
from __future__ import annotations

import os
from typing import Any, Mapping

from wm_planner.critics import CRITIC_REGISTRY, make_critics
from wm_planner.models import OptimizerSettings, RobotLimits
from wm_planner.motion_model import KinematicMotionModel, LearnedMotionModel
from wm_planner.optimizer import MPPI


def resolve_artifact(name: str) -> str:
    """A path as given, else the artifact of that name shipped with wm_world_model."""
    if os.path.isdir(name) or os.path.isabs(name):
        return name
    try:
        from ament_index_python.packages import get_package_share_directory

        shipped = os.path.join(get_package_share_directory("wm_world_model"), "models", name)
    except (ImportError, LookupError, ValueError):
        return name
    return shipped if os.path.isdir(shipped) else name


def build_motion_model(p: Mapping[str, Any]):
    """Kinematics, or the world model when `world_model_artifact` is set (raises
    wm_world_model.artifact.ArtifactError / ValueError with the reason otherwise)."""
    if not p.get("world_model_artifact"):
        return KinematicMotionModel()
    model = LearnedMotionModel(resolve_artifact(p["world_model_artifact"]), p["dt"],
                               public_key_file=p.get("world_model_public_key", ""),
                               require_signature=p.get("world_model_require_signature", False),
                               threads=p.get("world_model_threads", 1))
    mass = p.get("payload_mass", -1.0)
    model.set_payload(None if mass < 0 else mass)
    return model


def build_optimizer(p: Mapping[str, Any]) -> MPPI:
    """An MPPI from the planner node's parameter dict (see wm_planner.params)."""
    settings = OptimizerSettings(
        num_samples=p["num_samples"], horizon=p["horizon"], dt=p["dt"],
        temperature=p["temperature"], noise_sigma_v=p["noise_sigma_v"],
        noise_sigma_w=p["noise_sigma_w"], iterations=p["iterations"],
        time_budget_ms=p["time_budget_ms"], seed=None if p["seed"] < 0 else p["seed"])
    limits = RobotLimits(v_max=p["v_max"], v_min=p["v_min"], w_max=p["w_max"],
                         a_max=p["a_max"], alpha_max=p["alpha_max"])
    config = {}
    for name in p["critics"]:
        if name not in CRITIC_REGISTRY:
            raise ValueError("unknown critic %r; registered: %s" % (name,
                                                                    sorted(CRITIC_REGISTRY)))
        config[name] = {k: p["%s.%s" % (name, k)] for k in CRITIC_REGISTRY[name].PARAMS
                        if "%s.%s" % (name, k) in p}
    flat = [float(v) for v in p.get("footprint_circles", [])]
    if len(flat) >= 3 and len(flat) % 3 != 0:
        raise ValueError("footprint_circles must be [x, y, r, ...] (a multiple of 3 numbers)")
    footprint = flat if len(flat) >= 3 else None
    if footprint is not None and min(flat[2::3]) <= 0.0:
        raise ValueError("footprint_circles radii must be positive")
    return MPPI(settings, limits, make_critics(config), robot_radius=p["robot_radius"],
                num_visualized=p["sampled_trajectories_shown"], footprint=footprint,
                motion_model=build_motion_model(p))
