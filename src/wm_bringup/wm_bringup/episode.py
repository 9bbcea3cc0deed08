"""One seeded closed-loop episode in process: the planner's own code driving the simulator's
kinematic robot to a goal, no ROS, no DDS, no node processes.

`make eval` (wm_bringup.evaluate) runs the real nodes over DDS: a few scenarios, minutes
each. A sweep over thousands of seeded scenarios and planner configurations
(wm_bringup.sweep) needs an episode that costs a few CPU seconds; this is it.

What is real and what stands in:

* The robot: wm_sim.engine.KinematicEngine, a DiffDriveRobot with actuator lag, slip and
  payload (the simulator node's `engine: kinematic`), stepped at the simulator node's
  default physics rate (50 Hz) within each 0.1 s control cycle (its control_period).
* The planner: the same objects the planner node builds (wm_planner.configure
  build_optimizer / build_nmpc / build_rotate, CommandLimiter, RouteManager, goal_reached)
  from the node's parameters: the declared defaults (wm_planner.params), then the planner
  section of config/robot.yaml (what the robots and `make eval` run), then the case's
  overrides. The cycle below mirrors PlannerNode._control: goal check, global route, turn
  on the spot, MPPI (or NMPC / hybrid), command limiter; a failed solve is a controlled stop.
  The seed is fixed and the wall-clock limits raised (time_budget_ms, nmpc_max_time_ms:
  1000 ms) so that a result depends on the seed and the configuration, never on how fast
  or busy the machine is.
* Perception: **perfect**. Each cycle the planner gets the true signed distance of the
  world (World.signed_distance at the cell centres of the perception node's 16 m, 0.1 m
  window on the same lattice, saturated at its max_distance of 3 m), and the true pose and
  body velocity as its odometry (odom = map, localization exact). So an episode measures
  the planner and its motion model, not perception, odometry drift or DDS latency.
* The scenario: the seed alone (never the planner configuration, so configurations are
  compared on the same episodes) picks, in warehouse_small, a start and a goal a few metres
  apart in free space, a payload, and up to a few box obstacles (pallets); half the
  episodes (blocking_probability) have one across the straight line between start and
  goal. The obstacles are not
  in the static map the global route plans on (like a dropped pallet): the planner learns
  about them from the distance field. The goal is checked to be reachable (a route with
  margin exists through the obstacles) before the episode runs.

KPIs (one flat, JSON-serialisable dict per episode, see `run_episode`): reached, time to
goal (simulated s), true path length, minimum clearance between the planner's footprint
circles and the obstacles along the true path (the `make eval` definition; negative: the
conservative footprint overlaps), collisions (control cycles in which the 0.7 x 0.55 m
chassis overlapped an obstacle at any physics step; the kinematic engine has no contact
response, so the robot drives on), final distance to the goal, solve times (wall clock),
the episode's wall and CPU seconds.
An exception anywhere in the episode becomes the row's `error`, never a lost row.

Plain Python (no rclpy); Python 3.8 compatible.
"""
from __future__ import annotations

import json
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from wm_common.geometry import Pose2D
from wm_planner.configure import node_params_from_yaml
from wm_planner.configure import planner_params as planner_params_of
from wm_common.grid import Grid2D
from wm_common.map_io import OccupancyMap
from wm_sim.world import Box, BoxArrays, World, boxes_signed_distance

REPO = Path(__file__).resolve().parents[3]   # the source tree (symlink install: resolved)
WORLD_MODEL = "worldmodel-1.0.0"
CONTROL_PERIOD = 0.1    # s, the simulator node's control_period and the planner's dt
PHYSICS_RATE = 50.0     # Hz, the simulator node's physics_rate (sub-steps of a cycle)
MAP_RESOLUTION = 0.05   # m, the simulator node's map_resolution (the route's static map)
CHASSIS = (0.7, 0.55)   # m, length x width of the robot body (wm_sim.world.robot_box)
# The planner node's perception input (config/robot.yaml, perception): window and lattice.
FIELD_WINDOW = 16.0
FIELD_RESOLUTION = 0.1
FIELD_MAX_DISTANCE = 3.0

# Scenario generation: every key may be set per sweep (its `scenario:` section).
SCENARIO_DEFAULTS: Dict[str, Any] = {
    "world": "warehouse_small",
    "min_distance": 3.0,       # m, straight line start -> goal
    "max_distance": 8.0,
    "clearance": 0.75,         # m, start and goal from the nearest static obstacle
    "max_obstacles": 3,        # 0..max_obstacles random boxes per episode
    "blocking_probability": 0.5,  # of an episode with one of them across the straight line
    "obstacle_clearance": 0.9,  # m, start and goal from every added box
    "reachable_radius": 0.40,  # m, the reachability check's route clearance
    "payload_max": 150.0,      # kg, uniform in [0, payload_max] (the world model's range)
    "time_limit": 30.0,        # simulated s
}

# Planner parameters an episode always sets (reproducible, machine-independent results):
# MPPI's and the NMPC's wall-clock limits out of the way (their maxima).
FIXED = {"time_budget_ms": 1000.0, "nmpc_max_time_ms": 1000.0}
DEFAULT_PLANNER_SEED = 7


# --------------------------------------------------------------------------- parameters

_ROBOT_YAML_CACHE: Dict[str, Dict[str, Any]] = {}


def robot_planner_params(path: Optional[str] = None) -> Dict[str, Any]:
    """The planner section of config/robot.yaml (or `path`), flattened; {} for path ''."""
    if path == "":
        return {}
    if path is None:
        path = REPO / "config" / "robot.yaml"
        if not path.is_file():   # an installed package outside the source tree
            from wm_bringup.runner import share_dir
            path = share_dir() / "config" / "robot.yaml"
    p = str(path)
    if p not in _ROBOT_YAML_CACHE:
        _ROBOT_YAML_CACHE[p] = node_params_from_yaml(p, "planner")
    return dict(_ROBOT_YAML_CACHE[p])


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


# --------------------------------------------------------------------------- scenario

@dataclass(frozen=True)
class EpisodeSpec:
    """Everything the seed decides: the robot's start, its goal, payload and added boxes."""

    seed: int
    world: str
    start: Pose2D
    goal: Pose2D
    payload_kg: float
    obstacles: Tuple[Box, ...]
    blocking: bool            # one box placed across the straight line start -> goal
    route_length_m: float     # shortest route with every box known (reachable_radius)


_STATIC_CACHE: Dict[str, Tuple[World, OccupancyMap]] = {}


def _static_world(name: str) -> Tuple[World, OccupancyMap]:
    """(World, its map_server map at MAP_RESOLUTION), rasterized once per process."""
    if name not in _STATIC_CACHE:
        from wm_sim.scenario import load_world
        world = load_world(name)
        occ, origin = world.rasterize(MAP_RESOLUTION)
        _STATIC_CACHE[name] = (world, OccupancyMap(occ.astype(np.int16), MAP_RESOLUTION,
                                                   origin.x, origin.y))
    return _STATIC_CACHE[name]


def _with_boxes(static_map: OccupancyMap, boxes) -> OccupancyMap:
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


def _free_point(world: World, rng, clearance: float) -> Optional[Tuple[float, float]]:
    xmin, ymin, xmax, ymax = world.bounds
    for _ in range(200):
        x, y = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
        if float(world.signed_distance(np.array([x, y]))) >= clearance:
            return float(x), float(y)
    return None


def make_spec(seed: int, scenario: Optional[Mapping[str, Any]] = None) -> EpisodeSpec:
    """The episode of `seed` (deterministic; independent of the planner configuration)."""
    from wm_planner.global_planner import GlobalPlanner

    sc = dict(SCENARIO_DEFAULTS)
    unknown = sorted(set(scenario or {}) - set(sc))
    if unknown:
        raise ValueError("unknown scenario option(s) %s; known: %s" % (unknown, sorted(sc)))
    sc.update(scenario or {})
    world, static_map = _static_world(str(sc["world"]))
    rng = np.random.default_rng([int(seed), 0x5EED])
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
    payload = float(rng.uniform(0.0, float(sc["payload_max"])))

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
        planner = GlobalPlanner(_with_boxes(static_map, boxes), float(sc["reachable_radius"]),
                                inflation=0.0)
        plan = planner.plan(s, g)
        if plan.route.shape[0] >= 2 and not plan.goal_snapped and not plan.start_snapped:
            route_len = float(plan.length)
            blocking = block
            break
    else:
        raise RuntimeError("no reachable episode for seed %d" % seed)
    return EpisodeSpec(int(seed), str(sc["world"]), start, goal, payload, tuple(boxes),
                       bool(blocking), route_len)


# --------------------------------------------------------------------------- helpers

_MODEL_CACHE: Dict[tuple, Any] = {}


def motion_model_for(p: Mapping[str, Any]):
    """The motion model of parameters `p`; world models loaded (and scripted) once per
    process, keyed by artifact, and shared by the episodes that process runs."""
    from wm_planner.configure import build_motion_model, resolve_artifact
    from wm_planner.motion_model import KinematicMotionModel

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
    try:
        import torch
    except ImportError:  # pragma: no cover - kinematic episodes without torch
        return
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


class _TruthField:
    """The true signed distance on the perception lattice, precomputed once per episode
    over the world plus a window's margin; `window(pose)` cuts the perception node's window
    (origin on the global lattice, wm_perception.pipeline.window_origin) as a fresh Grid2D."""

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

    def window(self, x: float, y: float) -> Grid2D:
        res, n = FIELD_RESOLUTION, self.n
        ix = int(math.floor(x / res - 0.5 * n + 0.5))
        iy = int(math.floor(y / res - 0.5 * n + 0.5))
        out = np.full((n, n), FIELD_MAX_DISTANCE, dtype=np.float32)
        h, w = self.data.shape
        x0, y0 = ix - self.ix0, iy - self.iy0
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + n, w), min(y0 + n, h)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = self.data[sy0:sy1, sx0:sx1]
        return Grid2D(ix * res, iy * res, res, out, outside=FIELD_MAX_DISTANCE,
                      frame_id="odom")


def chassis_overlaps(world: World, pose: Pose2D, size: Tuple[float, float] = CHASSIS) -> bool:
    """Whether the robot's rectangular chassis at `pose` overlaps any box of `world`
    (separating axis test: two rectangles are disjoint iff some edge normal of one
    separates their projections)."""
    a = world.arrays
    if a.n == 0:
        return False
    hx, hy = 0.5 * size[0], 0.5 * size[1]
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    dx, dy = a.cx - pose.x, a.cy - pose.y
    separated = np.zeros(a.n, dtype=bool)
    for ux, uy, h_own in ((c, s, hx), (-s, c, hy)):           # the chassis's axes
        proj_box = a.hx * np.abs(ux * a.cos + uy * a.sin) + a.hy * np.abs(-ux * a.sin + uy * a.cos)
        separated |= np.abs(ux * dx + uy * dy) > h_own + proj_box
    for k in range(2):                                       # each box's own axes
        ux = a.cos if k == 0 else -a.sin
        uy = a.sin if k == 0 else a.cos
        h_box = a.hx if k == 0 else a.hy
        proj_own = hx * np.abs(ux * c + uy * s) + hy * np.abs(-ux * s + uy * c)
        separated |= np.abs(ux * dx + uy * dy) > h_box + proj_own
    return bool(np.any(~separated))


def _footprint(p: Mapping[str, Any]) -> np.ndarray:
    flat = [float(v) for v in p.get("footprint_circles") or []]
    if len(flat) >= 3:
        return np.asarray(flat, dtype=np.float64).reshape(-1, 3)
    return np.array([[0.0, 0.0, float(p["robot_radius"])]])


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


def _episode(seed: int, overrides: Dict[str, Any], scenario: Dict[str, Any],
             robot_params: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    from wm_bringup.runner import footprint_clearance
    from wm_planner.command_limiter import CommandLimiter
    from wm_planner.configure import build_nmpc, build_optimizer, build_rotate
    from wm_planner.goal_checker import goal_reached
    from wm_planner.models import Goal, RobotState
    from wm_planner.route_manager import RouteManager
    from wm_planner.solver import plan_with
    from wm_sim.engine import KinematicEngine

    _single_thread()
    p = planner_params(overrides, robot_params)
    spec = make_spec(seed, scenario)
    time_limit = float(dict(SCENARIO_DEFAULTS, **scenario)["time_limit"])
    static_world, static_map = _static_world(spec.world)
    world = World(static_world.boxes + list(spec.obstacles), static_world.bounds,
                  name=static_world.name)

    # The planner, as PlannerNode.on_configure builds it.
    model = motion_model_for(p)
    fallbacks0 = getattr(model, "failures", 0)
    optimizer = build_optimizer(p, motion_model=model)
    nmpc = build_nmpc(p)
    rotate = build_rotate(p)
    limiter = CommandLimiter(optimizer.limits, 1.0 / p["control_rate"])
    limiter.reset()
    routes = None
    if p["global_route"]:
        routes = RouteManager(p["robot_radius"], replan_period=p["replan_period"],
                              external_timeout=p["external_path_timeout"],
                              planning_resolution=p["route_resolution"],
                              inflation=p["route_inflation"])
        routes.set_map(static_map)   # the added boxes are not in the map: seen live only
    # the payload the simulator publishes (latched) reaches the motion model
    if getattr(model, "set_payload", None) is not None:
        model.set_payload(spec.payload_kg)
    if nmpc is not None:
        nmpc.set_payload(spec.payload_kg)
    optimizer.reset()
    if nmpc is not None:
        nmpc.reset()
    if routes is not None:
        routes.new_goal()

    engine = KinematicEngine(world, {"robot": spec.start},
                             payloads={"robot": spec.payload_kg}, seed=seed)
    truth = _TruthField(world)
    circles = _footprint(p)
    identity = Pose2D(0.0, 0.0, 0.0)    # map -> odom: localization is exact
    target = Goal(spec.goal.x, spec.goal.y, spec.goal.yaw,
                  xy_tolerance=p["xy_goal_tolerance"], yaw_tolerance=p["yaw_goal_tolerance"])
    n_sub = max(1, int(round(CONTROL_PERIOD * PHYSICS_RATE)))
    h = CONTROL_PERIOD / n_sub

    solve_ms: List[float] = []
    poses = [tuple(spec.start)]
    collisions = plan_failures = rotations = cycles = 0
    reached = False
    t = 0.0
    while True:
        pose = engine.pose("robot")
        v, w = engine.body_velocity("robot")
        state = RobotState(pose.x, pose.y, pose.yaw, v, w)
        if goal_reached(state, target):
            reached = True
            break
        if t >= time_limit - 1e-9:
            break
        cycles += 1
        field = truth.window(pose.x, pose.y)
        route = None
        if routes is not None:
            route, _ = routes.update(t, pose, (spec.goal.x, spec.goal.y), field, identity)
        turn = None
        if rotate is not None:
            turn = rotate.command(pose.x, pose.y, pose.yaw, v, route, field,
                                  (spec.goal.x, spec.goal.y), p["xy_goal_tolerance"])
        if turn is not None:
            rotations += 1
            cmd = limiter.limit(turn[0], turn[1], t)
        else:
            result = plan_with(p["solver"], optimizer, nmpc, state, target, field,
                               route=route, neighbours=[])
            solve_ms.append(float(result.solve_time_ms))
            if result.status != "ok":
                plan_failures += 1
                cmd = limiter.stop_step(t)
            else:
                cmd = limiter.limit(float(result.controls[0, 0]), float(result.controls[0, 1]),
                                    t)
        engine.set_command("robot", cmd[0], cmd[1])
        contact = False
        for _ in range(n_sub):
            engine.step(h)
            q = engine.pose("robot")
            poses.append((q.x, q.y, q.yaw))
            contact = contact or chassis_overlaps(world, q)
        collisions += int(contact)
        t = round(cycles * CONTROL_PERIOD, 6)

    xyz = np.asarray(poses, dtype=np.float64)
    end = engine.pose("robot")
    clearance = footprint_clearance(world, xyz, circles)
    return {
        "motion_model": getattr(model, "name", "kinematic"),
        "world": spec.world, "start_x": spec.start.x, "start_y": spec.start.y,
        "goal_x": spec.goal.x, "goal_y": spec.goal.y,
        "distance_m": math.hypot(spec.goal.x - spec.start.x, spec.goal.y - spec.start.y),
        "route_length_m": spec.route_length_m, "obstacles": len(spec.obstacles),
        "blocking": spec.blocking, "payload_kg": spec.payload_kg,
        "reached": reached, "time_to_goal_s": t if reached else None, "sim_s": t,
        "path_length_m": float(np.sum(np.hypot(*np.diff(xyz[:, :2], axis=0).T))),
        "min_clearance_m": float(np.min(clearance)), "collisions": collisions,
        "final_error_m": math.hypot(end.x - spec.goal.x, end.y - spec.goal.y),
        "cycles": cycles, "plan_failures": plan_failures, "rotations": rotations,
        "wm_fallbacks": int(getattr(model, "failures", 0) - fallbacks0),
        "solve_ms_mean": float(np.mean(solve_ms)) if solve_ms else None,
        "solve_ms_p99": float(np.percentile(solve_ms, 99)) if solve_ms else None,
    }
