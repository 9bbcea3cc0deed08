"""Self-supervised training data for the scene encoder (wm_perception.encoder_data.SceneDataset),
generated in-process from the simulator core (wm_sim engines, no ROS). A tool beside the stack:

    python -m wm_sim.encoder_datagen --out d.npz --episodes 25 --workers 4
    python -m wm_perception.train_encoder --data d.npz --out OUT

An episode: N robots in warehouse('small') driven by wm_sim.datagen's random / scripted
command generators (with a short-range reflex that turns away from obstacles, so they crash
less), every robot a LiDAR ego in turn and a MOVING obstacle for the others. Every
`step_dt` (0.5 s) each robot's scan goes through the perception pipeline
(Perception.process, true pose as odom) and becomes one sample:

  cells, counts     encoder input: the pipeline voxels re-binned robot-centred
                    (encoder.cells_from_voxels), base frame at time t
  motions (K, 5)    ego motion per step k: (dx, dy, dyaw) from pose(t+(k-1)dt) to
                    pose(t+k dt) in the frame of the former, and mean (v, w) over the step
  occ (K+1, ny, nx) observed BEV occupancy of the scans at t + k dt, k = 0..K, expressed
                    in the CURRENT base frame at t (k = 0: the current scan)
  moving (K+1, ny, nx)  footprints (+0.25 m) of the other robots that move during
                    [t, t + K dt], at t + k dt, in the current base frame (for the
                    "moving cells" metric and the loss weighting; ground truth)

Samples whose window contains a robot reset (collision) are dropped. Train/val split by
episode. Plain numpy; Python 3.8 syntax.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from wm_common.geometry import Pose2D, compose, inverse
from wm_perception.encoder import (EncoderConfig, bev_from_cells, cells_from_voxels,
                                   points_to_cells)
from wm_perception.encoder_data import SceneDataset
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_sim.datagen import (ROBOT_SEPARATION, SPAWN_CLEARANCE, FreeSpace, RandomCommands,
                            ScriptedCommands, make_engine)
from wm_sim.lidar import LidarSpec
from wm_sim.world import BoxArrays, boxes_signed_distance, robot_box, warehouse

CONTROL_PERIOD = 0.1
PHYSICS_DT = 0.02


@dataclasses.dataclass(frozen=True)
class DataConfig:
    engine: str = "kinematic"
    world: str = "small"
    robots: int = 5
    episode_seconds: float = 60.0
    lidar_columns: int = 512
    modes: Sequence[str] = ("random", "scripted")
    frictions: Sequence[float] = (0.5, 0.8, 1.0)
    moving_threshold: float = 0.1      # m a robot must move in the window to count as moving
    footprint_margin: float = 0.25     # m around a robot box for the moving mask
    reflex_distance: float = 0.45      # m of clearance 0.6 m ahead below which we turn away


class _Reflex:
    """Wraps a command generator: when the point 0.6 m along the driving direction is
    closer than `dist` to an obstacle (or another robot), turn in place away from it."""

    def __init__(self, gen, rid: str, engine, dist: float):
        self.gen, self.rid, self.engine, self.dist = gen, rid, engine, dist
        self.turn = 0

    def command(self, t: float):
        v, w = self.gen.command(t, None)
        if self.turn > 0:
            self.turn -= 1
            return 0.0, 1.2
        p = self.engine.pose(self.rid)
        ahead = 0.6 if v >= 0 else -0.6
        q = np.array([p.x + ahead * math.cos(p.yaw), p.y + ahead * math.sin(p.yaw)])
        sd = float(self.engine.world.signed_distance(q))
        for o in self.engine.robot_ids:
            if o != self.rid:
                po = self.engine.pose(o)
                sd = min(sd, math.hypot(q[0] - po.x, q[1] - po.y) - 0.45)
        if sd < self.dist and abs(v) > 0.05:
            self.turn = 8
            return 0.0, 1.2
        return v, w


def _rel(a: Pose2D, b: Pose2D) -> Pose2D:
    return compose(inverse(a), b)


def _cell_centres(cfg: EncoderConfig) -> np.ndarray:
    ox, oy, _ = cfg.origin
    xs = ox + (np.arange(cfg.nx) + 0.5) * cfg.resolution
    ys = oy + (np.arange(cfg.ny) + 0.5) * cfg.resolution
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)   # (ny*nx, 2), row-major (iy, ix)


def generate_episode(dcfg: DataConfig, ecfg: EncoderConfig, seed: int, episode: int,
                     horizon: int = 2) -> Dict[str, np.ndarray]:
    """One episode's samples as packed arrays (see module docstring)."""

    rng = np.random.default_rng([int(seed), int(episode), 7])
    world = warehouse(dcfg.world)
    free = FreeSpace(world, SPAWN_CLEARANCE)
    rids = ["robot_%d" % i for i in range(dcfg.robots)]
    spawns: Dict[str, Pose2D] = {}
    for r in rids:
        x, y = free.sample(rng, None, [(p.x, p.y) for p in spawns.values()], ROBOT_SEPARATION)
        spawns[r] = Pose2D(x, y, float(rng.uniform(-math.pi, math.pi)))
    friction = float(dcfg.frictions[int(rng.integers(len(dcfg.frictions)))])
    lidar = LidarSpec(columns=dcfg.lidar_columns)
    engine = make_engine(dcfg.engine, world, spawns, {}, friction,
                         int(rng.integers(2 ** 31 - 1)), lidar)
    gens = {}
    for r in rids:
        mode = dcfg.modes[int(rng.integers(len(dcfg.modes)))]
        grng = np.random.default_rng(int(rng.integers(2 ** 31 - 1)))
        g = RandomCommands(grng) if mode == "random" else ScriptedCommands(grng)
        g.reset(0.0)
        gens[r] = _Reflex(g, r, engine, dcfg.reflex_distance)
    perception = Perception(PerceptionConfig())
    mount = lidar.mount

    per_step = int(round(ecfg.step_dt / CONTROL_PERIOD))
    n_sub = int(round(CONTROL_PERIOD / PHYSICS_DT))
    n_ctrl = int(round(dcfg.episode_seconds / CONTROL_PERIOD))
    # Per robot, per scan instant: pose, voxel centres (map) + counts, mean (v, w) since the
    # previous scan instant, reset count.
    rec: Dict[str, List[dict]] = {r: [] for r in rids}
    vel_acc = {r: [] for r in rids}
    resets = 0
    reset_log: List[int] = []
    for i in range(n_ctrl + 1):
        if i % per_step == 0:
            for r in rids:
                pose = engine.pose(r)
                scan = engine.scan(r)
                xyz = np.stack([scan["x"].ravel(), scan["y"].ravel(), scan["z"].ravel()], 1)
                xyz = xyz[np.isfinite(xyz).all(axis=1)]
                vox = perception.process(xyz, mount, pose).voxels
                vw = np.mean(vel_acc[r], axis=0) if vel_acc[r] else np.zeros(2)
                vel_acc[r] = []
                rec[r].append({"pose": pose, "vox": vox, "centers": vox.centers(),
                               "vw": vw})
            reset_log.append(resets)
        if i == n_ctrl:
            break
        t = i * CONTROL_PERIOD
        for r in rids:
            engine.set_command(r, *gens[r].command(t))
        for _ in range(n_sub):
            engine.step(PHYSICS_DT)
            for r in rids:
                if engine.in_contact(r):
                    x, y = free.sample(rng, None, [(engine.pose(o).x, engine.pose(o).y)
                                                   for o in rids if o != r], ROBOT_SEPARATION)
                    engine.reset_robot(r, Pose2D(x, y, float(rng.uniform(-math.pi, math.pi))))
                    gens[r].gen.reset(t)
                    resets += 1
        for r in rids:
            vel_acc[r].append(engine.body_velocity(r))

    cells_xy = _cell_centres(ecfg)
    n_inst = len(reset_log)
    out = {k: [] for k in ("coords", "counts", "n_cells", "motions", "occ", "moving")}
    for j in range(n_inst - horizon):
        if reset_log[j + horizon] != reset_log[j]:
            continue
        for r in rids:
            cur = rec[r][j]
            p0 = cur["pose"]
            coords, counts = cells_from_voxels(cur["vox"], (p0.x, p0.y, p0.yaw), ecfg)
            motions = np.zeros((horizon, 5), np.float32)
            occ = np.zeros((horizon + 1, ecfg.ny, ecfg.nx), bool)
            moving = np.zeros((horizon + 1, ecfg.ny, ecfg.nx), bool)
            occ[0] = bev_from_cells(coords, ecfg)
            inv0 = inverse(p0)
            for k in range(1, horizon + 1):
                fut = rec[r][j + k]
                d = _rel(rec[r][j + k - 1]["pose"], fut["pose"])
                motions[k - 1] = (d.x, d.y, d.yaw, fut["vw"][0], fut["vw"][1])
                c = fut["centers"]
                if c.shape[0]:
                    xy = np.stack([c[:, 0], c[:, 1]], 1)
                    cc, s = math.cos(inv0.yaw), math.sin(inv0.yaw)
                    bx = inv0.x + cc * xy[:, 0] - s * xy[:, 1]
                    by = inv0.y + s * xy[:, 0] + cc * xy[:, 1]
                    fc, _ = points_to_cells(np.stack([bx, by, c[:, 2]], 1), ecfg)
                    occ[k] = bev_from_cells(fc, ecfg)
            movers = [o for o in rids if o != r
                      and math.hypot(rec[o][j + horizon]["pose"].x - rec[o][j]["pose"].x,
                                     rec[o][j + horizon]["pose"].y - rec[o][j]["pose"].y)
                      > dcfg.moving_threshold]
            if movers:
                cc, s = math.cos(p0.yaw), math.sin(p0.yaw)
                map_xy = np.stack([p0.x + cc * cells_xy[:, 0] - s * cells_xy[:, 1],
                                   p0.y + s * cells_xy[:, 0] + cc * cells_xy[:, 1]], 1)
                for k in range(horizon + 1):
                    boxes = [robot_box(rec[o][j + k]["pose"]) for o in movers]
                    sd = boxes_signed_distance(BoxArrays(boxes), map_xy)
                    moving[k] = (sd <= dcfg.footprint_margin).reshape(ecfg.ny, ecfg.nx)
            out["coords"].append(coords.astype(np.int16))
            out["counts"].append(counts)
            out["n_cells"].append(coords.shape[0])
            out["motions"].append(motions)
            out["occ"].append(np.packbits(occ, axis=-1))
            out["moving"].append(np.packbits(moving, axis=-1))
    n = len(out["n_cells"])
    return {
        "coords": (np.concatenate(out["coords"]) if n else np.zeros((0, 3), np.int16)),
        "counts": (np.concatenate(out["counts"]) if n else np.zeros(0, np.float32)),
        "n_cells": np.asarray(out["n_cells"], np.int64),
        "motions": (np.stack(out["motions"]) if n
                    else np.zeros((0, horizon, 5), np.float32)),
        "occ": (np.stack(out["occ"]) if n else np.zeros((0, horizon + 1, ecfg.ny, ecfg.nx // 8),
                                                        np.uint8)),
        "moving": (np.stack(out["moving"]) if n
                   else np.zeros((0, horizon + 1, ecfg.ny, ecfg.nx // 8), np.uint8)),
        "episode": np.full(n, episode, np.int64),
        "resets": np.asarray([resets]),
    }


def _episode_job(args):
    dcfg, ecfg, seed, e, horizon = args
    t0 = time.perf_counter()
    part = generate_episode(dcfg, ecfg, seed, e, horizon)
    return part, time.perf_counter() - t0


def generate(dcfg: DataConfig, ecfg: EncoderConfig, seed: int, episodes: int,
             horizon: int = 2, verbose: bool = True,
             deadline: Optional[float] = None, workers: int = 1) -> SceneDataset:
    """Episodes 0..episodes-1 (each seeded by (seed, episode), so the same episode index is
    the same episode whatever the worker count), in order; stops early (keeping at least 3)
    once `deadline` (time.perf_counter()) has passed. workers > 1: a fork process pool."""
    parts = []
    jobs = [(dcfg, ecfg, seed, e, horizon) for e in range(episodes)]
    pool = None
    if workers > 1:
        pool = multiprocessing.get_context("fork").Pool(min(workers, episodes))
        results = pool.imap(_episode_job, jobs)
    else:
        results = map(_episode_job, jobs)
    try:
        for e, (part, dt) in enumerate(results):
            parts.append(part)
            if verbose:
                print("episode %d/%d: %d samples, %d resets, %.1f s"
                      % (e + 1, episodes, part["n_cells"].shape[0],
                         int(part["resets"][0]), dt), flush=True)
            if deadline is not None and time.perf_counter() > deadline and e >= 2:
                break
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    config = {k: (list(v) if isinstance(v, tuple) else v)
              for k, v in dataclasses.asdict(dcfg).items()}
    return SceneDataset(parts, ecfg.nx, {"generator": "wm_sim.encoder_datagen",
                                         "engine": dcfg.engine, "seed": seed,
                                         "episode_seconds": dcfg.episode_seconds,
                                         "robots": dcfg.robots, "data_config": config})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="the dataset file (.npz)")
    ap.add_argument("--engine", default="kinematic", choices=("kinematic", "mujoco"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=25)
    ap.add_argument("--episode-seconds", type=float, default=60.0)
    ap.add_argument("--robots", type=int, default=5)
    ap.add_argument("--data-minutes", type=float, default=4.0,
                    help="stop generating episodes after this wall time")
    ap.add_argument("--workers", type=int, default=1,
                    help="processes generating episodes (the engine is pure numpy)")
    args = ap.parse_args(argv)
    ecfg = EncoderConfig()
    dcfg = DataConfig(engine=args.engine, robots=args.robots,
                      episode_seconds=args.episode_seconds)
    t0 = time.perf_counter()
    ds = generate(dcfg, ecfg, args.seed, args.episodes, ecfg.horizon,
                  deadline=t0 + 60.0 * args.data_minutes, workers=args.workers)
    ds.save(args.out)
    print("wrote %s: %d samples of %d episodes" % (args.out, len(ds), int(ds.episode.max()) + 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
