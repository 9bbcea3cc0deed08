"""The planner's motion models as CasADi expressions, for the NMPC (wm_planner.nmpc).

Both models step the state [x, y, yaw, v, w] under a command [v_cmd, w_cmd] held for `dt`,
given a context vector (the world model's [payload_kg, payload_known, latent...]):

* CasadiKinematics: kinematics.unicycle_terms (explicit Euler on the heading at the start
  of the step; the velocities become the command at once). The context is ignored.
* CasadiWorldModel: wm_world_model.model.WorldModel.next rebuilt from the module's weights
  (calibrated unicycle step, body-frame residual MLP of Linear + SiLU layers, tanh bound,
  rotation into the world, velocity clamp), in float64. The clamp is the exact fmin/fmax:
  its kink lies at the model's physical limits (2 m/s, 3 rad/s), far outside what the
  planner's velocity box lets the optimizer ask for, so it never costs IPOPT smoothness.

`step_function()` is an SX Function, so the NLP that calls it H times gets cheap exact
derivatives; `rollout_function(H)` is the numeric H-step rollout (mapaccum) that the NMPC
uses to re-roll a solution and to score candidates. torch is only needed to load an
artifact (wm_world_model.artifact.load_artifact), never to evaluate the model.
"""
from __future__ import annotations

import math
from typing import Any, List, Optional, Tuple

import casadi as ca
import numpy as np

from wm_world_model.kinematics import calibrated_increments, calibration_gains, unicycle_terms
from wm_world_model.model import WorldModel

STATE_DIM = 5
ACTION_DIM = 2


class CasadiKinematics:
    """The unicycle the planner assumes without a learned model (context ignored)."""

    name = "kinematic"
    version = ""

    def __init__(self, dt: float, context_dim: int = 2):
        if not (dt > 0.0 and math.isfinite(dt)):
            raise ValueError("dt must be positive")
        self.dt = float(dt)
        self.context_dim = int(context_dim)

    def step(self, x, u, ctx=None):
        """x' for state x (5), command u (2); works on SX, MX and DM."""
        return ca.vertcat(*unicycle_terms(x[0], x[1], x[2], u[0], u[1], self.dt, ca.cos,
                                          ca.sin), u[0], u[1])

    def step_function(self, sym=ca.SX) -> ca.Function:
        return _step_function(self, sym)

    def rollout_function(self, horizon: int, sym=ca.SX) -> ca.Function:
        return _rollout_function(self, horizon, sym)

    def surrogate(self) -> "CasadiKinematics":
        """The model without learned parts (for an NLP's Hessian): itself."""
        return self


class CalibratedKinematics(CasadiKinematics):
    """wm_world_model.kinematics.calibrated_step: the world model without its residual."""

    name = "calibrated_kinematics"

    def __init__(self, dt: float, scale_v: float, scale_w: float, gain_v: float,
                 gain_w: float, context_dim: int = 2):
        super().__init__(dt, context_dim)
        self.scale_v, self.scale_w = float(scale_v), float(scale_w)
        self.gain_v, self.gain_w = float(gain_v), float(gain_w)

    def step(self, x, u, ctx=None):
        return ca.vertcat(*_calibrated(self, x, u))


def _calibrated(m, x, u):
    """calibrated_step's [x, y, yaw, v, w] (a list of expressions), from the world model's
    own calibrated_increments."""
    ds, dyaw, v1, w1 = calibrated_increments(x[3], x[4], u[0], u[1], m.gain_v, m.gain_w,
                                             m.scale_v, m.scale_w, m.dt)
    mid = x[2] + 0.5 * dyaw
    return [x[0] + ds * ca.cos(mid), x[1] + ds * ca.sin(mid), x[2] + dyaw, v1, w1]


class CasadiWorldModel:
    """WorldModel.next as a CasADi expression of the module's weights (see module doc)."""

    name = "world_model"

    def __init__(self, model: Any, version: str = ""):
        cfg = model.config
        self.version = str(version)
        self.dt = float(model.dt)
        self.use_payload = bool(model.use_payload)
        self.latent_dim = int(model.latent_dim)
        self.context_dim = 2 + self.latent_dim
        f64 = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
        cal = f64(model.calibration)
        # calibrated_step's gains, computed by the world model's own function
        self.scale_v, self.scale_w = float(cal[0]), float(cal[1])
        self.gain_v, self.gain_w = (float(g) for g in calibration_gains(
            model.calibration.detach().double(), self.dt))
        self.residual_bound = f64(model.residual_bound)
        self.v_abs_max = float(f64(model.velocity_limit)[0])
        self.w_abs_max = float(f64(model.velocity_limit)[1])
        self.feature_mean = f64(model.feature_mean)
        self.feature_std = f64(model.feature_std)
        self.layers: List[Tuple[str, Optional[np.ndarray], Optional[np.ndarray]]] = []
        for mod in model.residual:
            kind = type(mod).__name__
            if kind == "Linear":
                self.layers.append(("linear", f64(mod.weight), f64(mod.bias)))
            elif kind == "SiLU":
                self.layers.append(("silu", None, None))
            else:
                raise ValueError("world model residual layer %s has no CasADi form" % kind)
        if int(cfg.feature_dim) != self.feature_mean.size:
            raise ValueError("world model normalisation does not match its feature size")

    def features(self, x, u, ctx):
        """Normalised residual inputs [v, w, v_cmd, w_cmd, payload, known, latent...]."""
        known = ctx[1] if self.use_payload else 0.0
        parts = [x[3], x[4], u[0], u[1], ctx[0] * known, known]
        for i in range(self.latent_dim):
            parts.append(ctx[2 + i])
        f = ca.vertcat(*parts)
        return (f - self.feature_mean) / self.feature_std

    def correction(self, x, u, ctx):
        """(5,) bounded body-frame residual [dx_body, dy_body, dyaw, dv, dw]."""
        h = self.features(x, u, ctx)
        for kind, w, b in self.layers:
            if kind == "linear":
                h = ca.mtimes(ca.DM(w), h) + ca.DM(b)
            else:
                # SiLU(h) = h * sigmoid(h), written so that exp never overflows.
                h = h / (1.0 + ca.exp(-h))
        return self.residual_bound * ca.tanh(h)

    def step(self, x, u, ctx):
        """x' = WorldModel.next(x, u, ctx); works on SX, MX (dense matrix products: much
        faster derivatives than SX's scalar graph for 64-wide layers) and DM."""
        bx, by, byaw, v1, w1 = _calibrated(self, x, u)
        r = self.correction(x, u, ctx)
        c, s = ca.cos(x[2]), ca.sin(x[2])
        return ca.vertcat(
            bx + c * r[0] - s * r[1],
            by + s * r[0] + c * r[1],
            byaw + r[2],
            ca.fmin(ca.fmax(v1 + r[3], -self.v_abs_max), self.v_abs_max),
            ca.fmin(ca.fmax(w1 + r[4], -self.w_abs_max), self.w_abs_max))

    def step_function(self, sym=ca.SX) -> ca.Function:
        return _step_function(self, sym)

    def rollout_function(self, horizon: int, sym=ca.SX) -> ca.Function:
        return _rollout_function(self, horizon, sym)

    def surrogate(self) -> CalibratedKinematics:
        """The calibrated baseline alone: the NMPC takes its Hessian from it (the residual's
        curvature is small by construction -- its output is tanh-bounded to a few cm -- and
        exact second derivatives of a 64-wide MLP cost ~10 ms per iteration here)."""
        return CalibratedKinematics(self.dt, self.scale_v, self.scale_w, self.gain_v,
                                    self.gain_w, self.context_dim)


def _step_function(model, sym=ca.SX) -> ca.Function:
    x = sym.sym("x", STATE_DIM)
    u = sym.sym("u", ACTION_DIM)
    ctx = sym.sym("ctx", max(int(model.context_dim), 1))
    return ca.Function("step", [x, u, ctx], [model.step(x, u, ctx)], ["x", "u", "ctx"],
                       ["x_next"])


def _rollout_function(model, horizon: int, sym=ca.SX) -> ca.Function:
    """(x0 (5), U (2 x H), ctx) -> X (5 x H): the states after each step."""
    x0 = sym.sym("x0", STATE_DIM)
    us = sym.sym("U", ACTION_DIM, horizon)
    ctx = sym.sym("ctx", max(int(model.context_dim), 1))
    step = _step_function(model, sym) if sym is ca.MX else None
    xs = []
    xk = x0
    for k in range(horizon):
        # MX: one call node per step (the graph stays small); SX: inlined.
        xk = step(xk, us[:, k], ctx) if step is not None else model.step(xk, us[:, k], ctx)
        xs.append(xk)
    return ca.Function("rollout", [x0, us, ctx], [ca.horzcat(*xs)], ["x0", "U", "ctx"],
                       ["X"])


def make_context(model, payload_kg: Optional[float] = None) -> np.ndarray:
    """The context vector for one robot: [payload_kg, known, 0 latent...]."""
    ctx = np.zeros(max(int(model.context_dim), 1))
    if payload_kg is not None and ctx.size >= 2:
        ctx[0] = float(payload_kg)
        ctx[1] = 1.0
    return ctx


__all__ = ["CalibratedKinematics", "CasadiKinematics", "CasadiWorldModel", "make_context",
           "STATE_DIM", "ACTION_DIM"]


def casadi_form(world_model: Optional[WorldModel], version: str, dt: float):
    """The CasADi form of a motion model: of its torch WorldModel (a loaded, verified
    artifact: MotionModel.world_model), or the plain unicycle when it has none. Derived from
    the model the planner already runs, so a hybrid planner loads and verifies an artifact
    once and its NMPC plans with the same model as its MPPI, also after a swap."""
    if world_model is None:
        return CasadiKinematics(dt)
    return CasadiWorldModel(world_model, version=version)
