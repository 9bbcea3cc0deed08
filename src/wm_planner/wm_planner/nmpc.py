"""Nonlinear MPC with CasADi: a second solver next to MPPI, and a refiner of MPPI's solution.

The NLP, built once per distance-field window shape (not per cycle):
  decision variables  the H commands U (2 x H), single shooting: the model is stepped inside
                      the NLP (states are expressions of U), plus one slack per footprint
                      circle and future step when there is a distance field;
  parameters          the measured state, goal, last sent command, one switch per
                      goal-gated critic (goal_angle / path_angle / prefer_forward by
                      default: 1 or 0 per solve from the critic's `active`), the world
                      model's context, and the distance field and cost-to-go of a
                      fixed-size window around the robot (its origin is a parameter too);
  bounds              the velocity box of RobotLimits on every command;
  constraints         acceleration limits as linear constraints on successive commands,
                      starting from the measured (v, w) (clipped the way clamp_controls
                      does, so a measured velocity outside the box never makes it
                      infeasible); clearance(circle) + slack >= safety_margin per footprint
                      circle and future step;
  objective           the sum of weight * smooth_cost over the critics with nmpc_form
                      "smooth" (by default goal cost-to-go, terminal heading, path angle,
                      obstacle inflation, control effort, smoothness, prefer forward),
                      each the critic's own smooth form, written in its class over the
                      NLP's symbols (critics/smooth.py's SmoothInputs; the objective here
                      names no critic), plus an exact L1 (+ small L2) penalty on the
                      clearance slacks. Critics declared "sampler only" are left out
                      (ignored_critics); an undeclared one is refused by name when the
                      NMPC is built.

Why single shooting (the default; multiple_shooting=True adds the 5 x H states and the
dynamics as equality constraints): H is 10, the dynamics (unicycle, or calibrated lag + a
bounded residual) are stable over 1 s, a rolled-out iterate is always dynamically
consistent (what a truncated real-time solve needs), and the reduced 20 x 20 Hessian suits
the SQP. Measured once on the warehouse scene (shared 2-core machine): kinematic, single
shooting IPOPT 9 iterations / SQP 3, multiple shooting 11 / 12; world model, single
shooting IPOPT 10 (39 ms) / SQP 5 (20 ms), multiple shooting 10 (23 ms) / 12 (29 ms).

World model: the NLP evaluates it exactly (MX graph: its 64-wide layers as dense matrix
products), but takes the Hessian of the Lagrangian from the calibrated kinematics alone
(`hessian='surrogate'`, the default): the residual's output is tanh-bounded to a few cm
per step, so its curvature matters little, while its exact second derivatives cost
~5-15 ms per iteration here (`hessian='exact'` keeps them). Gradients and Jacobians stay
exact, so converged solutions are those of the world-model NLP.

Why slacks on the clearance constraint, not a hard inequality: a robot already inside its
margin (or one the world moved next to) makes the hard NLP infeasible and IPOPT then
fails exactly when a sensible braking command matters most; the exact penalty keeps the
NLP always feasible, gives the hard solution whenever one exists (the L1 weight exceeds
any multiplier the other terms produce), and the returned plan is then checked against
the distance field with the obstacle critic's own test (collision -> stop).

Distance field and cost-to-go: uniform cubic B-splines (casadi.bspline) whose control
points are the grid values of the window, i.e. parameters of the NLP. A B-spline with the
samples as control points reproduces linear fields exactly and never rings (each value is
a convex combination of 4 x 4 samples), so a distance field's value and gradient stay
faithful while the NLP gets C2 functions. (casadi.interpolant('bspline') with parametric
values refits the spline with a linear solve on every evaluation: 345 ms at 160 x 160;
'linear' has no curvature.) The window is a fixed number of cells around the robot, as
large as one horizon can reach, so the NLP's size does not depend on perception's window
and one build serves every cycle; `local_window=False` passes the whole field instead.
The derivative functions are built with common-subexpression elimination, otherwise
every spline evaluation recomputes the derivative coefficients of the whole window.

The final plan is always re-rolled from the clamped commands (the solver's constraints
hold to a tolerance only) and scored with the same critics MPPI uses (PlanResult.cost is
the MPPI cost, comparable across solvers); status 'collision' (stop) when it hits the
field per the obstacle critic, 'failed' (stop) on non-finite input, a corrupt field in the
window, a solver error or non-finite output. Numerical failures never raise.

`refine` is the hybrid mode: a few SQP (or IPOPT) iterations from MPPI's result, kept only
when feasible and cheaper under the critics.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import casadi as ca
import numpy as np
from scipy.ndimage import distance_transform_edt

from wm_common.footprint import Footprint
from wm_common.grid import Grid2D
from wm_world_model.casadi_form import (CasadiKinematics, CasadiWorldModel, casadi_form,
                                       make_context)
from wm_world_model.kinematics import clamp_controls, unicycle_terms
from wm_world_model.motion_model import MotionModel
from wm_world_model.state import RobotLimits, RobotState

from . import configure
from .critic_data import CriticData
from .critics import Critic, ObstacleCritic, make_critics
from .critics.smooth import SmoothInputs
from .models import (STATUS_COLLISION, STATUS_FAILED, STATUS_OK, Goal, OptimizerSettings,
                     PlanResult)
from .navigation_function import cost_to_go

SOLVERS = ("ipopt", "sqpmethod")
# Parameter vector layout: the state, goal and previous command, then one switch per
# goal-gated critic (NMPC._n_fixed marks their end), the context, window origin and grids.
_X0, _GOAL, _PREV = slice(0, 5), slice(5, 8), slice(8, 10)
_SWITCHES = 10
# IPOPT return statuses whose iterate is garbage (anything else -- converged, iteration or
# time limit -- leaves a finite iterate that the post-checks may accept).
_IPOPT_FATAL = ("Invalid_Number_Detected", "Error_In_Step_Computation",
                "Not_Enough_Degrees_Of_Freedom", "Invalid_Problem_Definition",
                "Invalid_Option", "Unrecoverable_Exception", "NonIpopt_Exception_Thrown",
                "Insufficient_Memory", "Internal_Error", "Restoration_Failed")


def _objective_critics(critics: Sequence[Critic]) -> Tuple[List[Critic], List[str]]:
    """(the critics whose smooth form is in the objective, the names of those left to the
    sampler), of the enabled critics with a weight; ValueError naming a critic that
    declares neither (a new critic is never silently left out of the objective)."""
    smooth: List[Critic] = []
    ignored: List[str] = []
    for c in critics:
        if not c.enabled or c.weight == 0.0:
            continue
        if c.nmpc_form == "smooth" and type(c).smooth_cost is not Critic.smooth_cost:
            smooth.append(c)
        elif c.nmpc_form.startswith("sampler only"):
            ignored.append(c.name)
        else:
            raise ValueError(
                "critic %r has no form in the NMPC's objective: give its class a "
                "smooth_cost (wm_planner/critics/base.py) and nmpc_form = 'smooth', or "
                "declare nmpc_form = 'sampler only: <why>', or leave it out of `critics` "
                "with solver nmpc/hybrid" % c.name)
    return smooth, ignored


@dataclass
class RefineInfo:
    """What the last `refine` call did (diagnostics, benchmark)."""

    accepted: bool = False
    reason: str = ""
    cost_before: float = math.nan
    cost_after: float = math.nan
    iterations: int = 0
    time_ms: float = 0.0


class _Problem:
    """One NLP (for one window shape) and its solvers, built once."""

    def __init__(self, key: Tuple, nlp: Dict[str, Any], derivs: Dict[str, ca.Function],
                 f_fn: ca.Function, n_u: int, n_x: int, n_s: int, n_g_acc: int,
                 n_g_dyn: int, n_g_obs: int, grid_shape: Optional[Tuple[int, int]]):
        self.key = key
        self.nlp = nlp
        self.derivs = derivs
        self.f_fn = f_fn
        self.n_u, self.n_x, self.n_s = n_u, n_x, n_s
        self.n_g_acc, self.n_g_dyn, self.n_g_obs = n_g_acc, n_g_dyn, n_g_obs
        self.grid_shape = grid_shape
        self.solvers: Dict[Tuple, ca.Function] = {}
        self.callbacks: List[ca.Callback] = []


class NMPC:
    """CasADi NMPC with MPPI's call shape (see the module docstring).

    settings / limits / critics / robot_radius / footprint / nav_inflation*: as MPPI's (the
        horizon and dt come from settings; the objective's weights from the critics).
    model: a CasadiKinematics / CasadiWorldModel (wm_world_model.casadi_form.casadi_form of
        the planner's motion model); None: the plain unicycle.
    solver: 'ipopt' (default) or 'sqpmethod' (CasADi's SQP with the QP solver `qpsol`,
        'qrqp' by default); max_iter and max_time_ms (IPOPT's wall-clock limit; the SQP has
        none, bound it with max_iter) cap one plan.
    safety_margin: metres of clearance the constraint asks beyond every footprint circle.
    refine_solver / refine_max_iter / refine_time_ms: defaults of `refine`.
    """

    def __init__(self, settings: Optional[OptimizerSettings] = None,
                 limits: Optional[RobotLimits] = None,
                 critics: Optional[Sequence[Critic]] = None,
                 robot_radius: float = 0.3, *,
                 footprint=None,
                 model=None,
                 solver: str = "ipopt",
                 qpsol: str = "qrqp",
                 max_iter: int = 30,
                 max_time_ms: Optional[float] = None,
                 safety_margin: float = 0.05,
                 slack_weight: float = 1000.0,
                 use_navigation_function: bool = True,
                 nav_inflation: Optional[float] = None,
                 nav_inflation_gain: float = 2.0,
                 local_window: bool = True,
                 multiple_shooting: bool = False,
                 hessian: str = "surrogate",
                 refine_solver: str = "sqpmethod",
                 refine_max_iter: int = 3,
                 refine_time_ms: Optional[float] = None,
                 ipopt_options: Optional[Dict[str, Any]] = None):
        self.settings = settings if settings is not None else OptimizerSettings()
        self.limits = limits if limits is not None else RobotLimits()
        self.critics: List[Critic] = list(critics) if critics is not None else make_critics()
        if not (robot_radius >= 0.0 and math.isfinite(robot_radius)):
            raise ValueError("robot_radius must be finite and >= 0")
        self.robot_radius = float(robot_radius)
        # a Footprint polygon enters the NLP as its cover by circles (wm_common.footprint)
        if isinstance(footprint, Footprint):
            footprint = footprint.circles
        self.footprint = None if footprint is None or len(footprint) == 0 else \
            np.asarray(footprint, dtype=np.float64).reshape(-1, 3)
        for name in (solver, refine_solver):
            if name not in SOLVERS:
                raise ValueError("solver must be one of %s, got %r" % (SOLVERS, name))
        if max_iter < 1 or refine_max_iter < 1:
            raise ValueError("max_iter and refine_max_iter must be >= 1")
        if not (safety_margin >= 0.0 and slack_weight > 0.0):
            raise ValueError("safety_margin >= 0 and slack_weight > 0 required")
        if model is None:
            model = CasadiKinematics(self.settings.dt)
        if abs(model.dt - self.settings.dt) > 1e-9:
            raise ValueError("the motion model steps %.3f s but the planner's dt is %.3f s"
                             % (model.dt, self.settings.dt))
        self.model = model
        self.solver = solver
        self.qpsol = qpsol
        self.max_iter = int(max_iter)
        self.max_time_ms = max_time_ms
        self.safety_margin = float(safety_margin)
        self.slack_weight = float(slack_weight)
        self.use_navigation_function = bool(use_navigation_function)
        obstacle = [c for c in self.critics if isinstance(c, ObstacleCritic)]
        self._obstacle_check = obstacle[0] if obstacle else ObstacleCritic()
        if nav_inflation is None:
            nav_inflation = obstacle[0].inflation_radius if obstacle else 0.3
        self.nav_inflation = float(nav_inflation)
        self.nav_inflation_gain = float(nav_inflation_gain)
        self.local_window = bool(local_window)
        self.multiple_shooting = bool(multiple_shooting)
        self.refine_solver = refine_solver
        self.refine_max_iter = int(refine_max_iter)
        self.refine_time_ms = refine_time_ms
        self.ipopt_options = dict(ipopt_options or {})
        self._smooth, self._ignored = _objective_critics(self.critics)
        self._gated = [c for c in self._smooth if c.goal_gated]
        self._n_fixed = _SWITCHES + len(self._gated)
        self.payload_kg: Optional[float] = None

        h = self.settings.horizon
        learned = isinstance(model, CasadiWorldModel)
        if hessian not in ("exact", "surrogate"):
            raise ValueError("hessian must be 'exact' or 'surrogate', got %r" % (hessian,))
        self.hessian = hessian
        # MX (dense matrix products) for the MLP, SX (scalar graph) for plain kinematics.
        sym = ca.MX if learned else ca.SX
        self._step = model.step_function(sym)
        self._rollout_fn = model.rollout_function(h, sym)
        self._rollout_num = model.rollout_function(h)
        self._surrogate = None
        if learned and hessian == "surrogate":
            sur = model.surrogate()
            self._surrogate = (sur.step_function(), sur.rollout_function(h))
        self._problems: Dict[Tuple, _Problem] = {}
        self.builds = 0                 # NLPs built (tests, diagnostics)
        self.solver_builds = 0          # nlpsol instances created
        self._u: Optional[np.ndarray] = None      # last solution (H, 2): warm start
        self._lam: Optional[Tuple[np.ndarray, np.ndarray]] = None
        self._prev: Optional[np.ndarray] = None   # last returned controls
        self.last_cost_to_go: Optional[Grid2D] = None
        self.last_stats: Dict[str, Any] = {}
        self.last_refine = RefineInfo()

    # -- configuration ------------------------------------------------------------------

    @property
    def circles(self) -> np.ndarray:
        if self.footprint is None:
            return np.array([[0.0, 0.0, self.robot_radius]])
        return self.footprint

    @property
    def ignored_critics(self) -> List[str]:
        """Critics with no term in the NLP (they still score the result)."""
        return list(self._ignored)

    def set_payload(self, payload_kg: Optional[float]) -> None:
        """The carried mass (kg) for the world model's context, or None when unknown."""
        if payload_kg is not None and not (math.isfinite(payload_kg) and payload_kg >= 0.0):
            raise ValueError("payload must be a finite mass >= 0, got %r" % (payload_kg,))
        self.payload_kg = None if payload_kg is None else float(payload_kg)

    def reset(self) -> None:
        """Forget the warm start (call on a new goal, after a stop or a long pause)."""
        self._u = None
        self._lam = None
        self._prev = None

    def window_cells(self, resolution: float) -> int:
        """Side of the field window the NLP sees, in cells: what one horizon can reach."""
        s, lim = self.settings, self.limits
        reach = max(lim.v_max, -lim.v_min) * s.horizon * s.dt
        if isinstance(self.model, CasadiWorldModel):
            reach += float(np.max(self.model.residual_bound[:2])) * s.horizon
        c = self.circles
        reach += float(np.max(np.hypot(c[:, 0], c[:, 1]) + c[:, 2]))
        # the obstacle critic's penalty reads the field up to its inflation radius
        reach += self._obstacle_check.inflation_radius + self.safety_margin
        # +2 cells of spline support on each side, +1 for the robot's cell offset.
        return 2 * int(math.ceil(reach / resolution)) + 6

    # -- the NLP ------------------------------------------------------------------------

    def _context(self) -> np.ndarray:
        return make_context(self.model, self.payload_kg)

    def _problem(self, key: Tuple) -> _Problem:
        prob = self._problems.get(key)
        if prob is None:
            prob = self._build(key)
            self._problems[key] = prob
            self.builds += 1
        return prob

    def _build(self, key: Tuple) -> _Problem:
        h = self.settings.horizon
        grid_shape = key[1] if key[0] == "field" else None
        has_ctg = bool(key[3]) if grid_shape is not None else False
        nc = self.circles.shape[0]
        n_ctx = self._step.size1_in(2)
        n_grid = grid_shape[0] * grid_shape[1] if grid_shape is not None else 0
        n_fixed = self._n_fixed
        n_p = n_fixed + n_ctx + ((2 + n_grid * (2 if has_ctg else 1)) if n_grid else 0)

        u = ca.MX.sym("U", 2, h)
        n_s = h * nc if grid_shape is not None else 0
        slack = ca.MX.sym("S", n_s)
        p = ca.MX.sym("p", n_p)
        ctx = p[n_fixed:n_fixed + n_ctx]
        esdf_fn = ctg_fn = None
        if grid_shape is not None:
            off = n_fixed + n_ctx
            origin = p[off:off + 2]
            esdf_fn = _spline_field(p[off + 2:off + 2 + n_grid], grid_shape, key[2], origin)
            if has_ctg:
                ctg_fn = _spline_field(p[off + 2 + n_grid:off + 2 + 2 * n_grid], grid_shape,
                                       key[2], origin)
        res = key[2] if grid_shape is not None else 0.1
        xs_ms = ca.MX.sym("X", 5, h) if self.multiple_shooting else None

        def nlp_of(step, rollout):
            """(w, f, g, n_x, n_g_acc, n_g_dyn, n_g_obs) with the given dynamics."""
            if self.multiple_shooting:
                xs = xs_ms
                w = ca.vertcat(ca.vec(u), ca.vec(xs), slack)
                prev_x = ca.horzcat(p[_X0], xs[:, :-1])
                g_dyn = ca.vertcat(*[xs[:, k] - step(prev_x[:, k], u[:, k], ctx)
                                     for k in range(h)])
            else:
                w = ca.vertcat(ca.vec(u), slack)
                xs = rollout(p[_X0], u, ctx)
                g_dyn = ca.MX(0, 1)
            f, g_acc, g_obs = self._objective(u, [xs[:, k] for k in range(h)], slack, p,
                                              esdf_fn, ctg_fn, res)
            g = ca.vertcat(g_acc, g_dyn, g_obs)
            return w, f, g, (5 * h if self.multiple_shooting else 0), g_acc.size1(), \
                g_dyn.size1(), g_obs.size1()

        w, f, g, n_x, n_g_acc, n_g_dyn, n_g_obs = nlp_of(self._step, self._rollout_fn)
        nlp = {"x": w, "p": p, "f": f, "g": g}
        lam_f = ca.MX.sym("lam_f")
        lam_g = ca.MX.sym("lam_g", g.size1())
        if self._surrogate is not None:
            # The Hessian of the same NLP with the calibrated kinematics as the model.
            _, f_h, g_h = nlp_of(self._surrogate[0], self._surrogate[1])[:3]
        else:
            f_h, g_h = f, g
        # Derivatives with common-subexpression elimination: every spline call's derivative
        # otherwise recomputes the window's derivative coefficients (40 points at 160 x 160:
        # 21 ms per Hessian instead of 0.6 ms).
        hess = ca.triu(ca.hessian(lam_f * f_h + ca.dot(lam_g, g_h), w)[0])
        cse = {"cse": True}
        derivs = {
            "grad_f": ca.Function("nlp_grad_f", [w, p], ca.cse([f, ca.gradient(f, w)]),
                                  ["x", "p"], ["f", "grad_f_x"], cse),
            "jac_g": ca.Function("nlp_jac_g", [w, p], ca.cse([g, ca.jacobian(g, w)]),
                                 ["x", "p"], ["g", "jac_g_x"], cse),
            "hess_lag": ca.Function("nlp_hess_l", [w, p, lam_f, lam_g], [ca.cse(hess)],
                                    ["x", "p", "lam_f", "lam_g"], ["triu_hess_gamma_x_x"], cse),
        }
        f_fn = ca.Function("nlp_f", [w, p], [f])
        return _Problem(key, nlp, derivs, f_fn, 2 * h, n_x, n_s, n_g_acc, n_g_dyn, n_g_obs,
                        grid_shape)

    def _objective(self, u, states, slack, p, esdf_fn, ctg_fn, res: float):
        """(f, g_acc, g_obs): the critics' smooth forms, the acceleration rows and the
        clearance rows, for future states[k] = [x, y, yaw, v, w] after step k."""
        s = self.settings
        h = s.horizon
        circles = self.circles
        nc = circles.shape[0]
        g_acc = ca.vec(ca.horzcat(u[:, 0], u[:, 1:] - u[:, :-1]))
        clearances = []
        if esdf_fn is not None:
            for k in range(h):
                c, sn = ca.cos(states[k][2]), ca.sin(states[k][2])
                for j in range(nc):
                    cx = states[k][0] + c * circles[j, 0] - sn * circles[j, 1]
                    cy = states[k][1] + sn * circles[j, 0] + c * circles[j, 1]
                    clearances.append(esdf_fn(cx, cy) - circles[j, 2])
        nlp = SmoothInputs(controls=u, states=states, goal=p[_GOAL], previous=p[_PREV],
                           horizon=h, dt=s.dt, limits=self.limits, cost_to_go=ctg_fn,
                           resolution=res, clearances=clearances)
        slots = iter(range(_SWITCHES, self._n_fixed))     # in self._gated's order
        f = 0
        for critic in self._smooth:
            own = replace(nlp, active=p[next(slots)]) if critic.goal_gated else nlp
            f += critic.weight * critic.smooth_cost(own)
        g_obs = [clearance + slack[i] for i, clearance in enumerate(clearances)]
        if esdf_fn is not None:
            f += self.slack_weight * ca.sum1(slack) + 10.0 * self.slack_weight * \
                ca.sumsqr(slack)
        return f, g_acc, ca.vertcat(*g_obs) if g_obs else ca.MX(0, 1)

    def _solver(self, prob: _Problem, name: str, max_iter: int,
                max_time_ms: Optional[float]) -> ca.Function:
        skey = (name, int(max_iter), max_time_ms)
        solver = prob.solvers.get(skey)
        if solver is not None:
            return solver
        d = prob.derivs
        common = {"print_time": False, "error_on_fail": False, "hess_lag": d["hess_lag"]}
        if name == "ipopt":
            opts = dict(common, grad_f=d["grad_f"], jac_g=d["jac_g"])
            ip = {"print_level": 0, "sb": "yes", "max_iter": int(max_iter), "tol": 1e-4,
                  "acceptable_tol": 1e-3, "acceptable_iter": 2,
                  "mu_strategy": "adaptive", "linear_solver": "mumps"}
            if max_time_ms is not None:
                ip["max_wall_time"] = max(float(max_time_ms), 1e-3) * 1e-3
            ip.update(self.ipopt_options)
            opts["ipopt"] = ip
        else:
            # The SQP's QPs need a convex Hessian. casadi's 'regularize' shifts even a
            # positive definite one (a Gershgorin bound), which turns the SQP's quadratic
            # convergence into a linear one (30 iterations instead of 2 warm); its
            # 'eigen-clip' runs Jacobi sweeps that often fail to converge on this Hessian
            # (then 30 ms per call, or a null status). So the Hessian is made convex here,
            # with numpy's eigh on the (n x n, n ~ 30) matrix: ~0.1 ms. max_iter_ls: the
            # default 3 backtracking steps (to 0.5) reject too many useful steps.
            opts = dict(common, max_iter=int(max_iter), qpsol=self.qpsol,
                        print_header=False, print_iteration=False, print_status=False,
                        tol_pr=1e-6, tol_du=1e-4, min_step_size=1e-10, max_iter_ls=8)
            convex = _ConvexHessian("nlp_hess_l_convex", _full_hessian(d["hess_lag"]))
            prob.callbacks.append(convex)     # casadi does not own Python callbacks
            opts["hess_lag"] = convex
            if self.qpsol == "qrqp":
                # max_iter: a degenerate QP can make qrqp cycle for its default 1000.
                opts["qpsol_options"] = {"print_iter": False, "print_header": False,
                                         "print_info": False, "error_on_fail": False,
                                         "max_iter": 200}
            else:
                opts["qpsol_options"] = {"error_on_fail": False}
        solver = ca.nlpsol("nmpc_%s" % name, name, prob.nlp, opts)
        prob.solvers[skey] = solver
        self.solver_builds += 1
        return solver

    # -- per-cycle data -----------------------------------------------------------------

    def _fields(self, state: RobotState, esdf: Grid2D, ctg: Optional[Grid2D]):
        """(key, origin (2,), flat grids) of the window the NLP sees, or raises ValueError
        on a non-finite value in it."""
        res = esdf.resolution
        if self.local_window:
            n = self.window_cells(res)
            ix0 = int(math.floor((state.x - esdf.origin_x) / res)) - n // 2
            iy0 = int(math.floor((state.y - esdf.origin_y) / res)) - n // 2
            finite = esdf.data[np.isfinite(esdf.data)]
            free = max(esdf.outside, float(finite.max()) if finite.size else 0.0)
            grids = [_window(esdf.data, ix0, iy0, n, free)]
            if ctg is not None:
                grids.append(_window(ctg.data, ix0, iy0, n, math.nan))
            shape = (n, n)
            origin = np.array([esdf.origin_x + ix0 * res, esdf.origin_y + iy0 * res])
        else:
            grids = [esdf.data.astype(np.float64)]
            if ctg is not None:
                grids.append(ctg.data.astype(np.float64))
            shape = esdf.data.shape
            origin = np.array([esdf.origin_x, esdf.origin_y])
        if not np.all(np.isfinite(grids[0])):
            raise ValueError("non-finite distance field in the window")
        if ctg is not None:
            # Beyond the field (NaN padding) counts as blocked too.
            blocked = ~(grids[0] > self.robot_radius) | ~np.isfinite(grids[1])
            grids[1] = _extend_across_blocked(grids[1], blocked, res)
            if not np.all(np.isfinite(grids[1])):
                raise ValueError("non-finite cost-to-go in the window")
        key = ("field", (int(shape[0]), int(shape[1])), round(res, 9), ctg is not None)
        return key, origin, [gr.ravel() for gr in grids]

    def _params(self, state: RobotState, goal: Goal, origin, grids) -> ca.DM:
        dist = math.hypot(state.x - goal.x, state.y - goal.y)
        switches = [1.0 if c.active(dist, goal) else 0.0 for c in self._gated]
        prev = self._previous_command(state)
        head = np.concatenate([[state.x, state.y, state.yaw, state.v, state.w],
                               [goal.x, goal.y, goal.yaw], prev, switches, self._context()])
        parts = [head]
        if origin is not None:
            parts.append(origin)
            parts.extend(grids)
        return ca.DM(np.concatenate(parts))

    def _previous_command(self, state: RobotState) -> np.ndarray:
        if self._prev is not None and len(self._prev):
            return np.asarray(self._prev[0], dtype=np.float64)
        return np.array([state.v, state.w], dtype=np.float64)

    def _bounds(self, state: RobotState, prob: _Problem):
        s, lim = self.settings, self.limits
        h = s.horizon
        lbx = np.concatenate([np.tile([lim.v_min, -lim.w_max], h), np.full(prob.n_x, -np.inf),
                              np.zeros(prob.n_s)])
        ubx = np.concatenate([np.tile([lim.v_max, lim.w_max], h), np.full(prob.n_x, np.inf),
                              np.full(prob.n_s, np.inf)])
        step = np.array([lim.a_max * s.dt, lim.alpha_max * s.dt])
        lo = np.array([lim.v_min, -lim.w_max])
        hi = np.array([lim.v_max, lim.w_max])
        # As clamp_controls: from a measured velocity outside the box the box wins.
        v0 = np.clip(np.array([state.v, state.w]), lo - step, hi + step)
        lbg_acc = np.tile(-step, h)
        ubg_acc = np.tile(step, h)
        lbg_acc[:2] += v0
        ubg_acc[:2] += v0
        lbg = np.concatenate([lbg_acc, np.zeros(prob.n_g_dyn),
                              np.full(prob.n_g_obs, self.safety_margin)])
        ubg = np.concatenate([ubg_acc, np.zeros(prob.n_g_dyn), np.full(prob.n_g_obs, np.inf)])
        return lbx, ubx, lbg, ubg

    def _rollout(self, state: RobotState, controls: np.ndarray) -> np.ndarray:
        """(H+1, 3) [x, y, yaw] of `controls` under the NMPC's model."""
        x0 = [state.x, state.y, state.yaw, state.v, state.w]
        xs = np.asarray(self._rollout_num(x0, np.asarray(controls).T, self._context()))
        traj = np.empty((controls.shape[0] + 1, 3))
        traj[0] = x0[:3]
        traj[1:] = xs[:3].T
        return traj

    def _score(self, state, goal, controls, traj, esdf, ctg, predictions=None,
               neighbours=None) -> Tuple[float, bool]:
        """(MPPI critics' cost, collides) of one sequence; prev = the last sent command."""
        data = CriticData(state=state, goal=goal, controls=controls[None],
                          trajectories=traj[None], dt=self.settings.dt, limits=self.limits,
                          robot_radius=self.robot_radius, esdf=esdf, cost_to_go=ctg,
                          prev_controls=self._prev, footprint=self.footprint,
                          predictions=predictions, neighbours=neighbours)
        cost = 0.0
        for critic in self.critics:
            cost += float(critic.score(data)[0])
        collides = False
        if esdf is not None:
            if data.in_collision is None:     # no obstacle critic in the list
                self._obstacle_check.score(data)
            collides = bool(data.in_collision is not None and data.in_collision[0])
        return cost, collides

    def _cold_start(self, state: RobotState, goal: Goal, ctg: Optional[Grid2D]) -> np.ndarray:
        """A pursuit of the goal (or the cost-to-go's descent): turns toward the route first,
        so a goal straight behind the robot does not leave the NLP on a symmetric saddle."""
        s, lim = self.settings, self.limits
        x, y, yaw = state.x, state.y, state.yaw
        u = np.zeros((s.horizon, 2))
        for k in range(s.horizon):
            desired = math.atan2(goal.y - y, goal.x - x)
            if ctg is not None:
                r = ctg.resolution
                gx = float(ctg.sample(np.array([x + r, y])) - ctg.sample(np.array([x - r, y])))
                gy = float(ctg.sample(np.array([x, y + r])) - ctg.sample(np.array([x, y - r])))
                if math.hypot(gx, gy) > 1e-9:
                    desired = math.atan2(-gy, -gx)
            err = (desired - yaw + math.pi) % (2.0 * math.pi) - math.pi
            dist = math.hypot(goal.x - x, goal.y - y)
            u[k, 0] = lim.v_max * max(math.cos(err), 0.0) ** 2 * min(1.0, dist)
            u[k, 1] = float(np.clip(2.0 * err, -lim.w_max, lim.w_max))
            x, y, yaw = unicycle_terms(x, y, yaw, u[k, 0], u[k, 1], s.dt, math.cos, math.sin)
        return clamp_controls(u, lim, state.v, state.w, s.dt)

    def _cold_guess(self, state, goal, ctg, prob, params) -> np.ndarray:
        """The pursuit or holding the current velocity, whichever the NLP prefers."""
        s, lim = self.settings, self.limits
        cands = [self._cold_start(state, goal, ctg),
                 clamp_controls(np.tile([state.v, state.w], (s.horizon, 1)), lim, state.v,
                                state.w, s.dt)]
        vals = [float(prob.f_fn(self._guess_vector(state, c, prob), params)) for c in cands]
        vals = [v if math.isfinite(v) else math.inf for v in vals]
        return cands[int(np.argmin(vals))]

    def _guess_vector(self, state: RobotState, u0: np.ndarray, prob: _Problem) -> np.ndarray:
        parts = [u0.ravel()]
        if prob.n_x:
            x0 = [state.x, state.y, state.yaw, state.v, state.w]
            parts.append(np.asarray(self._rollout_num(x0, u0.T, self._context())).ravel(
                order="F"))
        parts.append(np.zeros(prob.n_s))
        return np.concatenate(parts)

    # -- results ------------------------------------------------------------------------

    def _stop_result(self, state: RobotState, status: str, cost: float, iterations: int,
                     t0: float) -> PlanResult:
        h = self.settings.horizon
        controls = np.zeros((h, 2))
        self._u = None
        self._lam = None
        self._prev = controls.copy()
        traj = np.tile([state.x, state.y, state.yaw], (h + 1, 1)).astype(np.float64)
        return PlanResult(controls=controls, trajectory=traj, cost=cost,
                          iterations=iterations,
                          solve_time_ms=(time.perf_counter() - t0) * 1e3, status=status)

    def _solve(self, state, goal, esdf, ctg, u0, name, max_iter, max_time_ms,
               use_multipliers: bool):
        """Run one solver; returns (controls or None, iterations, stats, reason)."""
        if esdf is not None:
            key, origin, grids = self._fields(state, esdf, ctg)
        else:
            key, origin, grids = ("free",), None, []
        prob = self._problem(key)
        params = self._params(state, goal, origin, grids)
        how = "given"
        if u0 is None:
            u0, how = self._cold_guess(state, goal, ctg, prob, params), "cold"
        lbx, ubx, lbg, ubg = self._bounds(state, prob)
        solver = self._solver(prob, name, max_iter, max_time_ms)
        args = dict(x0=self._guess_vector(state, u0, prob), p=params,
                    lbx=lbx, ubx=ubx, lbg=lbg, ubg=ubg)
        if use_multipliers and self._lam is not None and \
                self._lam[0].size == lbx.size and self._lam[1].size == lbg.size:
            args["lam_x0"], args["lam_g0"] = self._lam
        sol = solver(**args)
        try:
            stats = solver.stats()
        except RuntimeError:   # casadi cannot even report a status: treat as failed
            stats = {"return_status": "no status", "success": False}
        stats = {"return_status": stats.get("return_status", ""),
                 "success": bool(stats.get("success", False)),
                 "iter_count": int(stats.get("iter_count", 0)), "init": how,
                 "key": key}
        x = np.asarray(sol["x"], dtype=np.float64).ravel()
        if not np.all(np.isfinite(x)) or not math.isfinite(float(sol["f"])):
            return None, stats, "non-finite solution"
        if name == "ipopt" and stats["return_status"] in _IPOPT_FATAL:
            return None, stats, stats["return_status"]
        self._lam = (np.asarray(sol["lam_x"]).ravel(), np.asarray(sol["lam_g"]).ravel())
        return x[:prob.n_u].reshape(self.settings.horizon, 2), stats, ""

    def _navigation(self, goal: Goal, esdf: Optional[Grid2D],
                    ctg: Optional[Grid2D]) -> Optional[Grid2D]:
        if esdf is None or not self.use_navigation_function:
            return None
        if ctg is None:
            ctg = cost_to_go(esdf, (goal.x, goal.y), self.robot_radius, self.nav_inflation,
                             self.nav_inflation_gain)
        return ctg

    # -- entry points -------------------------------------------------------------------

    def plan(self, state: RobotState, goal: Goal, esdf: Optional[Grid2D] = None, *,
             warm_start: Optional[np.ndarray] = None,
             cost_to_go: Optional[Grid2D] = None,
             predictions: Optional[Sequence[Any]] = None,
             route: Optional[np.ndarray] = None,
             neighbours: Optional[Sequence[Any]] = None) -> PlanResult:
        """One NMPC solve from `state` toward `goal` over the distance field `esdf` (the
        Solver interface of wm_planner.solver).

        warm_start: an (H, 2) command sequence to start from (else the previous solution
        shifted one step, else a pursuit of the route). cost_to_go: the navigation function
        of this esdf and goal when the caller has it already (MPPI.last_cost_to_go).
        predictions, route, neighbours: taken as every solver takes them, and not used: only
        sampler-only critics read them (ignored_critics()), and the NMPC's cost-to-go is its
        own, from the field alone.
        status: 'ok'; 'collision' (stop) when the solution hits the field per the obstacle
        critic; 'failed' (stop) on non-finite input, a corrupt field or a solver failure.
        """
        t0 = time.perf_counter()
        if not all(math.isfinite(v) for v in (state.x, state.y, state.yaw, state.v, state.w)):
            return self._stop_result(state, STATUS_FAILED, math.inf, 0, t0)
        s = self.settings
        try:
            ctg = self._navigation(goal, esdf, cost_to_go)
            self.last_cost_to_go = ctg
            u0 = None
            if warm_start is not None:
                u0 = clamp_controls(np.asarray(warm_start, dtype=np.float64).reshape(
                    s.horizon, 2), self.limits, state.v, state.w, s.dt)
            elif self._u is not None and self._u.shape[0] == s.horizon:
                u0 = clamp_controls(np.concatenate([self._u[1:], self._u[-1:]], axis=0),
                                    self.limits, state.v, state.w, s.dt)
            u, stats, reason = self._solve(state, goal, esdf, ctg, u0, self.solver,
                                           self.max_iter, self.max_time_ms, True)
        except (RuntimeError, ValueError) as e:
            # casadi raises RuntimeError on evaluation errors; _fields ValueError on NaN.
            self.last_stats = {"return_status": "exception", "error": str(e)}
            return self._stop_result(state, STATUS_FAILED, math.inf, 0, t0)
        self.last_stats = stats
        iters = stats["iter_count"]
        if u is None:
            self.last_stats["error"] = reason
            return self._stop_result(state, STATUS_FAILED, math.inf, iters, t0)
        u = clamp_controls(u, self.limits, state.v, state.w, s.dt)
        traj = self._rollout(state, u)
        if not np.all(np.isfinite(traj)):
            return self._stop_result(state, STATUS_FAILED, math.inf, iters, t0)
        cost, collides = self._score(state, goal, u, traj, esdf, ctg)
        if not math.isfinite(cost):
            return self._stop_result(state, STATUS_FAILED, math.inf, iters, t0)
        if collides:
            return self._stop_result(state, STATUS_COLLISION, cost, iters, t0)
        self._u = u.copy()
        self._prev = u.copy()
        return PlanResult(controls=u, trajectory=traj, cost=cost, iterations=iters,
                          solve_time_ms=(time.perf_counter() - t0) * 1e3, status=STATUS_OK)

    def refine(self, state: RobotState, goal: Goal, esdf: Optional[Grid2D],
               mppi_result: PlanResult, *, max_iter: Optional[int] = None,
               time_budget_ms: Optional[float] = None, solver: Optional[str] = None,
               cost_to_go: Optional[Grid2D] = None, predictions=None,
               neighbours=None) -> PlanResult:
        """MPPI's result improved by a few NLP iterations started from it, or unchanged.

        The refined plan replaces it only if it is finite, within the limits (clamped),
        collision-free per the obstacle critic's test on `esdf`, and cheaper under the
        critics (both scored here the same way: same model, same previous command, same
        cost-to-go; predictions / neighbours reach the critics that read them). Returns
        the very `mppi_result` object otherwise; `last_refine` says what happened.
        solve_time_ms of a refined result includes MPPI's time.
        """
        t0 = time.perf_counter()
        info = RefineInfo()
        self.last_refine = info
        s = self.settings
        name = solver or self.refine_solver
        if name not in SOLVERS:
            raise ValueError("solver must be one of %s, got %r" % (SOLVERS, name))
        iters = int(max_iter if max_iter is not None else self.refine_max_iter)
        budget = time_budget_ms if time_budget_ms is not None else self.refine_time_ms

        def keep(reason: str) -> PlanResult:
            info.reason = reason
            info.time_ms = (time.perf_counter() - t0) * 1e3
            # What is sent is MPPI's plan: the next smoothness term compares with it.
            if mppi_result.controls.shape == (s.horizon, 2):
                self._prev = mppi_result.controls.copy()
            return mppi_result

        if (mppi_result.status != STATUS_OK or mppi_result.controls.shape != (s.horizon, 2)
                or not np.all(np.isfinite(mppi_result.controls))):
            return keep("nothing to refine (status %s)" % mppi_result.status)
        if not all(math.isfinite(v) for v in (state.x, state.y, state.yaw, state.v, state.w)):
            return keep("non-finite state")
        try:
            ctg = self._navigation(goal, esdf, cost_to_go)
            base_u = clamp_controls(mppi_result.controls, self.limits, state.v, state.w, s.dt)
            base_traj = self._rollout(state, base_u)
            base_cost, _ = self._score(state, goal, base_u, base_traj, esdf, ctg,
                                       predictions, neighbours)
            info.cost_before = base_cost
            u, stats, reason = self._solve(state, goal, esdf, ctg, base_u, name, iters,
                                           budget, False)
        except (RuntimeError, ValueError) as e:
            return keep("solver error: %s" % e)
        info.iterations = stats["iter_count"]
        if u is None:
            return keep("solver failed: %s" % reason)
        u = clamp_controls(u, self.limits, state.v, state.w, s.dt)
        traj = self._rollout(state, u)
        if not np.all(np.isfinite(traj)):
            return keep("non-finite refined trajectory")
        cost, collides = self._score(state, goal, u, traj, esdf, ctg, predictions,
                                     neighbours)
        info.cost_after = cost
        if collides:
            return keep("refined plan collides")
        if not (math.isfinite(cost) and cost < base_cost - 1e-9):
            return keep("no improvement (%.4f -> %.4f)" % (base_cost, cost))
        info.accepted = True
        info.reason = "improved"
        self._u = u.copy()
        self._prev = u.copy()
        info.time_ms = (time.perf_counter() - t0) * 1e3
        return PlanResult(controls=u, trajectory=traj, cost=cost,
                          iterations=mppi_result.iterations + info.iterations,
                          solve_time_ms=mppi_result.solve_time_ms + info.time_ms,
                          status=STATUS_OK,
                          sampled_trajectories=mppi_result.sampled_trajectories)


# -- helpers ------------------------------------------------------------------------------

def _window(data: np.ndarray, ix0: int, iy0: int, n: int, fill: float) -> np.ndarray:
    """The (n, n) block of `data` whose lower-left cell is (ix0, iy0), `fill` beyond it."""
    h, w = data.shape
    out = np.full((n, n), float(fill))
    sx0, sy0 = max(ix0, 0), max(iy0, 0)
    sx1, sy1 = min(ix0 + n, w), min(iy0 + n, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - iy0:sy1 - iy0, sx0 - ix0:sx1 - ix0] = data[sy0:sy1, sx0:sx1]
    return out


def _spline_field(coeffs, shape: Tuple[int, int], res: float, origin):
    """f(x, y): the cubic B-spline over a row-major (ny, nx) grid of cell-centre values
    whose lower-left corner is `origin` (all symbolic but the grid's shape/resolution).
    Queries are clamped into the spline's domain (the inner cells): beyond, the value is
    constant, which only an intermediate iterate can see."""
    ny, nx = shape

    def knots(n):
        centres = (np.arange(n) + 0.5) * res
        return list(np.concatenate([centres[0] - res * np.array([2.0, 1.0]), centres,
                                    centres[-1] + res * np.array([1.0, 2.0])]))

    kx, ky = knots(nx), knots(ny)
    lo_x, hi_x = 1.5 * res, (nx - 1.5) * res
    lo_y, hi_y = 1.5 * res, (ny - 1.5) * res

    def f(x, y):
        qx = ca.fmin(ca.fmax(x - origin[0], lo_x), hi_x)
        qy = ca.fmin(ca.fmax(y - origin[1], lo_y), hi_y)
        return ca.bspline(ca.vertcat(qx, qy), coeffs, [kx, ky], [3, 3], 1, {})

    return f


def _extend_across_blocked(values: np.ndarray, blocked: np.ndarray, res: float) -> np.ndarray:
    """The cost-to-go with every blocked cell replaced by its nearest free cell's value plus
    the distance to it. cost_to_go gives blocked cells a value above the whole reachable
    range (a cliff of tens of metres one cell from the free space); a spline over that cliff
    would push the robot off every wall far harder than the obstacle terms mean to, and
    wreck the solver's quadratic model there. Free cells keep their values."""
    if not blocked.any() or blocked.all():
        return values
    dist, (iy, ix) = distance_transform_edt(blocked, return_indices=True)
    out = values.copy()
    out[blocked] = values[iy[blocked], ix[blocked]] + dist[blocked] * res
    return out


class _ConvexHessian(ca.Callback):
    """The Lagrangian's Hessian with its eigenvalues clipped from below (a convex QP for
    the SQP; a positive definite Hessian passes unchanged, so Newton's convergence stays)."""

    def __init__(self, name: str, full: ca.Function, floor: float = 1e-2):
        ca.Callback.__init__(self)
        self._full = full
        self._floor = float(floor)
        self.construct(name, {})

    def get_n_in(self):
        return self._full.n_in()

    def get_n_out(self):
        return 1

    def get_name_in(self, i):
        return self._full.name_in(i)

    def get_name_out(self, i):
        return "hess_gamma_x_x"

    def get_sparsity_in(self, i):
        return self._full.sparsity_in(i)

    def get_sparsity_out(self, i):
        n = self._full.size1_out(0)
        return ca.Sparsity.dense(n, n)

    def eval(self, args):
        h = np.asarray(ca.DM(self._full.call(args)[0]).full(), dtype=np.float64)
        h = 0.5 * (h + h.T)
        if not np.all(np.isfinite(h)):
            return [ca.DM(h)]
        lam, vec = np.linalg.eigh(h)
        floor = self._floor
        if lam.min(initial=floor) >= floor:
            return [ca.DM(h)]
        # Clip to a floor well above 0: a negative-curvature direction clipped to ~0 lets
        # the QP step run to the bounds along it and the line search then fails; reflecting
        # (|lambda|) distorts the Hessian where constraints are active (the Lagrangian's
        # Hessian need not be convex there) and the SQP then converges only linearly.
        lam = np.maximum(lam, floor)
        return [ca.DM((vec * lam) @ vec.T)]


def _full_hessian(triu_fn: ca.Function) -> ca.Function:
    """The full symmetric Hessian from an upper-triangular one (for the SQP)."""
    ins = [ca.MX.sym(triu_fn.name_in(i), triu_fn.sparsity_in(i))
           for i in range(triu_fn.n_in())]
    hu = triu_fn(*ins)
    full = hu + ca.triu(hu, False).T
    return ca.Function("nlp_hess_l_full", ins, [full], [triu_fn.name_in(i) for i in
                                                        range(triu_fn.n_in())],
                       ["hess_gamma_x_x"])


__all__ = ["NMPC", "RefineInfo", "SOLVERS"]


def build_nmpc(p: Mapping[str, Any], motion_model: MotionModel) -> Optional[NMPC]:
    """The CasADi NMPC for solver nmpc / hybrid (None for mppi): same settings, limits,
    critics (weights read at build time) and footprint as the MPPI, and the CasADi form of
    the MPPI's own motion model (`motion_model`, already loaded and verified)."""
    if p.get("solver", "mppi") not in configure.SOLVERS:
        raise ValueError("solver must be one of %s, got %r" % (configure.SOLVERS,
                                                              p.get("solver")))
    if p.get("solver", "mppi") == "mppi":
        return None
    nmpc = NMPC(configure.build_settings(p), configure.build_limits(p),
                configure.build_critics(p), robot_radius=p["robot_radius"],
                footprint=configure.build_footprint(p),
                model=casadi_form(motion_model.world_model, motion_model.version, p["dt"]),
                solver="ipopt", max_iter=p.get("nmpc_max_iter", 30),
                max_time_ms=p.get("nmpc_max_time_ms", 25.0), refine_solver="sqpmethod",
                refine_max_iter=p.get("refine_max_iter", 3))
    mass = p.get("payload_mass", -1.0)
    nmpc.set_payload(None if mass < 0 else mass)
    return nmpc
