"""What the service computes, without HTTP: the loaded motion models, batched what-if
predictions and MPPI plans. The same artifacts (wm_world_model.artifact, with its checksum
checks) and the same planner code (wm_planner.configure.build_optimizer) as the robots.

Not thread-safe on purpose: the service calls it from one worker thread (torch with a fixed
thread count, an MPPI per model with its own sampling state).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from wm_common.grid import Grid2D
from wm_planner.configure import build_optimizer, node_params_from_yaml, planner_params
from wm_planner.models import Goal
from wm_planner.neighbours import NeighbourPlan
from wm_world_model.artifact import resolve_artifact
from wm_world_model.motion_model import KinematicMotionModel, LearnedMotionModel
from wm_world_model.state import RobotState

from .config import ServiceConfig

KINEMATIC = "kinematic"
# Service defaults on top of the planner node's: a fixed number of iterations ends a solve
# (time_budget_ms out of the way), so /v1/plan is idempotent whatever the load.
SERVICE_PLANNER_DEFAULTS = {"time_budget_ms": 1000.0, "seed": 0}
FIELD_RESOLUTION = 0.1
FIELD_MARGIN = 3.0          # metres of field around the robot, goal and obstacles
FIELD_MAX_CELLS = 400       # per side: a 40 m square at 0.1 m


@dataclass
class PredictItem:
    """One /v1/predict row: state [x, y, yaw, v, w], (H, 2) commands, payload or None."""

    model: str
    state: Tuple[float, float, float, float, float]
    commands: np.ndarray
    payload_kg: Optional[float] = None


@dataclass
class Prediction:
    states: np.ndarray      # (H+1, 5) [x, y, yaw, v, w]
    trusted: bool           # False: the model's output failed its check, kinematics instead
    model: str
    version: str


class Engine:
    def __init__(self, cfg: ServiceConfig):
        self.torch_threads = cfg.torch_threads
        self.set_threads()
        self.params = service_planner_params(cfg)
        self.dt = float(self.params["dt"])
        self.models: Dict[str, Any] = {KINEMATIC: KinematicMotionModel()}
        self.info: Dict[str, Dict[str, Any]] = {
            KINEMATIC: {"name": KINEMATIC, "kind": "kinematic", "version": "", "dt": self.dt,
                        "checksums": {}, "path": "", "device": "cpu"}}
        for name in cfg.models:
            path = os.path.join(cfg.models_dir, name) if cfg.models_dir else \
                resolve_artifact(name)
            model = LearnedMotionModel(path, self.dt, threads=cfg.torch_threads)
            model.predict_on(cfg.device)
            self.models[name] = model
            self.info[name] = {"name": name, "kind": "world_model", "version": model.version,
                               "dt": self.dt, "path": os.path.abspath(path),
                               "device": cfg.device,
                               "checksums": dict(model.metadata.get("files", {}))}
        self.default_model = cfg.default_model
        # One MPPI per model, built like the planner node builds its own.
        self._planners = {name: build_optimizer(self.params, motion_model=m)
                          for name, m in self.models.items()}

    def set_threads(self) -> None:
        """torch's intra-op threads for the calling OS thread (OpenMP keeps one setting per
        thread): call it in every thread that runs the models."""
        import torch

        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)

    # ---------------------------------------------------------------- predict
    def model_name(self, name: Optional[str]) -> str:
        name = name or self.default_model
        if name not in self.models:
            raise KeyError("unknown model %r; loaded: %s" % (name, ", ".join(self.models)))
        return name

    def predict_batch(self, items: Sequence[PredictItem]) -> List[Prediction]:
        """Predictions for many requests: one model call per (model, horizon) group."""
        out: List[Optional[Prediction]] = [None] * len(items)
        groups: Dict[Tuple[str, int], List[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault((item.model, item.commands.shape[0]), []).append(i)
        for (name, _), rows in groups.items():
            model = self.models[name]
            states = np.array([items[i].state for i in rows], dtype=np.float64)
            commands = np.stack([items[i].commands for i in rows])
            pred, trusted = model.predict(states, commands,
                                          [items[i].payload_kg for i in rows], self.dt)
            for j, i in enumerate(rows):
                out[i] = Prediction(pred[j], bool(trusted[j]), name, self.info[name]["version"])
        return out  # type: ignore[return-value]

    # ---------------------------------------------------------------- plan
    def plan(self, model: str, state: RobotState, goal: Goal,
             neighbours: Sequence[NeighbourPlan] = (),
             obstacles: Sequence[Tuple[float, float, float]] = (), seed: int = 0,
             payload_kg: Optional[float] = None) -> Dict[str, Any]:
        """One MPPI solve from `state` to `goal` around circular `obstacles` (x, y, radius)
        and `neighbours`' intended paths, reproducible for a given seed."""
        name = self.model_name(model)
        opt = self._planners[name]
        motion = self.models[name]
        if isinstance(motion, LearnedMotionModel):
            motion.set_payload(payload_kg)
        opt.reset(seed=seed)
        esdf = obstacle_field(state, goal, obstacles) if obstacles else None
        t0 = time.perf_counter()
        result = opt.plan(state, goal, esdf, neighbours=list(neighbours) or None)
        return {"model": name, "version": self.info[name]["version"],
                "status": result.status, "cost": float(result.cost)
                if math.isfinite(result.cost) else None,
                "iterations": int(result.iterations),
                "solve_time_ms": (time.perf_counter() - t0) * 1e3,
                "controls": result.controls, "trajectory": result.trajectory,
                "dt": self.dt}


def service_planner_params(cfg: ServiceConfig) -> Dict[str, Any]:
    """The robots' planner parameters (cfg.planner_params_file, default: the shipped
    config/robot.yaml), the service's defaults, then the config's planner_params."""
    path = cfg.planner_params_path()
    base = node_params_from_yaml(path, "planner") if path else {}
    return planner_params(dict(SERVICE_PLANNER_DEFAULTS, **cfg.planner_params), base)


def obstacle_field(state: RobotState, goal: Goal,
                   obstacles: Sequence[Tuple[float, float, float]]) -> Grid2D:
    """A signed distance field of circular obstacles over the square around the robot, the
    goal and the obstacles (capped at FIELD_MAX_CELLS a side; beyond it: free)."""
    obs = np.asarray(obstacles, dtype=np.float64).reshape(-1, 3)
    xs = np.concatenate([[state.x, goal.x], obs[:, 0]])
    ys = np.concatenate([[state.y, goal.y], obs[:, 1]])
    res = FIELD_RESOLUTION
    cx, cy = 0.5 * (xs.min() + xs.max()), 0.5 * (ys.min() + ys.max())
    side = max(xs.max() - xs.min(), ys.max() - ys.min()) + 2 * FIELD_MARGIN
    n = int(min(FIELD_MAX_CELLS, math.ceil(side / res)))
    n = max(n, 2)
    x0, y0 = cx - 0.5 * n * res, cy - 0.5 * n * res
    gx = x0 + (np.arange(n) + 0.5) * res
    gy = y0 + (np.arange(n) + 0.5) * res
    d = np.full((n, n), np.inf)
    for ox, oy, r in obs:
        d = np.minimum(d, np.hypot(gx[None, :] - ox, gy[:, None] - oy) - r)
    far = float(d.max())
    return Grid2D(x0, y0, res, d, outside=far, frame_id="map")
