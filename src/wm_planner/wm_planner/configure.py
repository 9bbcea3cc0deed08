"""Build the optimizer from flat parameters (ROS parameters or a YAML dict), so the node and
the benchmarks configure it the same way."""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

from wm_common.footprint import DEFAULT_FOOTPRINT, Footprint
from wm_common.params import check_value, defaults, flatten
from wm_planner.command_limiter import speed_cap
from wm_planner.critics import CRITIC_REGISTRY, make_critics
from wm_planner.models import OptimizerSettings
from wm_planner.optimizer import MPPI
from wm_planner.params import PLANNER_PARAMS
from wm_planner.rotate_to_heading import RotateToHeading
from wm_world_model.artifact import resolve_artifact
from wm_world_model.motion_model import KinematicMotionModel, LearnedMotionModel
from wm_world_model.state import RobotLimits


def node_params_from_yaml(path: str, node: str = "planner") -> Dict[str, Any]:
    """A node's section of a ROS parameters file (`/**/planner`, `/planner` or `planner`),
    flattened: what the node runs with when launched with --params-file `path`."""
    import yaml

    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    for key in ("/**/" + node, "/" + node, node):
        section = (doc.get(key) or {}).get("ros__parameters")
        if section is not None:
            return flatten(section)
    raise ValueError("%s has no parameters for node %r" % (path, node))


def planner_params(overrides: Optional[Mapping[str, Any]] = None,
                   base: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The planner node's parameter dict off the node: declared defaults < `base` (a robot's
    parameters file, node_params_from_yaml) < `overrides`. Every base and override entry
    must be a declared parameter with an acceptable value (ValueError otherwise: a misspelt
    critic weight must not silently run the default); a YAML integer for a floating-point
    parameter is taken as that float (only rclpy is that strict)."""
    specs = {s.name: s for s in PLANNER_PARAMS}
    p = defaults(PLANNER_PARAMS)
    for source in (base or {}, overrides or {}):
        for name, value in dict(source).items():
            spec = specs.get(name)
            if spec is None:
                raise ValueError("unknown planner parameter %r" % (name,))
            if isinstance(spec.default, float) and isinstance(value, int) \
                    and not isinstance(value, bool):
                value = float(value)
            why = check_value(spec, value)
            if why is not None:
                raise ValueError("planner parameter %s=%r: %s" % (name, value, why))
            p[name] = value
    return p


def build_motion_model(p: Mapping[str, Any]):
    """Kinematics, or the world model when `world_model_artifact` is set (raises
    wm_world_model.artifact.ArtifactError / ValueError with the reason otherwise)."""
    # "none": what a launch argument can say for "no world model" (ros2 launch refuses an
    # empty name:= value)
    if p.get("world_model_artifact", "").strip().lower() in ("", "none"):
        return KinematicMotionModel()
    model = LearnedMotionModel(resolve_artifact(p["world_model_artifact"]), p["dt"],
                               public_key_file=p.get("world_model_public_key", ""),
                               require_signature=p.get("world_model_require_signature", False),
                               threads=p.get("world_model_threads", 1))
    mass = p.get("payload_mass", -1.0)
    model.set_payload(None if mass < 0 else mass)
    return model


def build_limits(p: Mapping[str, Any]) -> RobotLimits:
    """The robot's limits, v_max capped so it can stop within what it can see (speed_cap)."""
    limits = RobotLimits(v_max=p["v_max"], v_min=p["v_min"], w_max=p["w_max"],
                         a_max=p["a_max"], alpha_max=p["alpha_max"])
    cap = speed_cap(limits, p["horizon"] * p["dt"], p.get("sensor_range", math.inf),
                    margin=p["robot_radius"])
    if limits.v_max > cap:
        limits.v_max = cap
    return limits


def build_settings(p: Mapping[str, Any]) -> OptimizerSettings:
    return OptimizerSettings(
        num_samples=p["num_samples"], horizon=p["horizon"], dt=p["dt"],
        temperature=p["temperature"], noise_sigma_v=p["noise_sigma_v"],
        noise_sigma_w=p["noise_sigma_w"], iterations=p["iterations"],
        time_budget_ms=p["time_budget_ms"], seed=None if p["seed"] < 0 else p["seed"])


def build_critics(p: Mapping[str, Any]):
    config = {}
    for name in p["critics"]:
        if name not in CRITIC_REGISTRY:
            raise ValueError("unknown critic %r; registered: %s" % (name,
                                                                    sorted(CRITIC_REGISTRY)))
        config[name] = {k: p["%s.%s" % (name, k)] for k in CRITIC_REGISTRY[name].PARAMS
                        if "%s.%s" % (name, k) in p}
    return make_critics(config)


def build_footprint(p: Mapping[str, Any]) -> Footprint:
    """The body polygon (`footprint`) grown by `footprint_padding` [front, rear, side] (the
    gate's stop zone): what the planner keeps clear. robot_radius, the clearance routes
    keep, must be at least its inscribed radius (else routes would lead through gaps it
    cannot pass)."""
    pad = [float(v) for v in p.get("footprint_padding", [0.0, 0.0, 0.0])]
    if len(pad) != 3 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in pad):
        raise ValueError("footprint_padding must be [front, rear, side] in [0, 1] m, got %r"
                         % (pad,))
    try:
        footprint = Footprint.from_flat(p.get("footprint", DEFAULT_FOOTPRINT)).padded(*pad)
    except ValueError as e:
        raise ValueError("footprint: %s" % e) from None
    if p["robot_radius"] < footprint.inscribed_radius - 1e-9:
        raise ValueError("robot_radius %.3f m is less than the footprint's inscribed radius "
                         "%.3f m" % (p["robot_radius"], footprint.inscribed_radius))
    return footprint


def build_optimizer(p: Mapping[str, Any], motion_model=None) -> MPPI:
    """An MPPI from the planner node's parameter dict (see wm_planner.params).

    motion_model: reuse an already loaded one (a run-time parameter change must not reload
    and re-script the world model); None builds it from the parameters.
    """
    return MPPI(build_settings(p), build_limits(p), build_critics(p),
                robot_radius=p["robot_radius"], num_visualized=p["sampled_trajectories_shown"],
                footprint=build_footprint(p),
                # one notion of the way: the route's clearance and inflation
                nav_inflation=p["route_inflation"],
                motion_model=motion_model if motion_model is not None
                else build_motion_model(p))


def build_rotate(p: Mapping[str, Any]):
    """The turn on the spot towards the route (None when rotate_to_heading is off)."""
    if not p.get("rotate_to_heading", True):
        return None
    footprint = build_footprint(p)
    return RotateToHeading(footprint.circumscribed_radius,
                           enter_angle=p["rotate_enter_angle"],
                           exit_angle=p["rotate_exit_angle"],
                           angular_speed=min(p["rotate_speed"], p["w_max"]),
                           footprint=footprint, polygon_margin=p["recovery_margin"])


SOLVERS = ("mppi", "nmpc", "hybrid")


