"""Latency of the MPPI planning core on a warehouse-like 160 x 160 distance field, and the same
problem given to pytorch_mppi.

    python benchmarks/bench_planner.py [--quick]

Every plan uses the default critics (goal, goal_angle, path_angle, obstacle on the 160 x 160
field, control_effort, smoothness, prefer_forward, predicted_occupancy; goal_angle and
predicted_occupancy cost nothing in this scene: the goal is 6.9 m away and there is no
forecast), H = 10 steps of 0.1 s, one iteration.

Rows:
* cost_to_go/160x160: the navigation function alone.
* mppi_plan/K=..,H=10 (as before): kinematic, a new field object every plan, so the cost-to-go
  is rebuilt each time (what plan-on-field cycles pay).
* mppi/{kinematic,world_model}/K=..: the same field every plan (cost-to-go cached), next to
* pytorch_mppi/{kinematic,world_model}/K=..: pytorch_mppi.MPPI.command on the identical
  problem: dynamics = our rate limiter (previous command in the state) + one step of the same
  model, batched (the scripted world model's `next`, or the unicycle step); cost = our default
  critics re-written in torch (`TorchCritics`) as its terminal cost on the whole trajectory;
  same K, H, noise sigma, lambda = temperature, box limits, null-action sample. Before timing,
  both dynamics roll out the same requests and both costs score them: trajectories and costs
  must agree (float32 vs float64, fused vs unfused network), else the benchmark fails.
  pytorch_mppi adds its own control-cost term (lambda u' Sigma^-1 eps) on top; ours has none.
* mppi/world_model/K=1024,new field: the world model with the cost-to-go rebuilt every plan.
* mppi/world_model/K=..,T=2: two torch threads instead of the planner's one.
* mppi/kinematic/K=2000,H=56: Nav2's default size (batch 2000, 56 steps of 0.05 s), our
  planner. Nav2's own figure is published, not measured here (see NOTE).
* parts/K=1024/..: one MPPI iteration's stages at K = 1024.
Prints a markdown table; `run()` returns the rows for an aggregating runner.
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from typing import Dict, List, Optional

import numpy as np
from scipy.ndimage import distance_transform_edt

try:
    import wm_planner  # noqa: F401
except ImportError:  # running from a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, "wm_common"), os.path.join(_SRC, "wm_planner"),
                    os.path.join(_SRC, "wm_world_model")]

from wm_common.grid import Grid2D
from wm_planner.critic_data import CriticData
from wm_planner.critics import DEFAULT_CRITICS
from wm_planner.critics.base import time_weights
from wm_planner.models import Goal, OptimizerSettings
from wm_planner.navigation_function import cost_to_go
from wm_planner.optimizer import MPPI
from wm_world_model.kinematics import clamp_controls
from wm_world_model.motion_model import KinematicMotionModel, LearnedMotionModel
from wm_world_model.state import RobotLimits, RobotState

from benchlib import main as bench_main, row, time_calls

RES = 0.1
SIZE = 160
ROBOT_RADIUS = 0.35
STATE = RobotState(0.0, 0.0, 0.1, 0.5, 0.1)
# In the next aisle, so the geodesic has to go round the end of a shelf row.
GOAL = Goal(6.0, 3.4, 0.0)
H = 10
SAMPLES = (256, 1024, 4096)
ARTIFACT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src",
                        "wm_world_model", "models", "worldmodel-1.0.0")

PEERS = {}
for _k in SAMPLES:
    for _m in ("kinematic", "world_model"):
        PEERS["mppi/%s/K=%d,H=10" % (_m, _k)] = "pytorch_mppi/%s/K=%d,H=10" % (_m, _k)
    PEERS["mppi/world_model/K=%d,H=10,T=2" % _k] = "mppi/world_model/K=%d,H=10" % _k
PEERS["parts/K=1024/clamp_rollout/world_model (fused kernel)"] = \
    "parts/K=1024/clamp_rollout/world_model (numpy clamp + model.rollout)"
PEERS["parts/K=1024/clamp_rollout/kinematic (kernel)"] = \
    "parts/K=1024/clamp_rollout/kinematic (numpy clamp + rollout)"
NAV2 = "mppi/kinematic/K=2000,H=56"


def NOTE(r) -> str:
    if r["name"] == NAV2:
        return ("Nav2 MPPI, published, not measured here: 'measured to run at 100+ Hz on a "
                "modest Intel processor (4th gen i5)' at its defaults 2000 x 56 "
                "(docs.nav2.org, configuring-mppic), i.e. <= 10 ms, C++")
    if r["name"].startswith("pytorch_mppi/"):
        return "same dynamics and critics (checked), + its control-cost term"
    return ""


def warehouse_esdf(seed: int = 0) -> Grid2D:
    """A 16 x 16 m window centred on the robot: shelf rows 1 m deep with 2.4 m aisles
    along x (one row ending 5 m ahead of the robot), a wall, and a few pallets; signed
    distance from scipy's EDT like the perception side produces it."""
    rng = np.random.default_rng(seed)
    origin = -SIZE * RES / 2.0
    xs = origin + (np.arange(SIZE) + 0.5) * RES
    x, y = np.meshgrid(xs, xs)
    occ = np.zeros((SIZE, SIZE), dtype=bool)
    for yc in (-6.8, -3.4, 1.7, 5.1):          # shelf rows (robot's aisle: y in -1.2..1.2)
        occ |= (np.abs(y - yc) <= 0.5) & (x >= -7.0) & (x <= 7.0)
    occ |= (np.abs(y - 1.7) <= 0.5) & (x >= -7.0) & (x <= 5.0)
    occ &= ~((np.abs(y - 1.7) <= 0.5) & (x > 5.0))   # the row the route goes round
    occ |= x >= 7.6                                  # end wall
    for _ in range(6):                               # pallets in the aisles
        px, py = rng.uniform(-6.0, 6.0), rng.choice([-5.1, 3.4]) + rng.uniform(-0.4, 0.4)
        occ |= (np.abs(x - px) <= 0.6) & (np.abs(y - py) <= 0.4)
    esdf = (distance_transform_edt(~occ) - distance_transform_edt(occ)) * RES
    return Grid2D(origin, origin, RES, esdf, outside=float(esdf.max()), frame_id="odom")


def _fresh(esdf: Grid2D) -> Grid2D:
    """The same field as a new object (no copy of the data): the planner's cost-to-go cache
    is keyed by identity, so this forces the rebuild a new perception field causes."""
    return Grid2D(esdf.origin_x, esdf.origin_y, esdf.resolution, esdf.data,
                  outside=esdf.outside, frame_id=esdf.frame_id)


# -- pytorch_mppi on the identical problem ------------------------------------------------

class TorchCritics:
    """Our default critics' total cost, in torch, on pytorch_mppi's (1, K, T, 7) states
    [x, y, yaw, v, w, v_cmd, w_cmd] (the clamped command rides in the state); the same
    formulas as wm_planner.critics with the same parameters (read from the critic objects).
    Single-circle footprint (robot_radius), no forecasts: the benchmark scene's set-up."""

    def __init__(self, critics, esdf: Grid2D, ctg: Grid2D, state: RobotState, goal: Goal,
                 limits: RobotLimits, dt: float, robot_radius: float):
        import torch

        self.torch = torch
        self.by_name = {c.name: c for c in critics}
        unknown = set(self.by_name) - set(DEFAULT_CRITICS)
        if unknown:
            raise ValueError("TorchCritics has no torch version of %s" % sorted(unknown))
        self.esdf, self.ctg = esdf, ctg
        self.grids = {id(g): torch.from_numpy(np.ascontiguousarray(g.data)).reshape(-1)
                      for g in (esdf, ctg)}
        self.state, self.goal, self.limits = state, goal, limits
        self.dt, self.radius = dt, robot_radius
        self.prev = torch.tensor([state.v, state.w])     # no previous plan: the measured one

    def sample(self, grid: Grid2D, xy):
        """(values, inside) as Grid2D.sample, float32."""
        torch = self.torch
        w, h = grid.width, grid.height
        fx = (xy[..., 0] - grid.origin_x) / grid.resolution - 0.5
        fy = (xy[..., 1] - grid.origin_y) / grid.resolution - 0.5
        inside = (fx >= -0.5) & (fx <= w - 0.5) & (fy >= -0.5) & (fy <= h - 0.5)
        fx = fx.clamp(0.0, w - 1.0)
        fy = fy.clamp(0.0, h - 1.0)
        x0 = fx.floor().long().clamp(max=w - 2)
        y0 = fy.floor().long().clamp(max=h - 2)
        tx, ty = fx - x0, fy - y0
        d, i = self.grids[id(grid)], y0 * w + x0
        v = ((1 - tx) * (1 - ty) * d[i] + tx * (1 - ty) * d[i + 1]
             + (1 - tx) * ty * d[i + w] + tx * ty * d[i + w + 1])
        return torch.where(inside, v, torch.tensor(grid.outside)), inside

    @staticmethod
    def wrap(a):
        return (a + math.pi) % (2.0 * math.pi) - math.pi

    def __call__(self, states, actions=None):
        torch = self.torch
        s = states[0] if states.dim() == 4 else states          # (K, T, 7)
        xy, yaw, u = s[..., 0:2], s[..., 2], s[..., 5:7]
        k, t = s.shape[0], s.shape[1]
        st, g, c = self.state, self.goal, self.by_name
        dist = math.hypot(st.x - g.x, st.y - g.y)
        total = torch.zeros(k)
        if "goal" in c and c["goal"].enabled:
            ctg, _ = self.sample(self.ctg, xy)
            w = torch.from_numpy(time_weights(t, c["goal"].time_power)).float()
            total = total + c["goal"].weight * (ctg @ w)
        if ("goal_angle" in c and c["goal_angle"].enabled and g.yaw_tolerance < math.pi
                and dist <= c["goal_angle"].activation_radius):
            err = self.wrap(yaw[:, -1] - g.yaw).abs()
            total = total + c["goal_angle"].weight * err ** c["goal_angle"].power
        if ("path_angle" in c and c["path_angle"].enabled
                and dist > c["path_angle"].deactivation_radius):
            p, r = c["path_angle"], self.ctg.resolution
            offs = torch.tensor([[r, 0.0], [-r, 0.0], [0.0, r], [0.0, -r]])
            v, _ = self.sample(self.ctg, xy[:, -1, None, :] + offs)
            gx, gy = (v[:, 0] - v[:, 1]) / (2.0 * r), (v[:, 2] - v[:, 3]) / (2.0 * r)
            err = self.wrap(yaw[:, -1] - torch.atan2(-gy, -gx)).abs()
            cost = torch.clamp(err - p.max_angle, min=0.0) ** p.power
            total = total + p.weight * torch.where(torch.hypot(gx, gy) >= p.min_slope, cost,
                                                   torch.zeros(()))
        if "obstacle" in c and c["obstacle"].enabled:
            o = c["obstacle"]
            d, inside = self.sample(self.esdf, xy)
            clearance = torch.where(inside, d - self.radius, torch.tensor(float("inf")))
            pen = torch.clamp(o.inflation_radius - clearance, min=0.0) / o.inflation_radius
            collided = (clearance < 0.0).any(dim=1)
            total = total + o.weight * (pen ** o.power).sum(dim=1) \
                + o.collision_cost * collided.float()
        if "control_effort" in c and c["control_effort"].enabled:
            e = c["control_effort"]
            total = total + e.weight * (e.v_weight * u[..., 0] ** 2
                                        + e.w_weight * u[..., 1] ** 2).mean(dim=1)
        if "smoothness" in c and c["smoothness"].enabled:
            m = c["smoothness"]
            du = torch.diff(torch.cat([self.prev.expand(k, 1, 2), u], dim=1), dim=1)
            dv = du[..., 0] / (self.limits.a_max * self.dt)
            dw = du[..., 1] / (self.limits.alpha_max * self.dt)
            total = total + m.weight * (m.v_weight * dv ** 2 + m.w_weight * dw ** 2).mean(dim=1)
        if ("prefer_forward" in c and c["prefer_forward"].enabled
                and dist > c["prefer_forward"].deactivation_radius):
            f = c["prefer_forward"]
            total = total + f.weight * torch.clamp(-u[..., 0], min=0.0).sum(dim=1) * self.dt
        return total


def _torch_dynamics(model, limits: RobotLimits, dt: float, k: int):
    """pytorch_mppi's dynamics(state (K, 7), u (K, 2)): our rate limiter from the previous
    command (state[:, 5:7]; pytorch_mppi has already clipped u to the velocity box), then
    one step of the same model: the scripted world model's `next`, or the unicycle."""
    import torch

    step = torch.tensor([limits.a_max * dt, limits.alpha_max * dt])
    if isinstance(model, LearnedMotionModel):
        script, ctx = model._script, torch.zeros(k, 2)   # payload unknown, as in the planner

        def dynamics(s, u):
            prev = s[:, 5:7]
            cmd = torch.minimum(torch.maximum(u, prev - step), prev + step)
            return torch.cat([script.next(s[:, :5], cmd, ctx[:s.shape[0]]), cmd], dim=1)
    else:
        def dynamics(s, u):
            prev = s[:, 5:7]
            cmd = torch.minimum(torch.maximum(u, prev - step), prev + step)
            yaw = s[:, 2]
            return torch.stack([s[:, 0] + cmd[:, 0] * dt * torch.cos(yaw),
                                s[:, 1] + cmd[:, 0] * dt * torch.sin(yaw),
                                yaw + cmd[:, 1] * dt, cmd[:, 0], cmd[:, 1], cmd[:, 0],
                                cmd[:, 1]], dim=1)
    return dynamics


def _state7(state: RobotState):
    import torch

    return torch.tensor([state.x, state.y, state.yaw, state.v, state.w, state.v, state.w])


def _make_pytorch_mppi(planner: MPPI, cost: TorchCritics, k: int, h: int):
    import torch
    from pytorch_mppi import MPPI as TorchMPPI

    s, lim = planner.settings, planner.limits
    return TorchMPPI(
        _torch_dynamics(planner.motion_model, lim, s.dt, k),
        lambda state, u: torch.zeros(state.shape[0]), nx=7,
        noise_sigma=torch.diag(torch.tensor([s.noise_sigma_v ** 2, s.noise_sigma_w ** 2])),
        num_samples=k, horizon=h, lambda_=s.temperature,
        u_min=torch.tensor([lim.v_min, -lim.w_max]), u_max=torch.tensor([lim.v_max, lim.w_max]),
        U_init=torch.tensor([[STATE.v, STATE.w]]).repeat(h, 1), terminal_state_cost=cost,
        sample_null_action=True)


def check_same_problem(planner: MPPI, cost: TorchCritics, esdf: Grid2D, ctg: Grid2D,
                       k: int = 512, seed: int = 1) -> None:
    """Both dynamics roll out the same requests and both costs score them; raise unless
    they agree (a sample whose collision flag flips at float32 rounding may differ)."""
    import torch

    s, lim = planner.settings, planner.limits
    rng = np.random.default_rng(seed)
    req = np.array([STATE.v, STATE.w]) + rng.standard_normal((k, H, 2)) * [0.3, 0.6]
    controls, traj = planner.motion_model.clamp_rollout(STATE, req, lim, s.dt)
    data = CriticData(state=STATE, goal=GOAL, controls=controls, trajectories=traj, dt=s.dt,
                      limits=lim, robot_radius=planner.robot_radius, esdf=esdf,
                      cost_to_go=ctg)
    ours = sum(c.score(data) for c in planner.critics)
    dyn = _torch_dynamics(planner.motion_model, lim, s.dt, k)
    boxed = torch.from_numpy(np.clip(req, [lim.v_min, -lim.w_max], [lim.v_max, lim.w_max]))
    x, states = _state7(STATE).expand(k, 7), []
    with torch.no_grad():
        for t in range(H):
            x = dyn(x, boxed[:, t].float())
            states.append(x)
        states = torch.stack(states, dim=1)
        theirs = cost(states[None]).double().numpy()
    np.testing.assert_allclose(states[..., 5:7].numpy(), controls, atol=1e-6)
    np.testing.assert_allclose(states[..., :3].numpy(), traj[:, 1:], atol=2e-4)
    same = (ours >= 1e4) == (theirs >= 1e4)      # collision_cost either side
    if same.mean() < 0.99:
        raise RuntimeError("collision flags disagree on %.1f%% of samples"
                           % (100 * (1 - same.mean())))
    np.testing.assert_allclose(theirs[same], ours[same], rtol=1e-3, atol=2e-3)


# -- the rows -----------------------------------------------------------------------------

def _planner(k, h=H, dt=0.1, motion_model=None) -> MPPI:
    return MPPI(OptimizerSettings(num_samples=k, horizon=h, dt=dt, seed=0), RobotLimits(),
                robot_radius=ROBOT_RADIUS, motion_model=motion_model)


def _reps(repeats: Optional[int], k: int, h: int = H) -> int:
    if repeats:
        return repeats
    return max(30, int(300 * 1024 / max(k * h / H, 1024)) // 2)


def _plan_row(name, planner, esdf, reps, fresh=False):
    result = planner.plan(STATE, GOAL, esdf)
    if result.status != "ok":
        raise RuntimeError("benchmark scene is broken: plan status %r" % result.status)
    if fresh:
        return row(name, time_calls(lambda: planner.plan(STATE, GOAL, _fresh(esdf)), reps,
                                    warmup=3))
    return row(name, time_calls(lambda: planner.plan(STATE, GOAL, esdf), reps, warmup=3))


def _parts(esdf, world_model, reps) -> List[Dict[str, object]]:
    """One iteration's stages at K = 1024 (the planner's own code paths)."""
    k, rows = 1024, []
    kin = _planner(k)
    wm = _planner(k, motion_model=world_model)
    lim, dt = kin.limits, kin.settings.dt
    ctg = kin.cost_to_go(esdf, GOAL)
    mean = np.tile([STATE.v, STATE.w], (H, 1))
    rng = np.random.default_rng(0)

    def sample():
        req = rng.standard_normal((H, 2, k))
        req *= kin._sigma[:, None]
        req += mean[:, :, None]
        return req.transpose(2, 0, 1)

    req = sample()
    rows.append(row("parts/K=1024/sample", time_calls(sample, reps, warmup=3)))
    numpy_kin = KinematicMotionModel(use_torch=False)
    for label, fn in (
            ("kinematic (numpy clamp + rollout)",
             lambda: numpy_kin.clamp_rollout(STATE, req, lim, dt)),
            ("kinematic (kernel)", lambda: kin._clamp_rollout(STATE, req)),
            ("world_model (numpy clamp + model.rollout)",
             lambda: world_model.rollout(STATE, clamp_controls(req, lim, STATE.v, STATE.w, dt),
                                         dt)),
            ("world_model (fused kernel)", lambda: wm._clamp_rollout(STATE, req))):
        rows.append(row("parts/K=1024/clamp_rollout/" + label, time_calls(fn, reps, warmup=3)))
    controls, traj = wm._clamp_rollout(STATE, req)

    def critics():
        return wm._score(wm._data(STATE, GOAL, controls, traj, esdf, ctg))

    rows.append(row("parts/K=1024/critics (all %d, one batch)" % len(wm.critics),
                    time_calls(critics, reps, warmup=3)))
    costs = critics()

    def update():
        w = np.exp(-(costs - costs.min()) / wm.settings.temperature)
        w /= w.sum()
        return np.tensordot(w, controls, axes=1)

    rows.append(row("parts/K=1024/softmax update", time_calls(update, reps, warmup=3)))
    final = update()

    def final_mean():
        u, tr = wm._clamp_rollout(STATE, final)
        return wm._score(wm._data(STATE, GOAL, u[None], tr[None], esdf, ctg))

    rows.append(row("parts/K=1024/final mean, world model (rollout + critics)",
                    time_calls(final_mean, reps, warmup=3)))
    return rows


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    """Rows of {name, median_ms, p99_ms, n} (n: timed repetitions)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        world_model = LearnedMotionModel(ARTIFACT, dt=0.1, threads=1)
    torch.set_num_threads(1)
    esdf = warehouse_esdf()
    rows: List[Dict[str, object]] = []
    reps = repeats or 300
    rows.append(row("cost_to_go/%dx%d" % (SIZE, SIZE), time_calls(
        lambda: cost_to_go(esdf, (GOAL.x, GOAL.y), ROBOT_RADIUS, 0.3), reps, warmup=3)))
    for k in (256, 512, 1024, 2048):
        rows.append(_plan_row("mppi_plan/K=%d,H=10" % k, _planner(k), esdf,
                              repeats or (300 if k <= 512 else 150), fresh=True))

    for name, model in (("kinematic", None), ("world_model", world_model)):
        checked = False
        for k in SAMPLES:
            planner = _planner(k, motion_model=model)
            ctg = planner.cost_to_go(esdf, GOAL)
            cost = TorchCritics(planner.critics, esdf, ctg, STATE, GOAL, planner.limits,
                                planner.settings.dt, ROBOT_RADIUS)
            if not checked:
                check_same_problem(planner, cost, esdf, ctg)
                checked = True
            rows.append(_plan_row("mppi/%s/K=%d,H=10" % (name, k), planner, esdf,
                                  _reps(repeats, k)))
            theirs = _make_pytorch_mppi(planner, cost, k, H)
            x0 = _state7(STATE)

            def command(m=theirs, x=x0):
                with torch.no_grad():
                    return m.command(x)

            rows.append(row("pytorch_mppi/%s/K=%d,H=10" % (name, k),
                            time_calls(command, _reps(repeats, k), warmup=3)))

    rows.append(_plan_row("mppi/world_model/K=1024,H=10,new field",
                          _planner(1024, motion_model=world_model), esdf,
                          _reps(repeats, 1024), fresh=True))
    torch.set_num_threads(2)
    try:
        for k in (1024, 4096):
            rows.append(_plan_row("mppi/world_model/K=%d,H=10,T=2" % k,
                                  _planner(k, motion_model=world_model), esdf,
                                  _reps(repeats, k)))
    finally:
        torch.set_num_threads(1)
    rows.append(_plan_row(NAV2, _planner(2000, h=56, dt=0.05), esdf,
                          _reps(repeats, 2000, 56)))
    rows += _parts(esdf, world_model, repeats or 300)
    return rows


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv, peers=PEERS, note=NOTE)


if __name__ == "__main__":
    sys.exit(main())
