"""The safety gate from the collision monitor's flat parameters (ROS parameters or a YAML
dict), so the node, the benchmarks and the in-process evaluation build the same gate.

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import math
import os
from typing import Tuple

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

from wm_common.geometry import polygon_from_flat
from wm_safety.decision import MonitorConfig
from wm_safety.gate import GateConfig, SafetyGate
from wm_safety.mux import CommandMux
from wm_safety.smoother import AxisLimits, VelocitySmoother
from wm_safety.speed_zones import SpeedZones
from wm_safety.zones import Margins, Zones, overhangs_from_flat


def build_gate(p: dict, payload_kg: float = -1.0) -> Tuple[SafetyGate, dict]:
    """The gate from parameter values (ValueError / MapError with the reason if invalid)."""
    chassis = polygon_from_flat(p["footprint"])
    overhangs = overhangs_from_flat(p["payload_overhangs"])
    margins = {}
    for key in ("stop_margins", "slowdown_margins"):
        vals = [float(v) for v in p[key]]
        if len(vals) != 3 or not all(math.isfinite(v) and v >= 0.0 for v in vals):
            raise ValueError("%s must be 3 numbers >= 0 [front, rear, side]" % key)
        margins[key] = Margins(*vals)
    if p["z_min"] >= p["z_max"]:
        raise ValueError("z_min must be below z_max")
    travel = max(p["max_linear"], -p["min_linear"]) * p["time_horizon"]
    spec = dict(chassis=chassis, overhangs=overhangs, stop=margins["stop_margins"],
                slowdown=margins["slowdown_margins"], max_travel=travel)
    zones = Zones.build(payload_kg=payload_kg, **spec)
    monitor = MonitorConfig(
        slowdown_ratio=p["slowdown_ratio"], time_horizon=p["time_horizon"],
        time_step=p["time_step"], decel_linear=p["decel_linear"],
        decel_angular=p["decel_angular"], reaction=p["reaction_time"],
        approach_margin=p["approach_margin"], escape=p["escape"],
        escape_speed=p["escape_speed"], escape_angular_speed=p["escape_angular_speed"],
        escape_horizon=p["escape_horizon"])
    smoother = VelocitySmoother(
        AxisLimits(p["min_linear"], p["max_linear"], p["accel_linear"], p["decel_linear"],
                   p["jerk_linear"]),
        AxisLimits(-p["max_angular"], p["max_angular"], p["accel_angular"],
                   p["decel_angular"], p["jerk_angular"]))
    mux = CommandMux(p["nav_timeout"], p["teleop_timeout"], p["estop_hold"])
    speed_zones = None
    if p["speed_zones"]:
        speed_zones = SpeedZones.load(resolve_config(p["speed_zones"]), p["max_linear"])
    topics = tuple(str(t) for t in p.get("point_topics", ()))
    if len(set(topics)) != len(topics) or not all(topics):
        raise ValueError("point_topics must be distinct names")
    gate = SafetyGate(GateConfig(points_timeout=p["points_timeout"], max_dt=p["max_dt"],
                                 monitor=monitor, required=topics),
                      zones, mux, smoother, speed_zones)
    return gate, spec


def resolve_config(path: str) -> str:
    """An absolute path as is; a relative one in wm_bringup's config/speed_zones/."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    try:
        return os.path.join(get_package_share_directory("wm_bringup"), "config",
                            "speed_zones", path)
    except (PackageNotFoundError, LookupError, ValueError, OSError):
        return path   # no ament index: left for read_map's clear error


