"""One seeded closed-loop episode in process: the planner's own control cycle
(wm_planner.controller.Controller, what the planner node runs) driving the simulator's robots
to their goals, no ROS, no DDS, no node processes.

`make eval` runs thousands of these (wm_eval.evaluate) besides the full stack over DDS;
`make sweep` runs them over grids of planner configurations (wm_eval.sweep). An episode
costs a few CPU seconds.

What is real and what stands in:

* The robots: wm_sim's KinematicEngine (DiffDriveRobot: actuator lag, slip, payload) or,
  with `engine: mujoco`, the MuJoCo physics the world model was trained on (torque-limited
  wheels, friction, payload), stepped at the simulator node's physics rate (50 Hz) within
  each 0.1 s control cycle.
* The planner: wm_planner.controller.Controller built from the node's parameters (declared
  defaults < config/robot.yaml's planner section < the case's overrides): goal check,
  route, progress checker and recoveries, turn on the spot, MPPI (or NMPC / hybrid),
  command limiter. The seed is fixed and the wall-clock limits raised (time_budget_ms,
  nmpc_max_time_ms: 1000 ms) so that a result depends on the seed and the configuration,
  never on how fast or busy the machine is. navigate_timeout is the scenario's time limit:
  a goal that cannot be reached ends with the controller's own reason (no way, blocked, no
  progress) once its recoveries are used up, or with "timeout".
* Perception: **perfect** by default (`perception: truth`). Each cycle a robot gets the
  true signed distance of the world and of the other robots' chassis (on the perception
  node's 16 m, 0.1 m window, saturated at its 3 m max_distance), and its true pose and body
  velocity as odometry (odom = map). With `perception: lidar` it gets what the perception
  node would compute: the perception core (wm_perception.pipeline) on the engine's simulated
  LiDAR scan (16 rings, range noise, the other robots in it), voxels of 0.1 m and their
  conservative distance field.
* The safety gate: every command passes each robot's own wm_safety gate (built from
  config/robot.yaml's collision_monitor section, wm_safety.configure.build_gate: collision
  monitor zones, the escape from the stop zone, velocity smoother) on points sampled every
  5 cm on the outline of every box and of the other robots within its reach, as a perfect
  2D scan; the gate's output drives the robot.
* The fleet: each robot shares its predicted path (as wm_fleet does through Redis) and the
  others' paths reach its fleet critic, with one control period of delay; each runs the
  fleet client's deadlock rule (wm_fleet.deadlock.YieldArbiter) on the same shared entries,
  with the fleet client's default of no passing places (a facility configures them for its
  one-lane aisles; places derived from open floor sent a yielding robot down the other's
  way: in 4 of 4 failed encounters of 30, all of which arrived without yields). The
  planner's keep_right critic, fleet critic and recoveries resolve the encounters.

Scenario families (`family`, everything else decided by the seed alone, never by the
planner configuration, so configurations and motion models are compared on the same
episodes):

* single: warehouse_small or _large, start and goal a few metres apart in free space, a
  payload, and up to a few unmapped boxes (half the episodes one across the straight line);
  the robot has the static map.
* gap: a 12 x 8 m room split by a wall with one gap (`gap_widths`), 0.6-1.0 m off the
  straight line; the goal 2.5 m behind the wall; LiDAR only, no map. Gaps at least as wide
  as the body plus 2 x 0.15 m must be passed; narrower than the body must end "no way".
* encounter: 2-4 robots whose straight ways cross the same point of a warehouse at about the
  same time (an aisle crossing), or two robots nose to nose in an aisle (`nose_to_nose`).

KPIs: one flat, JSON-serialisable dict per episode (`run_episode`); failures carry their
robots' paths (`trace`) for the evaluation's pictures. An exception anywhere becomes the row's
`error`, never a lost row.

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import json
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from wm_common.footprint import Footprint
from wm_common.geometry import Pose2D
from wm_common.grid import Grid2D
from wm_common.map_io import OccupancyMap
from wm_common.params import defaults
from wm_eval.paths import REPO, share_dir
from wm_eval.runner import footprint_clearance
from wm_fleet.deadlock import DeadlockConfig, YieldArbiter
from wm_fleet.schema import RobotEntry
from wm_perception.params import PERCEPTION_PARAMS
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_planner.configure import build_motion_model, node_params_from_yaml
from wm_planner.configure import planner_params as planner_params_of
from wm_planner.controller import REACHED, Controller, CycleInput
from wm_planner.global_planner import GlobalPlanner
from wm_planner.neighbours import NeighbourPlan
from wm_safety.configure import build_gate
from wm_safety.mux import NAV
from wm_safety.params import SAFETY_PARAMS
from wm_sim.engine import Engine, KinematicEngine
from wm_sim.lidar import LidarSpec
from wm_sim.mujoco_engine import MujocoEngine
from wm_sim.params import SIM_PARAMS
from wm_sim.scenario import load_world
from wm_sim.world import (Box, BoxArrays, World, boxes_signed_distance, chassis_overlaps,
                          robot_box)
from wm_world_model.artifact import resolve_artifact
from wm_world_model.motion_model import KinematicMotionModel
from wm_world_model.state import RobotState

WORLD_MODEL = "worldmodel-1.0.0"
# The simulator node's declared parameters, as the DDS runs use them: its control_period
# (the planner's dt), physics_rate (sub-steps of a cycle) and map_resolution (the route's
# static map).
_SIM = defaults(SIM_PARAMS)
CONTROL_PERIOD = float(_SIM["control_period"])
PHYSICS_RATE = float(_SIM["physics_rate"])
MAP_RESOLUTION = float(_SIM["map_resolution"])
CHASSIS = (0.7, 0.55)   # m, length x width of the robot body (wm_sim.world.robot_box)
TRACE_PERIOD = 0.5      # s between the path points a failed episode keeps
LIDAR_MOUNT = LidarSpec().mount   # the simulated LiDAR in base_link (x, y, z, yaw)

# Scenario generation: every key may be set per sweep (its `scenario:` section).
SCENARIO_DEFAULTS: Dict[str, Any] = {
    "family": "single",        # single | gap | encounter
    "world": "warehouse_small",
    "engine": "kinematic",     # kinematic | mujoco (the physics the world model learnt)
    "perception": "truth",     # truth | lidar (the perception core on simulated scans)
    "safety_gate": True,       # every command through the robot's wm_safety gate
    "min_distance": 3.0,       # m, straight line start -> goal
    "max_distance": 8.0,
    "clearance": 0.75,         # m, start and goal from the nearest static obstacle
    "max_obstacles": 3,        # 0..max_obstacles random boxes per episode
    "blocking_probability": 0.5,  # of an episode with one of them across the straight line
    "obstacle_clearance": 0.9,  # m, start and goal from every added box
    "reachable_radius": 0.40,  # m, the reachability check's route clearance
    "payload_min": 0.0,        # kg, uniform in [payload_min, payload_max]
    "payload_max": 150.0,      # kg (the world model's range)
    "friction_min": 0.8,       # floor friction (mujoco), uniform in [min, max]
    "friction_max": 0.8,
    "time_limit": 150.0,       # simulated s (and the goals' navigate_timeout)
    "gap_widths": [0.5, 0.85, 1.0, 1.2],   # gap family: one of these per seed [m]
    "robots_min": 2,           # encounter family: 2..4 robots
    "robots_max": 4,
    "nose_to_nose_probability": 0.25,    # encounter family
}
FAMILIES = ("single", "gap", "encounter")

# Planner parameters an episode always sets (reproducible, machine-independent results):
# MPPI's and the NMPC's wall-clock limits out of the way (their maxima).
FIXED = {"time_budget_ms": 1000.0, "nmpc_max_time_ms": 1000.0}
DEFAULT_PLANNER_SEED = 7


# --------------------------------------------------------------------------- parameters

_ROBOT_YAML_CACHE: Dict[Tuple[str, str], Dict[str, Any]] = {}


def _robot_yaml() -> Path:
    path = REPO / "config" / "robot.yaml"
    if not path.is_file():   # an installed package outside the source tree
        path = share_dir() / "config" / "robot.yaml"
    return path


def robot_planner_params(path: Optional[str] = None) -> Dict[str, Any]:
    """The planner section of config/robot.yaml (or `path`), flattened; {} for path ''."""
    if path == "":
        return {}
    p = str(_robot_yaml() if path is None else path)
    if (p, "planner") not in _ROBOT_YAML_CACHE:
        _ROBOT_YAML_CACHE[(p, "planner")] = node_params_from_yaml(p, "planner")
    return dict(_ROBOT_YAML_CACHE[(p, "planner")])


def gate_params() -> Dict[str, Any]:
    """The collision monitor's parameters: declared defaults < config/robot.yaml."""
    p = str(_robot_yaml())
    if (p, "collision_monitor") not in _ROBOT_YAML_CACHE:
        _ROBOT_YAML_CACHE[(p, "collision_monitor")] = dict(
            defaults(SAFETY_PARAMS), **node_params_from_yaml(p, "collision_monitor"))
    return dict(_ROBOT_YAML_CACHE[(p, "collision_monitor")])


# The planner node's perception input: the robot's perception window, lattice and saturation
# (its declared defaults < config/robot.yaml's perception section, as the node runs).
_PERCEPTION = dict(defaults(PERCEPTION_PARAMS),
                   **node_params_from_yaml(str(_robot_yaml()), "perception"))
FIELD_WINDOW = float(_PERCEPTION["window_size"])
FIELD_RESOLUTION = float(_PERCEPTION["resolution"])
FIELD_MAX_DISTANCE = float(_PERCEPTION["max_distance"])


def outline_points(boxes: Sequence[Box], spacing: float = 0.05) -> np.ndarray:
    """(N, 2) points every `spacing` metres on the outlines of `boxes` (a perfect 2D scan
    of them, for the safety gate)."""
    pts = []
    for b in boxes:
        c = b.corners()
        for a, e in zip(c, np.roll(c, -1, axis=0)):
            n = max(1, int(math.ceil(float(np.hypot(*(e - a))) / spacing)))
            t = np.arange(n)[:, None] / n
            pts.append(a + t * (e - a))
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def planner_params(overrides: Optional[Mapping[str, Any]] = None,
                   robot_params: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The planner node's parameter dict: declared defaults < `robot_params` (None: the
    planner section of the repository's config/robot.yaml; {}: none) < `overrides`.

    Every override must be a declared parameter with an acceptable value (ValueError
    otherwise: a misspelt critic weight must not silently run the default). A YAML integer
    for a floating-point parameter is accepted as that float.
    """
    p = planner_params_of(overrides, robot_planner_params() if robot_params is None
                          else robot_params)
    p.update(FIXED)
    if p.get("seed", -1) < 0:
        p["seed"] = DEFAULT_PLANNER_SEED
    if abs(p["dt"] - CONTROL_PERIOD) > 1e-9:
        raise ValueError("the episode steps the planner every %.2f s; dt=%r" % (
            CONTROL_PERIOD, p["dt"]))
    return p


def scenario_options(scenario: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    sc = dict(SCENARIO_DEFAULTS)
    unknown = sorted(set(scenario or {}) - set(sc))
    if unknown:
        raise ValueError("unknown scenario option(s) %s; known: %s" % (unknown, sorted(sc)))
    sc.update(scenario or {})
    if sc["family"] not in FAMILIES:
        raise ValueError("scenario family %r; known: %s" % (sc["family"], FAMILIES))
    return sc


# --------------------------------------------------------------------------- scenario

@dataclass(frozen=True)
class RobotTask:
    start: Pose2D
    goal: Pose2D
    payload_kg: float


@dataclass(frozen=True)
class EpisodeSpec:
    """Everything the seed decides: the world, the robots' tasks, the added boxes."""

    seed: int
    family: str
    world: str
    robots: Tuple[RobotTask, ...]
    obstacles: Tuple[Box, ...]  # not in the robots' map (a dropped pallet, a gap's wall...)
    mapped: bool               # the robots have the static map (else LiDAR only)
    blocking: bool             # single: one box across the straight line start -> goal
    route_length_m: float      # single: shortest route with every box known
    gap_width: float = math.nan   # gap: the gap's width [m]
    # can every goal be reached at all (gap: wide enough; None: either outcome is right)
    passable: Optional[bool] = True
    friction: float = 0.8
    kind: str = ""             # encounter: crossing | nose_to_nose

    @property
    def start(self) -> Pose2D:
        return self.robots[0].start

    @property
    def goal(self) -> Pose2D:
        return self.robots[0].goal

    @property
    def payload_kg(self) -> float:
        return self.robots[0].payload_kg


_STATIC_CACHE: Dict[str, Tuple[World, OccupancyMap]] = {}


def static_world(name: str) -> Tuple[World, OccupancyMap]:
    """(World, its map_server map at MAP_RESOLUTION), rasterized once per process."""
    if name not in _STATIC_CACHE:
        world = load_world(name)
        occ, origin = world.rasterize(MAP_RESOLUTION)
        _STATIC_CACHE[name] = (world, OccupancyMap(occ.astype(np.int16), MAP_RESOLUTION,
                                                   origin.x, origin.y))
    return _STATIC_CACHE[name]


def with_boxes(static_map: OccupancyMap, boxes) -> OccupancyMap:
    """The static map with `boxes` rasterized in (World.rasterize's rule, same lattice)."""
    if not boxes:
        return static_map
    res = static_map.resolution
    h, w = static_map.values.shape
    xs = static_map.origin_x + (np.arange(w) + 0.5) * res
    ys = static_map.origin_y + (np.arange(h) + 0.5) * res
    gx, gy = np.meshgrid(xs, ys)
    sd = boxes_signed_distance(BoxArrays(list(boxes)), np.stack([gx, gy], axis=-1))
    values = np.where(sd <= 0.5 * res, 100, static_map.values).astype(np.int16)
    return OccupancyMap(values, res, static_map.origin_x, static_map.origin_y)


def _free_point(world: World, rng, clearance: float, extra=()) -> Optional[Tuple[float, float]]:
    xmin, ymin, xmax, ymax = world.bounds
    for _ in range(200):
        x, y = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
        if float(world.signed_distance(np.array([x, y]), extra)) >= clearance:
            return float(x), float(y)
    return None


def _payload(rng, sc) -> float:
    return float(rng.uniform(float(sc["payload_min"]), float(sc["payload_max"])))


def _route_ok(static_map: OccupancyMap, boxes, radius: float, s, g) -> Tuple[bool, float]:
    planner = GlobalPlanner(with_boxes(static_map, boxes), radius, inflation=0.0)
    plan = planner.plan(s, g)
    ok = plan.route.shape[0] >= 2 and not plan.goal_snapped and not plan.start_snapped
    return ok, float(plan.length) if ok else math.nan


def make_spec(seed: int, scenario: Optional[Mapping[str, Any]] = None) -> EpisodeSpec:
    """The episode of `seed` (deterministic; independent of the planner configuration)."""
    sc = scenario_options(scenario)
    rng = np.random.default_rng([int(seed), 0x5EED])
    family = sc["family"]
    if family == "gap":
        return _gap_spec(int(seed), sc, rng)
    if family == "encounter":
        return _encounter_spec(int(seed), sc, rng)
    return _single_spec(int(seed), sc, rng)


def _friction(rng, sc) -> float:
    return float(rng.uniform(float(sc["friction_min"]), float(sc["friction_max"])))


def _single_spec(seed: int, sc, rng) -> EpisodeSpec:
    world, static_map = static_world(str(sc["world"]))
    xmin, ymin, xmax, ymax = world.bounds
    clearance = float(sc["clearance"])
    for _ in range(500):
        s = _free_point(world, rng, clearance)
        if s is None:
            raise RuntimeError("no free start in %s" % sc["world"])
        d = rng.uniform(float(sc["min_distance"]), float(sc["max_distance"]))
        th = rng.uniform(-math.pi, math.pi)
        g = (s[0] + d * math.cos(th), s[1] + d * math.sin(th))
        if (xmin < g[0] < xmax and ymin < g[1] < ymax
                and float(world.signed_distance(np.array(g))) >= clearance):
            break
    else:
        raise RuntimeError("no start/goal pair in %s for seed %d" % (sc["world"], seed))
    start = Pose2D(s[0], s[1], float(rng.uniform(-math.pi, math.pi)))
    goal = Pose2D(g[0], g[1], float(rng.uniform(-math.pi, math.pi)))
    payload = _payload(rng, sc)

    heading = math.atan2(g[1] - s[1], g[0] - s[0])
    n_max = int(sc["max_obstacles"])
    ends = np.array([s, g])
    boxes: List[Box] = []
    blocking = False
    route_len = math.nan
    for attempt in range(30):
        n = int(rng.integers(0, n_max + 1)) if attempt < 20 else 0
        block = n_max > 0 and rng.random() < float(sc["blocking_probability"])
        if block and attempt < 20:
            n = max(n, 1)   # the blocking box is the first of the n
        block = block and n > 0
        boxes = []
        for k in range(n):
            u = rng.uniform(0.35, 0.65) if (k == 0 and block) else rng.uniform(0.15, 0.85)
            lateral = rng.normal(0.0, 0.2) if (k == 0 and block) else rng.uniform(-2.0, 2.0)
            cx = s[0] + u * (g[0] - s[0]) - lateral * math.sin(heading)
            cy = s[1] + u * (g[1] - s[1]) + lateral * math.cos(heading)
            if k == 0 and block:   # a pallet lying across the straight line
                sx, sy, yaw = 0.8, 1.2, heading + rng.uniform(-0.3, 0.3)
            else:
                sx, sy, yaw = rng.uniform(0.5, 1.2), rng.uniform(0.5, 1.2), \
                    rng.uniform(-math.pi, math.pi)
            boxes.append(Box(float(cx), float(cy), float(sx), float(sy), float(yaw), 1.2,
                             "obstacle_%d" % k, 0.3))
        if boxes and float(np.min(boxes_signed_distance(BoxArrays(boxes), ends))) < float(
                sc["obstacle_clearance"]):
            continue
        ok, length = _route_ok(static_map, boxes, float(sc["reachable_radius"]), s, g)
        if ok:
            route_len = length
            blocking = block
            break
    else:
        raise RuntimeError("no reachable episode for seed %d" % seed)
    return EpisodeSpec(seed, "single", str(sc["world"]), (RobotTask(start, goal, payload),),
                       tuple(boxes), True, bool(blocking), route_len,
                       friction=_friction(rng, sc))


def _gap_spec(seed: int, sc, rng) -> EpisodeSpec:
    """A wall across the room at x = 6 m with one gap; start 2.5-3.5 m before it, the goal
    2.5 m behind it, the gap 0.6-1.0 m to one side of the straight line."""
    widths = [float(w) for w in sc["gap_widths"]]
    width = widths[int(rng.integers(0, len(widths)))]
    y_line = float(rng.uniform(3.3, 4.7))
    side = 1.0 if rng.random() < 0.5 else -1.0
    y_gap = y_line + side * float(rng.uniform(0.6, 1.0))
    wall_x, t = 6.0, 0.2
    lo, hi = y_gap - 0.5 * width, y_gap + 0.5 * width
    boxes = (Box(wall_x, 0.5 * lo, t, lo, 0.0, 2.0, "gap_wall_south", 0.5),
             Box(wall_x, 0.5 * (hi + 8.0), t, 8.0 - hi, 0.0, 2.0, "gap_wall_north", 0.5))
    start = Pose2D(wall_x - float(rng.uniform(2.5, 3.5)), y_line,
                   float(rng.uniform(-0.6, 0.6)))
    goal = Pose2D(wall_x + 2.5, y_line + float(rng.uniform(-0.3, 0.3)),
                  float(rng.uniform(-math.pi, math.pi)))
    task = RobotTask(start, goal, _payload(rng, sc))
    # must pass from 0.85 m (the body plus 0.15 m a side); narrower than the body: no way;
    # in between either outcome is right (a squeeze the route may or may not call a way)
    passable = True if width >= CHASSIS[1] + 0.3 - 1e-9 else \
        False if width < CHASSIS[1] else None
    return EpisodeSpec(seed, "gap", "gap_room", (task,), boxes, False, False, math.nan,
                       gap_width=width, passable=passable, friction=_friction(rng, sc))


def _encounter_spec(seed: int, sc, rng) -> EpisodeSpec:
    world, static_map = static_world(str(sc["world"]))
    n = int(rng.integers(int(sc["robots_min"]), int(sc["robots_max"]) + 1))
    nose = rng.random() < float(sc["nose_to_nose_probability"])
    clearance = float(sc["clearance"])
    radius = float(sc["reachable_radius"])
    for _ in range(500):
        if nose:
            tasks = _nose_to_nose(world, rng, clearance)
        else:
            tasks = _crossing(world, rng, n, clearance)
        if tasks is None:
            continue
        if all(_route_ok(static_map, (), radius, t.start[:2], t.goal[:2])[0] for t in tasks):
            tasks = tuple(RobotTask(t.start, t.goal, _payload(rng, sc)) for t in tasks)
            return EpisodeSpec(seed, "encounter", str(sc["world"]), tasks, (), True, False,
                               math.nan, friction=_friction(rng, sc),
                               kind="nose_to_nose" if nose else "crossing")
    raise RuntimeError("no encounter for seed %d in %s" % (seed, sc["world"]))


def _apart(points, d: float) -> bool:
    p = np.asarray(points, dtype=np.float64)
    diff = p[:, None, :] - p[None, :, :]
    dist = np.hypot(diff[..., 0], diff[..., 1]) + np.eye(len(p)) * 1e9
    return bool(dist.min() >= d)


def _crossing(world: World, rng, n: int, clearance: float) -> Optional[List[RobotTask]]:
    """n robots whose straight ways pass one crossing point, arriving about together: robot
    i comes from about theta0 + i * (2 pi / n) (two robots: at right angles, more or less),
    its start 2.5-4 m before the point and its goal 2.5-4.5 m beyond, each in free space
    and 1.6 m from the others' starts and goals (a few tries per robot)."""
    c = _free_point(world, rng, 1.0)
    if c is None:
        return None
    theta0 = float(rng.uniform(-math.pi, math.pi))
    spread = 2.0 * math.pi / n if n > 2 else 0.5 * math.pi
    tasks: List[RobotTask] = []
    for i in range(n):
        for _ in range(40):
            th = theta0 + i * spread + float(rng.normal(0.0, 0.35))
            ux, uy = math.cos(th), math.sin(th)
            d_in, d_out = float(rng.uniform(2.5, 4.0)), float(rng.uniform(2.5, 4.5))
            s = (c[0] - d_in * ux, c[1] - d_in * uy)
            g = (c[0] + d_out * ux, c[1] + d_out * uy)
            if min(float(world.signed_distance(np.array(p))) for p in (s, g)) < clearance:
                continue
            if tasks and not (_apart([t.start[:2] for t in tasks] + [s], 1.6)
                              and _apart([t.goal[:2] for t in tasks] + [g], 1.6)):
                continue
            tasks.append(RobotTask(Pose2D(s[0], s[1], th + float(rng.normal(0.0, 0.3))),
                                   Pose2D(g[0], g[1], th), 0.0))
            break
        else:
            return None
    return tasks


def _nose_to_nose(world: World, rng, clearance: float) -> Optional[List[RobotTask]]:
    """Two robots face to face, 5-25 cm between their fronts, each with its goal behind the
    other."""
    c = _free_point(world, rng, 0.9)
    if c is None:
        return None
    th = float(rng.uniform(-math.pi, math.pi))
    ux, uy = math.cos(th), math.sin(th)
    half = 0.5 * (CHASSIS[0] + float(rng.uniform(0.05, 0.25)))
    d_goal = float(rng.uniform(2.5, 4.0))
    a = (c[0] - half * ux, c[1] - half * uy)
    b = (c[0] + half * ux, c[1] + half * uy)
    ga = (c[0] + d_goal * ux, c[1] + d_goal * uy)
    gb = (c[0] - d_goal * ux, c[1] - d_goal * uy)
    for p in (a, b, ga, gb):
        if float(world.signed_distance(np.array(p))) < clearance:
            return None
    return [RobotTask(Pose2D(a[0], a[1], th), Pose2D(ga[0], ga[1], th), 0.0),
            RobotTask(Pose2D(b[0], b[1], th + math.pi), Pose2D(gb[0], gb[1], th + math.pi),
                      0.0)]


# --------------------------------------------------------------------------- helpers

_MODEL_CACHE: Dict[tuple, Any] = {}


def motion_model_for(p: Mapping[str, Any]):
    """The motion model of parameters `p`; world models loaded (and scripted) once per
    process, keyed by artifact, and shared by the episodes that process runs (the robots of
    one episode plan in turn, so they can share it: payloads are set before each plan)."""
    name = str(p.get("world_model_artifact", "")).strip()
    if name.lower() in ("", "none"):
        return KinematicMotionModel()
    path = resolve_artifact(name)
    if not Path(path).is_dir():
        shipped = REPO / "src" / "wm_world_model" / "models" / name
        if shipped.is_dir():   # no ament index (a bare worker): the source tree's copy
            path = str(shipped)
    key = (path, float(p["dt"]), p.get("world_model_public_key", ""),
           bool(p.get("world_model_require_signature", False)))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = build_motion_model(dict(p, world_model_artifact=path))
    return _MODEL_CACHE[key]


def _single_thread() -> None:
    """One torch thread: what the robot's planner uses, and the same arithmetic in every
    process (so an episode gives the same result inline and on any worker)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


class TruthField:
    """The true signed distance on the perception lattice, precomputed once per episode
    over the world plus a window's margin; `window(x, y, extra)` cuts the perception node's
    window (origin on the global lattice, wm_perception.pipeline.window_origin) as a fresh
    Grid2D, with the `extra` boxes (the other robots, where they are now) added."""

    def __init__(self, world: World):
        res = FIELD_RESOLUTION
        self.n = int(round(FIELD_WINDOW / res))
        xmin, ymin, xmax, ymax = world.bounds
        margin = FIELD_WINDOW / 2 + 1.0
        self.ix0 = int(math.floor((xmin - margin) / res))
        self.iy0 = int(math.floor((ymin - margin) / res))
        w = int(math.ceil((xmax + margin) / res)) - self.ix0
        h = int(math.ceil((ymax + margin) / res)) - self.iy0
        xs = (self.ix0 + np.arange(w) + 0.5) * res
        ys = (self.iy0 + np.arange(h) + 0.5) * res
        gx, gy = np.meshgrid(xs, ys)
        sd = world.signed_distance(np.stack([gx, gy], axis=-1))
        self.data = np.clip(sd, -FIELD_MAX_DISTANCE, FIELD_MAX_DISTANCE).astype(np.float32)

    def window(self, x: float, y: float, extra: Sequence[Box] = ()) -> Grid2D:
        res, n = FIELD_RESOLUTION, self.n
        ix = int(math.floor(x / res - 0.5 * n + 0.5))
        iy = int(math.floor(y / res - 0.5 * n + 0.5))
        out = np.full((n, n), FIELD_MAX_DISTANCE, dtype=np.float32)
        h, w = self.data.shape
        x0, y0 = ix - self.ix0, iy - self.iy0
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + n, w), min(y0 + n, h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = self.data[sy0:sy1, sx0:sx1]
        near = [b for b in extra if math.hypot(b.cx - x, b.cy - y) < FIELD_WINDOW]
        if near:
            xs = (ix + np.arange(n) + 0.5) * res
            ys = (iy + np.arange(n) + 0.5) * res
            gx, gy = np.meshgrid(xs, ys)
            sd = boxes_signed_distance(BoxArrays(near), np.stack([gx, gy], axis=-1))
            np.minimum(out, np.clip(sd, -FIELD_MAX_DISTANCE, FIELD_MAX_DISTANCE), out=out)
        return Grid2D(ix * res, iy * res, res, out, outside=FIELD_MAX_DISTANCE,
                      frame_id="odom")


def make_engine(name: str, world: World, spawns: Mapping[str, Pose2D],
                payloads: Mapping[str, float], friction: float, seed: int) -> Engine:
    if name == "kinematic":
        return KinematicEngine(world, spawns, payloads=payloads, seed=seed, chassis=CHASSIS)
    if name == "mujoco":
        return MujocoEngine(world, spawns, payloads=payloads, seed=seed,
                            floor_friction=float(friction))
    raise ValueError("unknown engine %r (kinematic or mujoco)" % (name,))


# --------------------------------------------------------------------------- the episode

def run_episode(seed: int, overrides: Optional[Mapping[str, Any]] = None, label: str = "",
                scenario: Optional[Mapping[str, Any]] = None,
                robot_params: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """One closed-loop episode of seed `seed` with the planner configured by `overrides`
    (planner parameter name -> value) on top of `robot_params` (see planner_params);
    scenario: options of the seeded scenario (SCENARIO_DEFAULTS). Never raises: an
    exception becomes the row's `error` (type, message and where it was raised)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    row: Dict[str, Any] = {"config": str(label), "seed": int(seed),
                           "overrides": json.dumps(dict(overrides or {}), sort_keys=True)}
    try:
        row.update(_episode(int(seed), dict(overrides or {}), dict(scenario or {}),
                            robot_params))
        row["error"] = ""
    except Exception as e:  # the row says what went wrong; a sweep never loses an episode
        tb = traceback.extract_tb(e.__traceback__)
        where = "%s:%d" % (Path(tb[-1].filename).name, tb[-1].lineno) if tb else ""
        row["error"] = ("%s: %s (%s)" % (type(e).__name__, e, where))[:500]
    row["wall_s"] = time.perf_counter() - t0
    row["cpu_s"] = time.thread_time() - c0   # this thread's CPU: wall_s less waiting for a core
    return row


class _Robot:
    """One robot of an episode: its task, its controller, what it did."""

    def __init__(self, rid: str, task: RobotTask, controller: Controller):
        self.rid, self.task, self.controller = rid, task, controller
        self.arbiter: Optional[YieldArbiter] = None
        self.gate = None                  # wm_safety.gate.SafetyGate, when in the loop
        self.gate_actions: Dict[str, int] = {}
        self.log: List[str] = []          # the controller's event lines, "t: text"
        self.distance = math.nan
        self.yields = 0
        self.outcome = None           # GoalOutcome once the goal ended
        self.t_end: Optional[float] = None
        self.plan_xy: Optional[np.ndarray] = None   # its shared intended path (H+1, 2)
        self.solve_ms: List[float] = []
        self.behaviors: Dict[str, int] = {}
        self.counters: Dict[str, int] = {}
        self.poses: List[Tuple[float, float, float]] = [tuple(task.start)]
        self.contact_cycles = 0

    @property
    def done(self) -> bool:
        return self.outcome is not None


def _episode(seed: int, overrides: Dict[str, Any], scenario: Dict[str, Any],
             robot_params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    _single_thread()
    sc = scenario_options(scenario)
    time_limit = float(sc["time_limit"])
    p = planner_params(dict({"navigate_timeout": time_limit}, **overrides), robot_params)
    spec = make_spec(seed, scenario)
    base, static_map = static_world(spec.world)
    world = World(base.boxes + list(spec.obstacles), base.bounds, name=base.name)
    model = motion_model_for(p)
    fallbacks0 = model.failures
    ids = ["robot%d" % (i + 1) for i in range(len(spec.robots))]
    robots: List[_Robot] = []
    for i, (rid, task) in enumerate(zip(ids, spec.robots)):
        c = Controller(dict(p, seed=int(p["seed"]) + i), motion_model=model)
        if spec.mapped:
            # the added boxes are not in the map: seen live only
            c.set_map(static_map)
        c.set_payload(task.payload_kg)
        c.set_goal(task.goal, p["map_frame"], 0.0)
        c.limiter.reset()
        robots.append(_Robot(rid, task, c))
    world_outline = None
    if sc["safety_gate"]:
        gp = gate_params()
        world_outline = outline_points(world.boxes)
        for r in robots:
            r.gate = build_gate(gp, payload_kg=r.task.payload_kg)[0]
    if len(robots) > 1:
        for r in robots:
            r.arbiter = YieldArbiter(r.rid, DeadlockConfig(), ())
    engine = make_engine(str(sc["engine"]), world, {r.rid: r.task.start for r in robots},
                         {r.rid: r.task.payload_kg for r in robots}, spec.friction, seed)
    truth = TruthField(world)
    lidar = sc["perception"] == "lidar"
    if sc["perception"] not in ("truth", "lidar"):
        raise ValueError("perception must be truth or lidar, got %r" % sc["perception"])
    perception = {r.rid: Perception(PerceptionConfig()) for r in robots} if lidar else {}
    identity = Pose2D(0.0, 0.0, 0.0)    # map -> odom: localization is exact
    n_sub = max(1, int(round(CONTROL_PERIOD * PHYSICS_RATE)))
    h = CONTROL_PERIOD / n_sub
    cycles = 0
    t = 0.0
    robot_contacts = 0
    while True:
        active = [r for r in robots if not r.done]
        if not active or t >= time_limit - 1e-9:
            break
        cycles += 1
        poses = {r.rid: engine.pose(r.rid) for r in robots}
        boxes = {r.rid: robot_box(poses[r.rid], *CHASSIS, name=r.rid) for r in robots}
        plans = {r.rid: r.plan_xy for r in robots}
        if len(robots) > 1:
            _fleet(t, robots, poses, plans, engine)
        for r in robots:
            pose = poses[r.rid]
            if r.done:   # parked: stands where it stopped, an obstacle to the others
                engine.set_command(r.rid, 0.0, 0.0)
                continue
            v, w = engine.body_velocity(r.rid)
            others = [boxes[o.rid] for o in robots if o is not r]
            neighbours = [_neighbour(o.rid, plans[o.rid], poses[o.rid]) for o in robots
                          if o is not r]
            if len(robots) > 1:   # the shared motion model plans for this robot's load
                model.set_payload(r.task.payload_kg)
            if lidar:
                scan = engine.scan(r.rid)
                xyz = np.stack([scan["x"].ravel(), scan["y"].ravel(), scan["z"].ravel()],
                               axis=1)
                field = perception[r.rid].process(
                    xyz[np.isfinite(xyz).all(axis=1)], LIDAR_MOUNT, pose).distance_field
            else:
                field = truth.window(pose.x, pose.y, others)
            out = r.controller.step(CycleInput(
                t, RobotState(pose.x, pose.y, pose.yaw, v, w), field, identity, neighbours))
            r.behaviors[out.behavior] = r.behaviors.get(out.behavior, 0) + 1
            for k in out.counters:
                r.counters[k] = r.counters.get(k, 0) + 1
            for _, text in out.log:
                r.log.append("%.1f %s: %s" % (t, r.rid, text))
            if out.result is not None:
                r.solve_ms.append(float(out.result.solve_time_ms))
                r.plan_xy = np.asarray(out.result.trajectory)[:, :2].copy()
            else:   # turning, recovering, stopping: it stays about here
                r.plan_xy = None
            if math.isfinite(out.distance_remaining) and r.controller.detour is None:
                r.distance = out.distance_remaining
            if out.outcome is not None:
                r.outcome, r.t_end = out.outcome, t
                r.plan_xy = None
            cmd = out.cmd
            if r.gate is not None:
                cmd = _through_gate(r, t, pose, cmd, world_outline,
                                    [boxes[o.rid] for o in robots if o is not r])
            engine.set_command(r.rid, cmd[0], cmd[1])
        contact = {r.rid: False for r in robots}
        for _ in range(n_sub):
            engine.step(h)
            qs = {r.rid: engine.pose(r.rid) for r in robots}
            for r in robots:
                if chassis_overlaps(world.arrays, qs[r.rid], CHASSIS):
                    contact[r.rid] = True
            if len(robots) > 1 and _robots_touch(robots, qs):
                robot_contacts += 1
                for rid in _robots_touching(robots, qs):
                    contact[rid] = True
        for r in robots:
            r.contact_cycles += int(contact[r.rid])
            q = qs[r.rid]
            r.poses.append((q.x, q.y, q.yaw))
        t = round(cycles * CONTROL_PERIOD, 6)
    return _kpis(spec, sc, robots, world, t, cycles, robot_contacts, model, fallbacks0,
                 engine)


def _through_gate(r: _Robot, t: float, pose: Pose2D, cmd: Tuple[float, float],
                  world_outline: np.ndarray, others: Sequence[Box]) -> Tuple[float, float]:
    """The robot's command after its safety gate, on a perfect 2D scan of what is near."""
    reach = r.gate.zones.reach + 0.5
    pts = world_outline
    if others:
        pts = np.concatenate([pts, outline_points(others)])
    d = pts - np.array([pose.x, pose.y])
    near = d[(np.abs(d[:, 0]) <= reach) & (np.abs(d[:, 1]) <= reach)]
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    base = np.stack([c * near[:, 0] + s * near[:, 1], -s * near[:, 0] + c * near[:, 1]],
                    axis=1)
    r.gate.set_points(base, t)
    r.gate.mux.command(NAV, cmd[0], cmd[1], t)
    g = r.gate.update(t)
    r.gate_actions[g.action] = r.gate_actions.get(g.action, 0) + 1
    return g.cmd


_FOOT = tuple((float(x), float(y)) for x, y in Footprint.rectangle(*CHASSIS).polygon)


def _fleet(t: float, robots: Sequence[_Robot], poses: Mapping[str, Pose2D],
           plans: Mapping[str, Optional[np.ndarray]], engine: Engine) -> None:
    """Every robot's deadlock rule on the fleet's shared entries (one cycle old plans)."""
    entries = {}
    for r in robots:
        q = poses[r.rid]
        plan = plans[r.rid]
        if r.done:
            traj = ()   # parked: shares no intended path
        elif plan is None:
            traj = ((t, q.x, q.y), (t + 1.0, q.x, q.y))   # turning, waiting: stays here
        else:
            traj = tuple((t + (k - 1) * CONTROL_PERIOD, float(x), float(y))
                         for k, (x, y) in enumerate(plan) if k >= 1)
        entries[r.rid] = RobotEntry(r.rid, "map", t, t, (q.x, q.y, q.yaw),
                                    engine.body_velocity(r.rid), _FOOT, 0, traj)
    for r in robots:
        if r.done:
            continue
        others = [entries[o.rid] for o in robots if o is not r]
        act = r.arbiter.update(t, entries[r.rid], others, True,
                               r.distance if math.isfinite(r.distance) else None)
        if act is None:
            continue
        if act.kind == "yield":
            r.yields += 1
            r.controller.set_detour(Pose2D(act.place[0], act.place[1], poses[r.rid].yaw),
                                    "map")
        elif act.kind == "release":
            r.controller.set_detour(None)


def _neighbour(rid: str, plan_xy: Optional[np.ndarray], pose: Pose2D) -> NeighbourPlan:
    """Another robot as the fleet critic sees it: its last shared path (one control period
    old: step 1 is now), or standing where it is."""
    if plan_xy is None or len(plan_xy) < 2:
        return NeighbourPlan(rid, np.array([0.0]), np.array([[pose.x, pose.y]]),
                             math.hypot(*CHASSIS) / 2.0)
    times = (np.arange(len(plan_xy)) - 1) * CONTROL_PERIOD
    return NeighbourPlan(rid, times, plan_xy, math.hypot(*CHASSIS) / 2.0)


def _robots_touching(robots: Sequence[_Robot], qs: Mapping[str, Pose2D]) -> List[str]:
    out = []
    for i, a in enumerate(robots):
        for b in robots[i + 1:]:
            qa, qb = qs[a.rid], qs[b.rid]
            if math.hypot(qa.x - qb.x, qa.y - qb.y) > math.hypot(*CHASSIS) + 0.01:
                continue
            if chassis_overlaps(BoxArrays([robot_box(qb, *CHASSIS)]), qa, CHASSIS):
                out += [a.rid, b.rid]
    return out


def _robots_touch(robots, qs) -> bool:
    return bool(_robots_touching(robots, qs))


def _finite(v: float) -> Optional[float]:
    """None for NaN: rows compare equal and serialise as JSON null."""
    return None if v is None or not math.isfinite(v) else float(v)


def _correct(passable: Optional[bool], outcomes: Sequence[str]) -> bool:
    reached = all(o == REACHED for o in outcomes)
    no_way = all(o == "no_way" for o in outcomes)
    if passable is None:
        return reached or no_way
    return reached if passable else no_way


def _kpis(spec: EpisodeSpec, sc, robots: Sequence[_Robot], world: World, t: float,
          cycles: int, robot_contacts: int, model, fallbacks0, engine) -> Dict[str, Any]:
    footprint = Footprint.rectangle(*CHASSIS)
    outcomes = [r.outcome.code if r.outcome is not None else "time_limit" for r in robots]
    reached = [o == REACHED for o in outcomes]
    first = robots[0]
    end = engine.pose(first.rid)
    clear = min(float(np.min(footprint_clearance(world, np.asarray(r.poses), footprint)))
                for r in robots)
    solve = [v for r in robots for v in r.solve_ms]
    behaviors: Dict[str, int] = {}
    counters: Dict[str, int] = {}
    gate: Dict[str, int] = {}
    for r in robots:
        for k, v in r.gate_actions.items():
            gate[k] = gate.get(k, 0) + v
        for k, v in r.behaviors.items():
            behaviors[k] = behaviors.get(k, 0) + v
        for k, v in r.counters.items():
            counters[k] = counters.get(k, 0) + v
    path_len = [float(np.sum(np.hypot(*np.diff(np.asarray(r.poses)[:, :2], axis=0).T)))
                for r in robots]
    times = [r.t_end for r, ok in zip(robots, reached) if ok]
    straight = [math.hypot(r.task.goal.x - r.task.start.x, r.task.goal.y - r.task.start.y)
                for r in robots]
    messages = [r.outcome.message if r.outcome is not None else "" for r in robots]
    row = {
        "family": spec.family, "kind": spec.kind or spec.family,
        "motion_model": model.name, "engine": str(sc["engine"]),
        "world": spec.world, "robots": len(robots),
        "start_x": first.task.start.x, "start_y": first.task.start.y,
        "goal_x": first.task.goal.x, "goal_y": first.task.goal.y,
        "distance_m": straight[0], "straight_m_total": float(sum(straight)),
        "route_length_m": _finite(spec.route_length_m), "obstacles": len(spec.obstacles),
        "blocking": spec.blocking, "payload_kg": first.task.payload_kg,
        "friction": spec.friction, "gap_width_m": _finite(spec.gap_width),
        "passable": spec.passable,
        "goals": len(robots), "goals_reached": int(sum(reached)),
        "reached": bool(all(reached)),
        # the outcome the scenario calls for: every goal reached where the way exists, "no
        # way" (and no contact) where it does not
        "correct": _correct(spec.passable, outcomes),
        "outcome": next((o for o in outcomes if o != REACHED), REACHED),
        "outcomes": json.dumps(outcomes), "abort_message": next((m for m in messages if m), ""),
        "time_to_goal_s": max(times) if times and all(reached) else None, "sim_s": t,
        "path_length_m": path_len[0], "path_length_m_total": float(sum(path_len)),
        "min_clearance_m": clear,
        "collisions": int(sum(r.contact_cycles for r in robots)),
        "robot_contacts": int(robot_contacts),
        "final_error_m": math.hypot(end.x - first.task.goal.x, end.y - first.task.goal.y),
        "cycles": cycles, "plan_failures": int(sum(v for k, v in counters.items()
                                                   if k.startswith("planner_"))),
        "rotations": int(behaviors.get("rotate_to_heading", 0)),
        "recoveries": int(counters.get("recoveries", 0)),
        "yields": int(sum(r.yields for r in robots)),
        "recovery_cycles": int(sum(v for k, v in behaviors.items()
                                   if k in ("clear_and_replan", "back_up", "spin", "wait"))),
        "behaviors": json.dumps(behaviors, sort_keys=True),
        "gate_actions": json.dumps(gate, sort_keys=True),
        "gate_stops": int(gate.get("stop", 0)), "gate_escapes": int(gate.get("escape", 0)),
        "wm_fallbacks": int(model.failures - fallbacks0),
        "solve_ms_mean": float(np.mean(solve)) if solve else None,
        "solve_ms_p99": float(np.percentile(solve, 99)) if solve else None,
    }
    if not row["correct"]:   # the controller's own account of what went wrong
        row["log"] = json.dumps(sorted((line for r in robots for line in r.log),
                                       key=lambda x: float(x.split(" ", 1)[0]))[-25:])
    every = max(1, int(round(TRACE_PERIOD / CONTROL_PERIOD)))
    row["trace"] = "" if row["correct"] and row["collisions"] == 0 else json.dumps(
        {r.rid: [[round(x, 2), round(y, 2)] for x, y, _ in r.poses[::every]] for r in robots})
    return row
