"""Driving-data generator for the world model: robots driven by varied commands, recorded to
rosbag2/MCAP bags (see wm_world_model.recording for the topics and time conventions).

    python -m wm_sim.datagen --out data/run1 --engine kinematic --robots 2 --episodes 6 \
        --episode-seconds 60 --seed 1 --modes random,scripted,planner \
        --payloads 0,50,150 --frictions 0.5,0.8,1.0

Output: one bag per episode, `<out>/episode_0000/` ... (a rosbag2 directory: metadata.yaml
and episode_0000.mcap), each starting at simulated time 0, plus `<out>/episodes.jsonl`
with one line per episode (its "start" description and statistics). One bag per episode
keeps every bag's clock monotonic from 0, lets episodes be generated in parallel later,
and lets training split train/validation by file.

Episode e (all robots of it share one command mode, one floor friction):
  * mode     = modes[e % len(modes)] (round robin, so a few episodes cover all modes);
  * friction = a random choice of --frictions, payloads = a random choice of --payloads
    per robot (constant over the episode, published on /<id>/payload at 1 Hz);
  * spawns   = random free poses (>= 0.7 m from obstacles, >= 1.5 m from each other).
Timing: commands every 0.1 s (the planner's dt, zero-order hold), physics, odometry and
ground truth at 50 Hz (engine.step(0.02)), localization at 10 Hz.

Command modes (limits v in [-0.2, 1.0] m/s, w in [-1.5, 1.5] rad/s):
  random    band-limited random: knots every 0.4-2.5 s drawn uniformly within the limits
            (10 % of them a stop), joined by cosine interpolation (C1, no steps);
  scripted  a random sequence of patterns with step changes: straight, reverse, arc, spin,
            stop_and_go, slalom (each logged as a "pattern" event on /wm/episode);
  planner   the planner's control cycle (wm_planner.controller.Controller, what the planner
            node runs: route, recoveries, turn on the spot, MPPI, limiter; default
            PLANNER_PARAMS, seeded) toward random reachable goals (free cells connected to
            the robot, >= 2 m away), on the perception core's distance field from the
            engine's LiDAR scan, in the odom frame with map->odom from the localization pose,
            exactly as the nodes do; a new goal when reached or aborted (navigate_timeout
            60 s; "goal" events).

Collisions: after every physics step a robot with engine.in_contact() is reset: put at rest
at a new random free pose (engine.reset_robot(id, pose) when the engine has it, the
KinematicEngine's own robot model otherwise), its odometry restarts at the origin of a new
odom frame and its command generator starts over; a "reset" event marks the instant, and
read_bag() turns it into a `segment` index. An engine that cannot reset a robot (no
reset_robot) retires it instead: it is stopped and no longer recorded ("retire" event).

Floor friction: MujocoEngine(floor_friction=mu). The kinematic engine has no friction, so
its slip coefficients (slip_long, slip_yaw, slip_turn_gain, lateral_slip_gain) are scaled
by 1 / mu: mu = 1 is the default model, lower friction slips more.

Deterministic: everything random is drawn from numpy Generators seeded by (--seed, episode,
...); MPPI runs one iteration per cycle, so its time budget never changes the result.

Plain Python (no rclpy); Python 3.8 syntax.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from wm_common.geometry import Pose2D, compose, inverse
from wm_common.params import defaults
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_planner.controller import Controller, CycleInput
from wm_planner.params import PLANNER_PARAMS
from wm_world_model.recording import BagWriter
from wm_world_model.state import RobotState
from .dynamics import DiffDriveParams
from .engine import Engine, KinematicEngine
from .lidar import LidarSpec
from .localization import Localization
from .odometry import WheelOdometry
from .scenario import WORLDS
from .world import World

V_MIN, V_MAX, W_MAX = -0.2, 1.0, 1.5
CONTROL_PERIOD = 0.1
PHYSICS_RATE = 50.0
LOCALIZATION_RATE = 10.0
PAYLOAD_PERIOD = 1.0
MODES = ("random", "scripted", "planner")
SPAWN_CLEARANCE = 0.7     # m from the nearest box, robot centre
ROBOT_SEPARATION = 1.5    # m between robot centres at spawn / reset
GOAL_CLEARANCE = 0.6
GOAL_MIN_DISTANCE = 2.0
GOAL_TIMEOUT = 60.0
LIDAR_COLUMNS = 512       # the simulator node's default (lidar_columns)


# ---------------------------------------------------------------------- free space
class FreeSpace:
    """Cells of a world with enough clearance, and their connected components, for spawn
    poses and reachable goals."""

    def __init__(self, world: World, clearance: float, resolution: float = 0.1):
        from scipy import ndimage

        xmin, ymin, xmax, ymax = world.bounds
        nx = int(math.ceil((xmax - xmin) / resolution))
        ny = int(math.ceil((ymax - ymin) / resolution))
        xs = xmin + (np.arange(nx) + 0.5) * resolution
        ys = ymin + (np.arange(ny) + 0.5) * resolution
        gx, gy = np.meshgrid(xs, ys)
        self.xy = np.stack([gx, gy], axis=-1)                 # (ny, nx, 2)
        self.sd = world.signed_distance(self.xy)
        free = self.sd > clearance
        self.labels, n = ndimage.label(free)
        sizes = np.bincount(self.labels.ravel(), minlength=n + 1)
        sizes[0] = 0
        self.largest = int(np.argmax(sizes)) if n > 0 else 0
        self.resolution = resolution
        self.origin = (xmin, ymin)
        if n == 0:
            raise ValueError("world %s has no free space with clearance %.2f m"
                             % (world.name, clearance))

    def component_at(self, x: float, y: float) -> int:
        ix = int((x - self.origin[0]) / self.resolution)
        iy = int((y - self.origin[1]) / self.resolution)
        if 0 <= iy < self.labels.shape[0] and 0 <= ix < self.labels.shape[1]:
            lab = int(self.labels[iy, ix])
            if lab > 0:
                return lab
        return self.largest

    def sample(self, rng: np.random.Generator, component: Optional[int] = None,
               away_from: Sequence[Tuple[float, float]] = (), min_distance: float = 0.0,
               tries: int = 200) -> Tuple[float, float]:
        comp = self.largest if component is None else component
        cells = np.flatnonzero(self.labels.ravel() == comp)
        pts = self.xy.reshape(-1, 2)
        best, best_d = None, -1.0
        for _ in range(tries):
            x, y = pts[int(cells[rng.integers(cells.size)])]
            d = min([math.hypot(x - a, y - b) for a, b in away_from] or [math.inf])
            if d >= min_distance:
                return float(x), float(y)
            if d > best_d:
                best, best_d = (float(x), float(y)), d
        return best  # type: ignore[return-value]


# ---------------------------------------------------------------------- command generators
class CommandGenerator:
    """Per-robot source of (v, w) commands, called once per control period."""

    name = ""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def reset(self, t: float) -> None:
        """Start over (episode start, or after the robot was reset)."""

    def command(self, t: float, ctx: "RobotRun") -> Tuple[float, float]:
        raise NotImplementedError


def _clip_cmd(v: float, w: float) -> Tuple[float, float]:
    return float(min(max(v, V_MIN), V_MAX)), float(min(max(w, -W_MAX), W_MAX))


class RandomCommands(CommandGenerator):
    """Band-limited random (v, w): random knots, cosine-interpolated in between."""

    name = "random"
    KNOT_SPACING = (0.4, 2.5)
    STOP_PROB = 0.1

    def reset(self, t: float) -> None:
        self._t0, self._k0 = t, (0.0, 0.0)
        self._t1, self._k1 = t + self._spacing(), self._knot()

    def _spacing(self) -> float:
        return float(self.rng.uniform(*self.KNOT_SPACING))

    def _knot(self) -> Tuple[float, float]:
        if self.rng.random() < self.STOP_PROB:
            return (0.0, 0.0)
        return (float(self.rng.uniform(V_MIN, V_MAX)), float(self.rng.uniform(-W_MAX, W_MAX)))

    def command(self, t, ctx):
        while t >= self._t1:
            self._t0, self._k0 = self._t1, self._k1
            self._t1, self._k1 = self._t1 + self._spacing(), self._knot()
        s = (t - self._t0) / (self._t1 - self._t0)
        a = 0.5 - 0.5 * math.cos(math.pi * s)
        return _clip_cmd(self._k0[0] + a * (self._k1[0] - self._k0[0]),
                         self._k0[1] + a * (self._k1[1] - self._k0[1]))


class ScriptedCommands(CommandGenerator):
    """Random sequence of textbook excitation patterns (steps, arcs, spins, ...)."""

    name = "scripted"
    PATTERNS = ("straight", "reverse", "arc", "spin", "stop_and_go", "slalom")

    def reset(self, t: float) -> None:
        self._end = t
        self.pattern = ""
        self._p: Dict[str, float] = {}

    def _next(self, t: float) -> None:
        r = self.rng
        name = self.PATTERNS[int(r.integers(len(self.PATTERNS)))]
        sign = 1.0 if r.random() < 0.5 else -1.0
        if name == "straight":
            p = dict(v=r.uniform(0.2, V_MAX), w=0.0, dur=r.uniform(2.0, 5.0))
        elif name == "reverse":
            p = dict(v=r.uniform(V_MIN, -0.05), w=0.0, dur=r.uniform(1.0, 2.5))
        elif name == "arc":
            p = dict(v=r.uniform(0.2, 0.8), w=sign * r.uniform(0.2, 1.2),
                     dur=r.uniform(2.0, 5.0))
        elif name == "spin":
            p = dict(v=0.0, w=sign * r.uniform(0.5, W_MAX), dur=r.uniform(1.0, 3.0))
        elif name == "stop_and_go":
            p = dict(v=r.uniform(0.3, V_MAX), w=0.0, dur=r.uniform(3.0, 6.0),
                     period=r.uniform(0.6, 2.0))
        else:  # slalom
            p = dict(v=r.uniform(0.3, 0.8), w=r.uniform(0.4, 1.2), dur=r.uniform(3.0, 6.0),
                     period=r.uniform(1.5, 4.0))
        self.pattern = name
        self._p = {k: float(v) for k, v in p.items()}
        self._start = t
        self._end = t + self._p["dur"]
        self.new_pattern = True

    def command(self, t, ctx):
        self.new_pattern = False
        if t >= self._end - 1e-9:
            self._next(t)
        p, s = self._p, t - self._start
        if self.pattern == "stop_and_go":
            on = (s % p["period"]) < 0.5 * p["period"]
            return _clip_cmd(p["v"] if on else 0.0, 0.0)
        if self.pattern == "slalom":
            return _clip_cmd(p["v"], p["w"] * math.sin(2.0 * math.pi * s / p["period"]))
        return _clip_cmd(p["v"], p["w"])


class PlannerCommands(CommandGenerator):
    """The planner's own control cycle (wm_planner.controller.Controller, default planner
    parameters, seeded, no map: routes on the live layer alone) on the perception core's
    field, toward random reachable goals."""

    name = "planner"

    def __init__(self, rng: np.random.Generator, free: FreeSpace, mppi_seed: int,
                 sensor_in_base: Sequence[float]):
        super().__init__(rng)
        p = defaults(PLANNER_PARAMS)
        p["seed"] = int(mppi_seed)
        # no wall-clock limit: the data must not depend on how busy the machine is
        p["time_budget_ms"] = 1000.0
        p["navigate_timeout"] = GOAL_TIMEOUT
        self.params = p
        self.controller = Controller(p)
        self.perception = Perception(PerceptionConfig())
        self.free = free
        self.sensor_in_base = tuple(float(v) for v in sensor_in_base)
        self.goal_map: Optional[Pose2D] = None
        self.goals_reached = 0
        self.plan_failures = 0

    def reset(self, t: float) -> None:
        self.goal_map = None
        self.controller.cancel()
        self.controller.limiter.reset()

    def _new_goal(self, t: float, ctx: "RobotRun") -> None:
        truth = ctx.engine.pose(ctx.rid)
        comp = self.free.component_at(truth.x, truth.y)
        x, y = self.free.sample(self.rng, comp, [(truth.x, truth.y)], GOAL_MIN_DISTANCE)
        self.goal_map = Pose2D(x, y, float(self.rng.uniform(-math.pi, math.pi)))
        self.controller.set_goal(self.goal_map, self.params["map_frame"], t)
        ctx.event(t, {"event": "goal", "goal": [round(x, 3), round(y, 3)]})

    def command(self, t, ctx):
        if self.goal_map is None:
            self._new_goal(t, ctx)
        odom_pose = ctx.odometry.pose
        v, w = ctx.odometry.twist
        # map->odom from the latest localization pose and the odom pose of the same instant.
        m2o = ctx.map_to_odom if ctx.map_to_odom is not None else Pose2D(0.0, 0.0, 0.0)
        scan = ctx.engine.scan(ctx.rid)
        xyz = np.stack([scan["x"].ravel(), scan["y"].ravel(), scan["z"].ravel()], axis=1)
        xyz = xyz[np.isfinite(xyz).all(axis=1)]
        field = self.perception.process(xyz, self.sensor_in_base, odom_pose).distance_field
        out = self.controller.step(CycleInput(
            t, RobotState(odom_pose.x, odom_pose.y, odom_pose.yaw, v, w), field, m2o))
        if out.status == "failed":
            self.plan_failures += 1
        if out.outcome is not None:   # reached, or given up: the next goal
            self.goals_reached += int(out.outcome.reached)
            self.goal_map = None
        return _clip_cmd(*out.cmd)


# ---------------------------------------------------------------------- one robot's run
class RobotRun:
    """One robot's sensors, command generator and bookkeeping within an episode."""

    def __init__(self, rid: str, engine: Engine, bag: BagWriter, gen: CommandGenerator,
                 wheel_radius: float, track: float, loc_seed: int):
        self.rid, self.engine, self.bag, self.gen = rid, engine, bag, gen
        self.odometry = WheelOdometry(wheel_radius, track)
        self.localization = Localization(rate_hz=LOCALIZATION_RATE, seed=loc_seed,
                                         correlation_time=1.0)
        self.map_to_odom: Optional[Pose2D] = None
        self.active = True
        self.resets = 0

    def event(self, t: float, info: Dict[str, Any]) -> None:
        d = {"robot": self.rid}
        d.update(info)
        self.bag.write_episode(t, d)

    def record_state(self, t: float, dt: float) -> None:
        left, right = self.engine.wheel_angles(self.rid)
        odom = self.odometry.update(left, right, dt)
        self.bag.write_odom(self.rid, t, odom, self.odometry.twist,
                            self.odometry.pose_covariance, self.odometry.twist_covariance)
        truth = self.engine.pose(self.rid)
        lat = getattr(self.engine, "lateral_velocity", None)
        self.bag.write_ground_truth(self.rid, t, truth, self.engine.body_velocity(self.rid),
                                    float(lat(self.rid)) if callable(lat) else 0.0)
        est = self.localization.update(t, truth)
        if est is not None:
            self.bag.write_localization(self.rid, t, est.pose, est.covariance)
            self.map_to_odom = compose(est.pose, inverse(odom))


def _reset_robot(engine: Engine, rid: str, pose: Pose2D) -> bool:
    """Put a robot at rest at `pose` (every Engine implements reset_robot)."""
    engine.reset_robot(rid, pose)
    return True


# ---------------------------------------------------------------------- engines
def kinematic_params(friction: float) -> DiffDriveParams:
    """The kinematic engine's stand-in for floor friction: slip scaled by 1 / friction."""
    if not friction > 0.0:
        raise ValueError("friction must be positive")
    base = DiffDriveParams()
    k = 1.0 / float(friction)
    return dataclasses.replace(base, slip_long=base.slip_long * k, slip_yaw=base.slip_yaw * k,
                               slip_turn_gain=base.slip_turn_gain * k,
                               lateral_slip_gain=base.lateral_slip_gain * k)


def make_engine(name: str, world: World, spawns: Dict[str, Pose2D],
                payloads: Dict[str, float], friction: float, seed: int,
                lidar: Optional[LidarSpec] = None) -> Engine:
    if name == "kinematic":
        return KinematicEngine(world, spawns, lidar=lidar, params=kinematic_params(friction),
                               payloads=payloads, seed=seed)
    if name == "mujoco":
        from .mujoco_engine import MujocoEngine  # lazily: MuJoCo is optional
        return MujocoEngine(world, spawns, lidar=lidar, payloads=payloads, seed=seed,
                            floor_friction=float(friction))
    raise ValueError("unknown engine %r (kinematic or mujoco)" % (name,))


def _wheel_geometry(engine: Engine) -> Tuple[float, float]:
    p = getattr(engine, "params", None)
    if p is None:
        robots = getattr(engine, "_robots", None)
        p = next(iter(robots.values())).params if robots else DiffDriveParams()
    return float(p.wheel_radius), float(p.track)


# ---------------------------------------------------------------------- episodes
@dataclasses.dataclass
class Config:
    out: str
    engine: str = "kinematic"
    world: str = "warehouse_small"
    robots: int = 2
    episodes: int = 1
    episode_seconds: float = 60.0
    seed: int = 0
    modes: Tuple[str, ...] = MODES
    payloads: Tuple[float, ...] = (0.0, 50.0, 150.0)
    frictions: Tuple[float, ...] = (0.5, 0.8, 1.0)
    compression: Optional[str] = "zstd"
    overwrite: bool = False
    verbose: bool = True


def episode_path(out: str, episode: int) -> str:
    return os.path.join(out, "episode_%04d" % episode)


def _seed_int(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2 ** 31 - 1))


def run_episode(cfg: Config, episode: int, world: World,
                free_spawn: FreeSpace, free_goal: FreeSpace) -> Dict[str, Any]:
    rng = np.random.default_rng([int(cfg.seed), int(episode)])
    mode = cfg.modes[episode % len(cfg.modes)]
    friction = float(cfg.frictions[int(rng.integers(len(cfg.frictions)))])
    rids = ["robot_%d" % i for i in range(cfg.robots)]
    payloads = {r: float(cfg.payloads[int(rng.integers(len(cfg.payloads)))]) for r in rids}
    spawns: Dict[str, Pose2D] = {}
    for r in rids:
        x, y = free_spawn.sample(rng, None, [(p.x, p.y) for p in spawns.values()],
                                 ROBOT_SEPARATION)
        spawns[r] = Pose2D(x, y, float(rng.uniform(-math.pi, math.pi)))
    engine_seed = _seed_int(rng)
    robot_seeds = {r: (_seed_int(rng), _seed_int(rng), _seed_int(rng)) for r in rids}

    lidar = LidarSpec(columns=LIDAR_COLUMNS)
    engine = make_engine(cfg.engine, world, spawns, payloads, friction, engine_seed, lidar)
    wheel_radius, track = _wheel_geometry(engine)
    path = episode_path(cfg.out, episode)
    if os.path.exists(path):
        if not cfg.overwrite:
            raise FileExistsError("%s exists (use --overwrite)" % path)
        shutil.rmtree(path)

    dt = 1.0 / PHYSICS_RATE
    steps_per_ctrl = int(round(CONTROL_PERIOD / dt))
    n_ctrl = int(round(cfg.episode_seconds / CONTROL_PERIOD))
    payload_every = int(round(PAYLOAD_PERIOD / dt))
    info = {
        "event": "start", "episode": episode, "engine": cfg.engine, "world": world.name,
        "friction": friction, "payloads": payloads, "mode": mode,
        "modes": {r: mode for r in rids}, "seed": cfg.seed, "engine_seed": engine_seed,
        "robot_seeds": {r: list(s) for r, s in robot_seeds.items()},
        "spawns": {r: [p.x, p.y, p.yaw] for r, p in spawns.items()},
        "duration": round(n_ctrl * CONTROL_PERIOD, 6), "control_period": CONTROL_PERIOD,
        "physics_rate": PHYSICS_RATE, "localization_rate": LOCALIZATION_RATE,
        "limits": {"v_min": V_MIN, "v_max": V_MAX, "w_max": W_MAX},
        "wheel_radius": wheel_radius, "track": track,
        "kinematic_slip_scale": (1.0 / friction) if cfg.engine == "kinematic" else None,
        "lidar": {"rings": lidar.rings, "columns": lidar.columns,
                  "mount": list(lidar.mount)},
    }
    wall0 = time.perf_counter()
    with BagWriter(path, compression=cfg.compression) as bag:
        bag.write_episode(0.0, info)
        runs: List[RobotRun] = []
        for r in rids:
            gen_seed, loc_seed, mppi_seed = robot_seeds[r]
            grng = np.random.default_rng(gen_seed)
            if mode == "random":
                gen: CommandGenerator = RandomCommands(grng)
            elif mode == "scripted":
                gen = ScriptedCommands(grng)
            elif mode == "planner":
                gen = PlannerCommands(grng, free_goal, mppi_seed, lidar.mount)
            else:
                raise ValueError("unknown command mode %r" % (mode,))
            gen.reset(0.0)
            runs.append(RobotRun(r, engine, bag, gen, wheel_radius, track, loc_seed))
        for run in runs:
            run.record_state(0.0, dt)
            bag.write_payload(run.rid, 0.0, engine.payload(run.rid))
        step = 0
        for _ in range(n_ctrl):
            t = step / PHYSICS_RATE
            for run in runs:
                if not run.active:
                    continue
                v, w = run.gen.command(t, run)
                if getattr(run.gen, "new_pattern", False):
                    run.event(t, {"event": "pattern", "pattern": run.gen.pattern})
                engine.set_command(run.rid, v, w)
                bag.write_cmd_vel(run.rid, t, v, w)
            for _ in range(steps_per_ctrl):
                engine.step(dt)
                step += 1
                t = step / PHYSICS_RATE
                for run in runs:
                    if run.active:
                        run.record_state(t, dt)
                        if step % payload_every == 0:
                            bag.write_payload(run.rid, t, engine.payload(run.rid))
                for run in runs:
                    if run.active and engine.in_contact(run.rid):
                        _handle_contact(engine, run, runs, rng, free_spawn, t)
        bag.write_episode(step / PHYSICS_RATE, {
            "event": "end", "resets": {r.rid: r.resets for r in runs},
            "goals_reached": {r.rid: getattr(r.gen, "goals_reached", None) for r in runs},
            "plan_failures": {r.rid: getattr(r.gen, "plan_failures", None) for r in runs}})
        n_msgs = bag.message_count
    wall = time.perf_counter() - wall0
    stats = {"path": os.path.basename(path), "messages": n_msgs, "wall_s": round(wall, 3),
             "resets": sum(r.resets for r in runs),
             "retired": [r.rid for r in runs if not r.active]}
    if cfg.verbose:
        print("episode %d/%d: mode=%s engine=%s friction=%.2f payloads=%s %.1f s sim in "
              "%.1f s wall, %d resets, %d retired, %d messages -> %s"
              % (episode + 1, cfg.episodes, mode, cfg.engine, friction,
                 "/".join("%g" % payloads[r] for r in rids), n_ctrl * CONTROL_PERIOD, wall,
                 stats["resets"], len(stats["retired"]), n_msgs, path), flush=True)
    out = dict(info)
    out.update(stats)
    return out


def _handle_contact(engine: Engine, run: RobotRun, runs: Sequence[RobotRun],
                    rng: np.random.Generator, free: FreeSpace, t: float) -> None:
    others = [engine.pose(o.rid) for o in runs if o is not run]
    x, y = free.sample(rng, None, [(p.x, p.y) for p in others], ROBOT_SEPARATION)
    pose = Pose2D(x, y, float(rng.uniform(-math.pi, math.pi)))
    before = engine.pose(run.rid)
    if not _reset_robot(engine, run.rid, pose):
        engine.set_command(run.rid, 0.0, 0.0)
        run.active = False
        run.event(t, {"event": "retire", "cause": "contact",
                      "at": [before.x, before.y, before.yaw]})
        return
    run.resets += 1
    run.odometry.reset(Pose2D(0.0, 0.0, 0.0))
    run.map_to_odom = None
    run.gen.reset(t)
    run.event(t, {"event": "reset", "cause": "contact", "at": [before.x, before.y, before.yaw],
                  "pose": [pose.x, pose.y, pose.yaw]})


def generate(cfg: Config) -> List[Dict[str, Any]]:
    """Write cfg.episodes bags under cfg.out; returns the episodes' descriptions."""
    if cfg.world not in WORLDS:
        raise ValueError("unknown world %r (one of %s)" % (cfg.world, ", ".join(WORLDS)))
    for m in cfg.modes:
        if m not in MODES:
            raise ValueError("unknown command mode %r (one of %s)" % (m, ", ".join(MODES)))
    if cfg.robots < 1 or cfg.episodes < 0 or not cfg.episode_seconds > 0.0:
        raise ValueError("need robots >= 1, episodes >= 0 and episode_seconds > 0")
    if not cfg.modes or not cfg.payloads or not cfg.frictions:
        raise ValueError("modes, payloads and frictions must not be empty")
    if any(p < 0.0 for p in cfg.payloads) or any(not f > 0.0 for f in cfg.frictions):
        raise ValueError("payloads must be >= 0 and frictions > 0")
    world = WORLDS[cfg.world]()
    free_spawn = FreeSpace(world, SPAWN_CLEARANCE)
    free_goal = FreeSpace(world, GOAL_CLEARANCE)
    existing = [episode_path(cfg.out, e) for e in range(cfg.episodes)
                if os.path.exists(episode_path(cfg.out, e))]
    if existing and not cfg.overwrite:
        raise FileExistsError("%s exists (use --overwrite)" % existing[0])
    os.makedirs(cfg.out, exist_ok=True)
    episodes = []
    with open(os.path.join(cfg.out, "episodes.jsonl"), "w") as f:
        for e in range(cfg.episodes):
            d = run_episode(cfg, e, world, free_spawn, free_goal)
            f.write(json.dumps(d, sort_keys=True) + "\n")
            f.flush()
            episodes.append(d)
    return episodes


def _floats(text: str) -> Tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            "expected comma-separated numbers, got %r" % text) from None


def _modes(text: str) -> Tuple[str, ...]:
    modes = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise argparse.ArgumentTypeError("modes must be a comma list of %s" % ", ".join(MODES))
    return modes


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="wm_datagen", description="Generate world-model driving data as rosbag2/MCAP "
        "bags, one per episode, under --out (see wm_sim.datagen's docstring).")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--engine", choices=("kinematic", "mujoco"), default="kinematic")
    ap.add_argument("--world", choices=sorted(WORLDS), default="warehouse_small")
    ap.add_argument("--robots", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=1)
    ap.add_argument("--episode-seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--modes", type=_modes, default=MODES,
                    help="comma list of random,scripted,planner (round robin per episode)")
    ap.add_argument("--payloads", type=_floats, default=(0.0, 50.0, 150.0),
                    help="payload masses [kg] to draw from, per robot and episode")
    ap.add_argument("--frictions", type=_floats, default=(0.5, 0.8, 1.0),
                    help="floor friction coefficients to draw from, per episode")
    ap.add_argument("--no-compression", action="store_true",
                    help="write uncompressed MCAP chunks (default: zstd)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace existing episode bags in --out")
    ap.add_argument("--quiet", action="store_true", help="no per-episode progress lines")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    cfg = Config(out=a.out, engine=a.engine, world=a.world, robots=a.robots,
                 episodes=a.episodes, episode_seconds=a.episode_seconds, seed=a.seed,
                 modes=a.modes, payloads=a.payloads, frictions=a.frictions,
                 compression=None if a.no_compression else "zstd",
                 overwrite=a.overwrite, verbose=not a.quiet)
    try:
        generate(cfg)
    except (ValueError, FileExistsError, ImportError) as e:
        print("wm_datagen: error: %s" % e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
