"""MPPI optimizer: sample -> roll out -> score -> update, in plain numpy.

One `plan` call:
  1. builds the navigation function (cost-to-go) once from the distance field;
  2. warm-starts the mean control sequence from the previous solution shifted one step
     (the last step repeated), assuming plan is called once per `dt`;
  3. per iteration: samples K noisy sequences around the mean plus two special ones (a
     stop, and the mean itself), clamps them to the robot limits, rolls them out, sums
     the critics' costs and replaces the mean by the softmax(-cost / temperature)
     weighted average of the clamped samples;
  4. returns the final mean, its trajectory and cost.
A weighted average of feasible sequences is feasible (velocity and acceleration limits
are convex constraints), so the mean never needs re-clamping beyond rounding.
"""
from __future__ import annotations

import math
import time
from typing import List, Optional, Sequence

import numpy as np

from wm_common.grid import Grid2D

from .critic_data import CriticData
from .critics import Critic, ObstacleCritic, make_critics
from .models import (STATUS_COLLISION, STATUS_FAILED, STATUS_OK, Goal, OptimizerSettings,
                     PlanResult, RobotLimits, RobotState)
from .navigation_function import cost_to_go
from .predicted_occupancy import PredictedOccupancy
from .motion_model import KinematicMotionModel
from .unicycle import clamp_controls

# Indices of the special samples in every batch.
_STOP = 0
_MEAN = 1


class MPPI:
    """Model Predictive Path Integral controller for a unicycle base.

    critics: a list of Critic (default: make_critics()). nav_inflation /
    nav_inflation_gain shape the navigation function's soft cost near obstacles
    (nav_inflation defaults to the obstacle critic's inflation_radius, else 0.3 m).
    num_visualized: how many sampled trajectories PlanResult carries for RViz.
    motion_model: what rolls the controls out (wm_planner.motion_model); kinematics by
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
        # (C, 3) footprint circles [x, y, r] in base_link; None: one circle of robot_radius
        self.footprint = None if footprint is None or len(footprint) == 0 else \
            np.asarray(footprint, dtype=np.float64).reshape(-1, 3)
        self.motion_model = motion_model if motion_model is not None else \
            KinematicMotionModel()
        self._sigma = np.array([self.settings.noise_sigma_v, self.settings.noise_sigma_w])
        self._rng = np.random.default_rng(self.settings.seed)
        self._mean: Optional[np.ndarray] = None   # warm start, (H, 2)
        self._prev: Optional[np.ndarray] = None   # last returned controls, (H, 2)
        self.last_cost_to_go: Optional[Grid2D] = None  # for debugging / RViz

    def reset(self) -> None:
        """Forget the warm start (call on a new goal, after a stop or a long pause)."""
        self._mean = None
        self._prev = None

    # -- helpers ------------------------------------------------------------------------

    def _warm_start(self, state: RobotState) -> np.ndarray:
        h = self.settings.horizon
        if self._mean is None or self._mean.shape[0] != h:
            # No previous solution: keep the current velocity (what the base does anyway).
            return np.tile([state.v, state.w], (h, 1)).astype(np.float64)
        # The previous solution's step 0 has just been executed: shift by one step.
        return np.concatenate([self._mean[1:], self._mean[-1:]], axis=0)

    def _score(self, data: CriticData) -> np.ndarray:
        total = np.zeros(data.num_samples)
        for critic in self.critics:
            total += critic.score(data)
        return total

    def _data(self, state, goal, controls, trajectories, esdf, ctg,
              predictions=None) -> CriticData:
        return CriticData(state=state, goal=goal, controls=controls,
                          trajectories=trajectories, dt=self.settings.dt,
                          limits=self.limits, robot_radius=self.robot_radius, esdf=esdf,
                          cost_to_go=ctg, prev_controls=self._prev, footprint=self.footprint,
                          predictions=predictions)

    def _stop_result(self, state: RobotState, status: str, cost: float, iterations: int,
                     t0: float, samples: Optional[np.ndarray]) -> PlanResult:
        h = self.settings.horizon
        controls = np.zeros((h, 2))
        # The warm start is stale after an emergency stop; the stop is what was sent.
        self._mean = None
        self._prev = controls.copy()
        traj = np.tile([state.x, state.y, state.yaw], (h + 1, 1)).astype(np.float64)
        return PlanResult(controls=controls, trajectory=traj, cost=cost,
                          iterations=iterations,
                          solve_time_ms=(time.perf_counter() - t0) * 1e3, status=status,
                          sampled_trajectories=self._visualized(samples))

    def _visualized(self, trajectories: Optional[np.ndarray]) -> np.ndarray:
        if trajectories is None or self.num_visualized <= 0:
            return np.zeros((0, self.settings.horizon + 1, 3))
        k = trajectories.shape[0]
        idx = np.unique(np.linspace(0, k - 1, min(self.num_visualized, k)).astype(int))
        return trajectories[idx].copy()

    # -- main entry point ---------------------------------------------------------------

    def plan(self, state: RobotState, goal: Goal, esdf: Optional[Grid2D] = None, *,
             predictions: Optional[Sequence[PredictedOccupancy]] = None) -> PlanResult:
        """One MPPI solve from `state` toward `goal` over the distance field `esdf`.

        predictions: perception's occupancy forecasts (time offsets relative to `state`),
        for the predicted_occupancy critic; None when there are none.

        status: 'ok'; 'collision' when every sample (the stop included) collides, with a
        stop command; 'failed' on non-finite state or costs (a NaN in the distance field,
        say), also with a stop command.
        """
        t0 = time.perf_counter()
        s = self.settings
        k, h, dt = s.num_samples, s.horizon, s.dt
        if not all(math.isfinite(v) for v in (state.x, state.y, state.yaw, state.v, state.w)):
            return self._stop_result(state, STATUS_FAILED, math.inf, 0, t0, None)

        # Once per call, not per iteration: the field and the goal do not change within it.
        ctg = None
        if esdf is not None and self.use_navigation_function:
            ctg = cost_to_go(esdf, (goal.x, goal.y), self.robot_radius, self.nav_inflation,
                             self.nav_inflation_gain)
        self.last_cost_to_go = ctg

        mean = self._warm_start(state)
        budget_s = s.time_budget_ms * 1e-3
        iterations = 0
        while True:
            t_iter = time.perf_counter()
            samples = mean + self._rng.standard_normal((k, h, 2)) * self._sigma
            samples[_STOP] = 0.0     # after clamping: the hardest allowed braking
            samples[_MEAN] = mean    # the current solution always competes unperturbed
            controls = clamp_controls(samples, self.limits, state.v, state.w, dt)
            trajectories = self.motion_model.rollout(state, controls, dt)
            data = self._data(state, goal, controls, trajectories, esdf, ctg, predictions)
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
            mean = np.tensordot(weights, controls, axes=1)

            now = time.perf_counter()
            if iterations >= s.iterations or (now - t0) + (now - t_iter) > budget_s:
                break

        # Rounding can leave the average a hair outside the limits; clamp is idempotent.
        mean = clamp_controls(mean, self.limits, state.v, state.w, dt)
        traj = self.motion_model.rollout(state, mean, dt)
        mean_data = self._data(state, goal, mean[None], traj[None], esdf, ctg, predictions)
        cost = float(self._score(mean_data)[0])
        mean_collides = (mean_data.in_collision is not None
                         and bool(mean_data.in_collision[0]))
        if mean_collides or not math.isfinite(cost):
            # Averaging samples that pass an obstacle on both sides can put the mean
            # through it; fall back to the cheapest collision-free sample of the batch.
            ok = ~collided if collided is not None else np.ones(k, dtype=bool)
            best = int(np.flatnonzero(ok)[np.argmin(costs[ok])])
            mean, traj, cost = controls[best].copy(), trajectories[best], float(costs[best])

        self._mean = mean
        self._prev = mean.copy()
        return PlanResult(controls=mean.copy(), trajectory=traj, cost=cost,
                          iterations=iterations,
                          solve_time_ms=(time.perf_counter() - t0) * 1e3,
                          status=STATUS_OK, sampled_trajectories=self._visualized(trajectories))
