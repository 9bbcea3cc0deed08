"""MPPI optimizer: sample -> roll out -> score -> update, vectorised over the samples.

One `plan` call:
  1. builds the navigation function (cost-to-go) from the distance field, or reuses the
     last one while the field object and the goal's cell are unchanged;
  2. warm-starts the mean control sequence from the previous solution shifted one step
     (the last step repeated), assuming plan is called once per `dt`;
  3. per iteration: samples K noisy sequences around the mean plus two special ones (a
     stop, and the mean itself); the motion model clamps them to the robot limits and
     rolls them out in one call (`clamp_rollout`: a TorchScript kernel, no per-step
     Python); sums the critics' costs and replaces the mean by the softmax(-cost /
     temperature) weighted average of the clamped samples;
  4. returns the final mean, its trajectory and cost.
A weighted average of feasible sequences is feasible (velocity and acceleration limits
are convex constraints), so the mean never needs re-clamping beyond rounding.

With settings.adaptive_samples, K follows the measured plan time (`_adapt_samples`): fewer
samples after a plan over time_budget_ms, more again when there is slack. With
settings.retain_freed_memory (default) the process's malloc keeps freed memory mapped
(`retain_freed_memory`), so large temporaries do not cost page faults every plan.
"""
from __future__ import annotations

import math
import time
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from wm_common.footprint import Footprint
from wm_common.grid import Grid2D

from wm_world_model.motion_model import KinematicMotionModel
from wm_world_model.state import RobotLimits, RobotState
from .critic_data import CriticData
from .critics import Critic, ObstacleCritic, make_critics
from .models import STATUS_COLLISION, STATUS_FAILED, STATUS_OK, Goal, OptimizerSettings, PlanResult
from .navigation_function import cost_to_go
from .occupancy_forecast import PredictedOccupancy

# Indices of the special samples in every batch.
_STOP = 0
_MEAN = 1


def retain_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20
                        ) -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS.

    A plan allocates and frees many numpy and torch temporaries of a few hundred kB.
    glibc serves large ones from fresh mmaps and trims the heap top once they are freed,
    so every plan faults the same pages in again: at K = 4096 building one interpolation
    stencil took 2.4 ms with ~900 minor faults, 0.4 ms without them, and whole plans ~20%
    longer. With both thresholds raised the pages stay mapped: the process keeps its peak
    heap (tens of MB for a planner). Process-wide and idempotent; returns False where the C
    library has no mallopt (not glibc), which changes nothing else.
    """
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3   # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, int(mmap_threshold))
                and mallopt(m_trim_threshold, int(trim_threshold)))


class MPPI:
    """Model Predictive Path Integral controller for a unicycle base.

    critics: a list of Critic (default: make_critics()). nav_inflation /
    nav_inflation_gain shape the navigation function's soft cost near obstacles
    (nav_inflation defaults to the obstacle critic's inflation_radius, else 0.3 m).
    num_visualized: how many sampled trajectories PlanResult carries for RViz.
    motion_model: what rolls the controls out (wm_world_model.motion_model); kinematics by
    default, the learned world model when the planner is given an artifact.
    """

    def __init__(self, settings: Optional[OptimizerSettings] = None,
                 limits: Optional[RobotLimits] = None,
                 critics: Optional[Sequence[Critic]] = None,
                 robot_radius: float = 0.3, *,
                 use_navigation_function: bool = True,
                 nav_inflation: Optional[float] = None,
                 nav_inflation_gain: float = 2.0,
                 num_visualized: int = 8,
                 footprint=None,
                 motion_model=None):
        self.settings = settings if settings is not None else OptimizerSettings()
        self.limits = limits if limits is not None else RobotLimits()
        self.critics: List[Critic] = list(critics) if critics is not None else make_critics()
        if not (robot_radius >= 0.0 and math.isfinite(robot_radius)):
            raise ValueError("robot_radius must be finite and >= 0")
        self.robot_radius = float(robot_radius)
        self.use_navigation_function = bool(use_navigation_function)
        if nav_inflation is None:
            obstacle = [c for c in self.critics if isinstance(c, ObstacleCritic)]
            nav_inflation = obstacle[0].inflation_radius if obstacle else 0.3
        self.nav_inflation = float(nav_inflation)
        self.nav_inflation_gain = float(nav_inflation_gain)
        self.num_visualized = int(num_visualized)
        # the body: a Footprint polygon (wm_common.footprint), or (C, 3) circles [x, y, r]
        # in base_link; None: one circle of robot_radius
        if isinstance(footprint, Footprint):
            self.footprint = footprint
        else:
            self.footprint = None if footprint is None or len(footprint) == 0 else \
                np.asarray(footprint, dtype=np.float64).reshape(-1, 3)
        self.motion_model = motion_model if motion_model is not None else \
            KinematicMotionModel()
        self._sigma = np.array([self.settings.noise_sigma_v, self.settings.noise_sigma_w])
        self._rng = np.random.default_rng(self.settings.seed)
        self._mean: Optional[np.ndarray] = None   # warm start, (H, 2)
        self._prev: Optional[np.ndarray] = None   # last returned controls, (H, 2)
        self.last_cost_to_go: Optional[Grid2D] = None  # for debugging / RViz
        self._ctg_cache: Optional[Tuple[Grid2D, tuple, Grid2D]] = None  # (esdf, key, ctg)
        self._num_samples = self.settings.num_samples  # K of the next plan (adaptive)
        if self.settings.retain_freed_memory:
            retain_freed_memory()

    @property
    def num_samples(self) -> int:
        """K the next plan samples: settings.num_samples, or the adaptive count."""
        return self._num_samples if self.settings.adaptive_samples else \
            self.settings.num_samples

    def reset(self, seed: Optional[int] = None) -> None:
        """Forget the warm start (call on a new goal, after a stop or a long pause). A seed
        also restarts the sampling: the next plan from the same inputs is then the same
        (what a stateless service answering /v1/plan needs)."""
        if seed is not None:
            self._rng = np.random.default_rng(int(seed))
        self._mean = None
        self._prev = None
        self._ctg_cache = None

    # -- helpers ------------------------------------------------------------------------

    def _warm_start(self, state: RobotState) -> np.ndarray:
        h = self.settings.horizon
        if self._mean is None or self._mean.shape[0] != h:
            # No previous solution: keep the current velocity (what the base does anyway).
            return np.tile([state.v, state.w], (h, 1)).astype(np.float64)
        # The previous solution's step 0 has just been executed: shift by one step.
        return np.concatenate([self._mean[1:], self._mean[-1:]], axis=0)

    def cost_to_go(self, esdf: Grid2D, goal: Goal, route: Optional[np.ndarray] = None,
                   from_xy: Optional[Tuple[float, float]] = None) -> Grid2D:
        """The navigation function `plan` scores on (wm_planner.navigation_function): the
        geodesic cost-to-go of `esdf` toward `goal`, seeded along `route` when there is one,
        with this optimizer's clearance (robot_radius) and inflation; the previous one while
        the field is the same object, the goal in the same cell and the route the same.
        from_xy: the robot (the route seeds only its stretch ahead of it).
        The controller asks for it before the plan (the turn on the spot follows it); the
        plan then finds it cached.

        Computing it is ~2 ms at 160 x 160, as much as the rest of a K = 1024 plan, and the
        planner runs several cycles on one field. Keyed by identity (held, so the id
        cannot be recycled): a field must not be modified in place once planned on. Keyed
        by the goal's cell, not its exact position, because a goal in the map frame moves
        by millimetres in odom with every localization update: within one cell the
        goal-inside case only shifts every value by the same constant (the ranking of the
        samples does not change) and the other cases by at most a cell's diagonal.
        """
        cell = (math.floor((goal.x - esdf.origin_x) / esdf.resolution),
                math.floor((goal.y - esdf.origin_y) / esdf.resolution))
        # the route to the millimetre (a map-frame route moves by less with localization)
        route_key = None if route is None else \
            np.round(np.asarray(route, dtype=np.float64), 3).tobytes()
        from_key = None if from_xy is None else \
            (round(float(from_xy[0]), 2), round(float(from_xy[1]), 2))
        key = (cell, self.robot_radius, self.nav_inflation, self.nav_inflation_gain,
               route_key, from_key)
        cached = self._ctg_cache
        if cached is not None and cached[0] is esdf and cached[1] == key:
            return cached[2]
        hard = self.footprint.inscribed_radius if isinstance(self.footprint, Footprint) \
            else None
        ctg = cost_to_go(esdf, (goal.x, goal.y), self.robot_radius, self.nav_inflation,
                         self.nav_inflation_gain, route=route, from_xy=from_xy,
                         hard_radius=hard)
        self._ctg_cache = (esdf, key, ctg)
        return ctg

    def _clamp_rollout(self, state: RobotState, requests: np.ndarray
                       ) -> Tuple[np.ndarray, np.ndarray]:
        """(clamped controls, trajectories) of (K, H, 2) or (H, 2) requests."""
        dt = self.settings.dt
        return self.motion_model.clamp_rollout(state, requests, self.limits, dt)

    def _adapt_samples(self, elapsed_ms: float) -> None:
        """Sample-count controller (settings.adaptive_samples): K for the next plan.

        The plan time is close to affine in K (a fixed part: cost-to-go, Python and call
        overheads; a part proportional to K: sampling, rollout, critics), so:
          * over time_budget_ms: scale K by budget / elapsed with a 10% margin, but at most
            halve it per plan, so that one cycle preempted by another process does not
            collapse the sample count;
          * under 70% of the budget: grow K by 10% per plan (at least one sample), slowly
            enough that noise in one cycle does not push it over the budget again;
          * in between: hold. The dead band keeps K from oscillating on timing noise.
        K stays within [min_samples, num_samples] (the configured count is the ceiling).
        """
        s = self.settings
        if not s.adaptive_samples:
            return
        k, budget = self._num_samples, s.time_budget_ms
        if elapsed_ms > budget:
            k = int(k * max(0.5, 0.9 * budget / elapsed_ms))
        elif elapsed_ms < 0.7 * budget:
            k = max(k + 1, int(k * 1.1))
        self._num_samples = max(min(s.min_samples, s.num_samples), min(k, s.num_samples))

    def _score(self, data: CriticData) -> np.ndarray:
        total = np.zeros(data.num_samples)
        for critic in self.critics:
            total += critic.score(data)
        return total

    def _data(self, state, goal, controls, trajectories, esdf, ctg,
              predictions=None, route=None, neighbours=None) -> CriticData:
        return CriticData(state=state, goal=goal, controls=controls,
                          trajectories=trajectories, dt=self.settings.dt,
                          limits=self.limits, robot_radius=self.robot_radius, esdf=esdf,
                          cost_to_go=ctg, prev_controls=self._prev, footprint=self.footprint,
                          predictions=predictions, route=route, neighbours=neighbours)

    def _stop_result(self, state: RobotState, status: str, cost: float, iterations: int,
                     t0: float, samples: Optional[np.ndarray]) -> PlanResult:
        h = self.settings.horizon
        controls = np.zeros((h, 2))
        # The warm start is stale after an emergency stop; the stop is what was sent.
        self._mean = None
        self._prev = controls.copy()
        traj = np.tile([state.x, state.y, state.yaw], (h + 1, 1)).astype(np.float64)
        result = PlanResult(controls=controls, trajectory=traj, cost=cost,
                            iterations=iterations,
                            solve_time_ms=(time.perf_counter() - t0) * 1e3, status=status,
                            sampled_trajectories=self._visualized(samples))
        self._adapt_samples(result.solve_time_ms)
        return result

    def _visualized(self, trajectories: Optional[np.ndarray]) -> np.ndarray:
        if trajectories is None or self.num_visualized <= 0:
            return np.zeros((0, self.settings.horizon + 1, 3))
        k = trajectories.shape[0]
        idx = np.unique(np.linspace(0, k - 1, min(self.num_visualized, k)).astype(int))
        return trajectories[idx].copy()

    # -- main entry point ---------------------------------------------------------------

    def plan(self, state: RobotState, goal: Goal, esdf: Optional[Grid2D] = None, *,
             predictions: Optional[Sequence[PredictedOccupancy]] = None,
             route: Optional[np.ndarray] = None,
             neighbours: Optional[Sequence[Any]] = None) -> PlanResult:
        """One MPPI solve from `state` toward `goal` over the distance field `esdf`.

        predictions: perception's occupancy forecasts (time offsets relative to `state`),
        for the predicted_occupancy critic; None when there are none. route: the global
        route, (N, 2) in the odom frame, for the path_follow critic; None when there is none.
        neighbours: other robots' NeighbourPlan (wm_planner.neighbours) for the fleet critic.

        status: 'ok'; 'collision' when every sample (the stop included) collides, with a
        stop command; 'failed' on non-finite state or costs (a NaN in the distance field,
        say), also with a stop command.
        """
        t0 = time.perf_counter()
        s = self.settings
        k, h = self.num_samples, s.horizon
        if not all(math.isfinite(v) for v in (state.x, state.y, state.yaw, state.v, state.w)):
            return self._stop_result(state, STATUS_FAILED, math.inf, 0, t0, None)

        # Once per call, not per iteration: the field and the goal do not change within it.
        ctg = None
        if esdf is not None and self.use_navigation_function:
            ctg = self.cost_to_go(esdf, goal, route, (state.x, state.y))
        self.last_cost_to_go = ctg

        mean = self._warm_start(state)
        budget_s = s.time_budget_ms * 1e-3
        iterations = 0
        while True:
            t_iter = time.perf_counter()
            # (H, 2, K): each step's K samples contiguous, the rollout kernels' layout
            # (passed on as a (K, H, 2) view, so no copy).
            samples = self._rng.standard_normal((h, 2, k))
            samples *= self._sigma[:, None]
            samples += mean[:, :, None]
            samples[:, :, _STOP] = 0.0     # after clamping: the hardest allowed braking
            samples[:, :, _MEAN] = mean    # the current solution always competes unperturbed
            controls, trajectories = self._clamp_rollout(state, samples.transpose(2, 0, 1))
            data = self._data(state, goal, controls, trajectories, esdf, ctg, predictions,
                              route, neighbours)
            costs = self._score(data)
            iterations += 1

            if not np.all(np.isfinite(costs)):
                return self._stop_result(state, STATUS_FAILED, math.inf, iterations, t0,
                                         trajectories)
            collided = data.in_collision
            if collided is not None and bool(np.all(collided)):
                return self._stop_result(state, STATUS_COLLISION, float(costs.min()),
                                         iterations, t0, trajectories)

            # Softmax over -cost/T; subtracting the minimum keeps exp() in range.
            weights = np.exp(-(costs - costs.min()) / s.temperature)
            weights /= weights.sum()
            mean = np.matmul(controls.transpose(1, 2, 0), weights)   # (H, 2)

            now = time.perf_counter()
            if iterations >= s.iterations or (now - t0) + (now - t_iter) > budget_s:
                break

        # Rounding can leave the average a hair outside the limits; clamp is idempotent.
        mean, traj = self._clamp_rollout(state, mean)
        mean_data = self._data(state, goal, mean[None], traj[None], esdf, ctg, predictions,
                               route, neighbours)
        cost = float(self._score(mean_data)[0])
        mean_collides = (mean_data.in_collision is not None
                         and bool(mean_data.in_collision[0]))
        if mean_collides or not math.isfinite(cost):
            # Averaging samples that pass an obstacle on both sides can put the mean
            # through it; fall back to the cheapest collision-free sample of the batch.
            ok = ~collided if collided is not None else np.ones(k, dtype=bool)
            best = int(np.flatnonzero(ok)[np.argmin(costs[ok])])
            mean, traj = controls[best].copy(), trajectories[best].copy()
            cost = float(costs[best])

        self._mean = mean
        self._prev = mean.copy()
        result = PlanResult(controls=mean.copy(), trajectory=traj, cost=cost,
                            iterations=iterations,
                            solve_time_ms=(time.perf_counter() - t0) * 1e3,
                            status=STATUS_OK,
                            sampled_trajectories=self._visualized(trajectories))
        self._adapt_samples(result.solve_time_ms)
        return result
