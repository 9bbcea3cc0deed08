"""Motion models: plain kinematics, or the learned world model, guarded; what the planner's
MPPI rolls out, the monitor compares with the robot, and the service predicts with.

Both answer
  * `rollout(state, controls, dt) -> (K, H+1, 3)` [x, y, yaw] for (K, H, 2) (or (H, 2)) clamped
    control sequences, and
  * `clamp_rollout(state, requests, limits, dt) -> (controls, trajectories)`: MPPI's hot path,
    the robot's velocity and acceleration limits applied to (K, H, 2) requested sequences
    (exactly `kinematics.clamp_controls`) and the result rolled out, in one call,
so the optimizer and the critics never know which one ran.

No per-step Python in the hot path: `clamp_rollout` runs one TorchScript function (compiled
once per process from `_KERNEL_SOURCE`) whose loop over the horizon stays inside the
interpreter. Inside, everything is channel-major, (H, 2, K) commands and (3, H+1, K) poses:
each per-step operation then works on rows of K contiguous values, whereas the (K, 2)
layout broadcasts per-channel limits along an inner dimension of 2, which costs torch and
numpy a loop iteration per sample. Requests made as a transposed view of an (H, 2, K) array
(what MPPI passes) reach the kernel without a copy. KinematicMotionModel(use_torch=False)
runs the numpy reference instead (a Python loop over H in clamp_controls).

LearnedMotionModel loads a world-model artifact (wm_world_model.artifact: checksums, schema,
optional Ed25519 signature) and scripts it with the robot's own torch (TorchScript; the whole
H-step loop runs inside the scripted module, so there is no per-step Python). It predicts from
the measured velocities and, when known, the payload. For `clamp_rollout` it also keeps a fused
copy of the same network: input normalisation and the constant payload features folded into the
first layer's bias, the last layer computed transposed so the residual comes out channel-major
((5, K), no transposes in the loop), fewer operations per step; it equals the model's own
rollout to float32 rounding (tested), and clamp + rollout take 2.9 ms instead of 4.3 ms at
K = 1024 (numpy clamp + the model's rollout; benchmarks/bench_planner.py, parts rows). It
rolls large batches out in chunks of WORLD_MODEL_CHUNK samples, which keeps a layer's
activations in cache. Its output is checked every call: a prediction that is not
finite or moves faster than the model's physical limits is reported (`failures`, `last_error`)
and that batch falls back to kinematics, so a bad model degrades the plan, never the robot's
safety.

The model rolls out from the origin with the robot's heading and the pose is added back in
float64: the world model is SE(2)-equivariant, so this is exact, and it keeps float32 from
rounding odom coordinates hundreds of metres from the origin.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Any, Dict, Optional, Protocol, Sequence, Tuple

import numpy as np
import torch

from .artifact import load_verified, to_torchscript
from .fused import ROLLOUT_SOURCE, FusedWorldModel
from .kinematics import as_batch, clamp_controls, unicycle_rollout
from .model import WorldModel
from .state import RobotLimits, RobotState

# TorchScript source, compiled by `_kernels()` on first use. Shapes: u/req (H, 2, K) float64
# commands; bounds (4, 2, 1) float64 rows [measured (v, w), box low, box high, max change per
# step]; poses (3, H+1, K) [x, y, yaw].
_KERNEL_SOURCE = '''
def clamp_requests(req: Tensor, bounds: Tensor) -> Tensor:
    """kinematics.clamp_controls, channel-major: velocity box, then the per-step rate limit."""
    lo = bounds[1]
    hi = bounds[2]
    step = bounds[3]
    req = torch.clamp(req, lo, hi)
    # Only the first step can leave the box (a measured velocity outside it); later steps
    # lie between a boxed request and a boxed previous step, so they need no re-clip.
    prev = torch.clamp(torch.clamp(req[0], bounds[0] - step, bounds[0] + step), lo, hi)
    out = [prev]
    for t in range(1, req.shape[0]):
        prev = torch.clamp(req[t], prev - step, prev + step)
        out.append(prev)
    return torch.stack(out)


def kinematic_rollout(u: Tensor, x0: float, y0: float, yaw0: float, dt: float) -> Tensor:
    """kinematics.unicycle_rollout, channel-major: prefix sums over the horizon, float64."""
    h = u.shape[0]
    out = torch.empty((3, h + 1, u.shape[2]), dtype=u.dtype)
    out[0, 0].fill_(x0)
    out[1, 0].fill_(y0)
    out[2, 0].fill_(yaw0)
    yaw = out[2]
    torch.cumsum(u[:, 1] * dt, dim=0, out=yaw[1:])
    yaw[1:].add_(yaw0)
    step = u[:, 0] * dt
    torch.cumsum(step * torch.cos(yaw[:-1]), dim=0, out=out[0, 1:])
    torch.cumsum(step * torch.sin(yaw[:-1]), dim=0, out=out[1, 1:])
    out[0, 1:].add_(x0)
    out[1, 1:].add_(y0)
    return out


def kinematic_clamp_rollout(req: Tensor, bounds: Tensor, x0: float, y0: float, yaw0: float,
                            dt: float) -> Tuple[Tensor, Tensor]:
    u = clamp_requests(req, bounds)
    return u, kinematic_rollout(u, x0, y0, yaw0, dt)


''' + ROLLOUT_SOURCE + '''

def world_model_clamp_rollout(req: Tensor, bounds: Tensor, yaw0: float, chunk: int,
                              w_in: Tensor, b_in: Tensor, hidden_w: List[Tensor],
                              hidden_b: List[Tensor], w_out: Tensor, b_out: Tensor,
                              bound: Tensor, gain: Tensor, kscale: Tensor,
                              vlim: Tensor) -> Tuple[Tensor, Tensor]:
    u = clamp_requests(req, bounds)
    k = u.shape[2]
    if k <= chunk:
        return u, world_model_rollout(u, bounds[0], yaw0, w_in, b_in, hidden_w, hidden_b,
                                      w_out, b_out, bound, gain, kscale, vlim)
    # Samples in chunks, so that each layer's (chunk, hidden) activations stay in cache.
    poses = [world_model_rollout(u[:, :, s:s + chunk], bounds[0], yaw0, w_in, b_in, hidden_w,
                                 hidden_b, w_out, b_out, bound, gain, kscale, vlim)
             for s in range(0, k, chunk)]
    return u, torch.cat(poses, 2)
'''

_COMPILED: Any = None

# Samples per world-model kernel pass, so that a layer's activations stay in cache. Measured
# here (AMD EPYC, 1 MiB L2 per core) at K = 4096: kernel 17 ms in one pass (1 MiB of float32
# per layer), 10 ms in two of 2048, 11 ms in four of 1024; whole plans 17.4 / 14.4 / 15.2 ms
# (CPU time); at K <= 2048 one pass is fastest. A Jetson Xavier has 2 MiB L2 per core pair.
WORLD_MODEL_CHUNK = 2048


def _kernels():
    """The compiled TorchScript kernels (one CompilationUnit per process)."""
    global _COMPILED
    if _COMPILED is None:
        # torch >= 2.10 deprecates TorchScript; the robot's torch 2.0 has no usable
        # alternative for a Python-free loop (as in wm_world_model.artifact.to_torchscript).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            _COMPILED = torch.jit.CompilationUnit(_KERNEL_SOURCE)
    return _COMPILED


def _warm_up(model) -> None:
    """Run `model.clamp_rollout` on a few tiny batches of different sizes.

    TorchScript's profiling executor specialises a function to the shapes of its first
    calls and re-optimises when they change: 10-40 ms each time, twice, before it settles on
    shape-generic code. Done here, at construction, so that neither the first control
    cycles nor a change of K (adaptive sample count, the single final sequence) pay it.
    """
    for k in (1, 2, 3):
        model.clamp_rollout(RobotState(), np.zeros((k, 2, 2)), RobotLimits(), 0.1)


def _channel_major(requests: np.ndarray) -> Tuple[np.ndarray, bool]:
    """(H, 2, K) float64 contiguous view (or copy) of (K, H, 2) or (H, 2) requests."""
    u, single = as_batch(requests)
    return np.ascontiguousarray(u.transpose(1, 2, 0)), single


def _bounds(torch, state: RobotState, limits: RobotLimits, dt: float):
    return torch.tensor([[state.v, state.w], [limits.v_min, -limits.w_max],
                         [limits.v_max, limits.w_max],
                         [limits.a_max * dt, limits.alpha_max * dt]],
                        dtype=torch.float64).unsqueeze(2)


def _batch_major(u, poses, single: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(K, H, 2) controls and (K, H+1, 3) poses from the kernels' (H, 2, K) and (3, H+1, K)
    tensors: transposed views, not copies. Each (K, H) channel is then one contiguous
    block, which is also the fastest layout for the critics' per-channel arithmetic (numpy
    follows the memory order); a single sequence comes back as small contiguous arrays."""
    controls = u.numpy().transpose(2, 0, 1)
    traj = poses.numpy().transpose(2, 1, 0)
    if single:
        return controls[0].copy(), traj[0].copy()
    return controls, traj


class MotionModel(Protocol):
    """What the planner, the monitor and the service use of a motion model; both models
    below have all of it (no probing with getattr).

    name, version, metadata    what it is ('kinematic' / 'world_model', the artifact's
                               version and metadata; '' and {} for kinematics)
    payload_kg, set_payload    the carried mass in kg (None: unknown); kinematics ignore it
    failures, last_error       predictions refused so far (kinematics used instead), and why
    world_model                the torch WorldModel behind the predictions (None for
                               kinematics): the other forms (the NMPC's CasADi expression)
                               are derived from it, never loaded again
    rollout                    (K, H+1, 3) poses of clamped (K, H, 2) controls
    clamp_rollout              (clamped controls, their rollouts) of raw requests, one call
    predict                    batched what-if predictions (the world-model service)
    """

    name: str
    version: str
    metadata: Dict[str, Any]
    payload_kg: Optional[float]
    failures: int
    last_error: str
    world_model: Optional[WorldModel]

    def set_payload(self, payload_kg: Optional[float]) -> None: ...

    def rollout(self, state: RobotState, controls: np.ndarray, dt: float) -> np.ndarray: ...

    def clamp_rollout(self, state: RobotState, requests: np.ndarray, limits: RobotLimits,
                      dt: float) -> Tuple[np.ndarray, np.ndarray]: ...

    def predict(self, states: np.ndarray, commands: np.ndarray,
                payloads: Sequence[Optional[float]], dt: float
                ) -> Tuple[np.ndarray, np.ndarray]: ...


class KinematicMotionModel:
    """The unicycle the planner assumes without a learned model (a MotionModel)."""

    name = "kinematic"
    version = ""
    world_model: Optional[WorldModel] = None

    def __init__(self, use_torch: bool = True):
        self.metadata: Dict[str, Any] = {}
        self.payload_kg: Optional[float] = None
        self.failures = 0          # a unicycle never refuses a prediction
        self.last_error = ""
        # the scripted kernel, or numpy with use_torch=False (the reference in the tests)
        self._torch = torch if use_torch else None
        if self._torch is not None:
            _warm_up(self)   # compile and specialise now, not in the first control cycles

    def set_payload(self, payload_kg: Optional[float]) -> None:
        """Kept for the record; the unicycle does not depend on the mass."""
        self.payload_kg = None if payload_kg is None else float(payload_kg)

    def rollout(self, state: RobotState, controls: np.ndarray, dt: float) -> np.ndarray:
        return unicycle_rollout(state, controls, dt)

    def predict(self, states: np.ndarray, commands: np.ndarray,
                payloads: Sequence[Optional[float]], dt: float
                ) -> Tuple[np.ndarray, np.ndarray]:
        """What-if predictions for many robots in one call (the world-model service's batch):
        (N, 5) states [x, y, yaw, v, w] and (N, H, 2) commands -> (N, H+1, 5) states and (N,)
        trusted flags. Kinematics reaches each command at once; payloads do not matter."""
        states = np.asarray(states, dtype=np.float64).reshape(-1, 5)
        commands = np.asarray(commands, dtype=np.float64)
        out = np.empty((states.shape[0], commands.shape[1] + 1, 5))
        for i, s in enumerate(states):
            out[i, :, :3] = unicycle_rollout(RobotState(*s), commands[i], dt)
        out[:, 0, 3:] = states[:, 3:]
        out[:, 1:, 3:] = commands
        return out, np.ones(states.shape[0], dtype=bool)

    def clamp_rollout(self, state: RobotState, requests: np.ndarray, limits: RobotLimits,
                      dt: float) -> Tuple[np.ndarray, np.ndarray]:
        """(clamped controls, their rollouts) of (K, H, 2) or (H, 2) requests."""
        torch = self._torch
        if torch is None:
            controls = clamp_controls(requests, limits, state.v, state.w, dt)
            return controls, unicycle_rollout(state, controls, dt)
        req, single = _channel_major(requests)
        u, poses = _kernels().kinematic_clamp_rollout(
            torch.from_numpy(req), _bounds(torch, state, limits, dt), state.x, state.y,
            state.yaw, dt)
        return _batch_major(u, poses, single)


class LearnedMotionModel:
    """A world-model artifact as the planner's motion model (see the module docstring)."""

    name = "world_model"

    def __init__(self, artifact: str, dt: float, public_key_file: str = "",
                 require_signature: bool = False, threads: int = 1):
        model, meta = load_verified(artifact, public_key_file, require_signature)
        if abs(model.dt - dt) > 1e-9:
            raise ValueError("world model %s steps %.3f s but the planner's dt is %.3f s"
                             % (meta["version"], model.dt, dt))
        if threads > 0:
            # The planner shares a small CPU with perception: one thread is the fastest
            # for batches of a few thousand (see BENCHMARKS.md) and leaves cores free.
            torch.set_num_threads(int(threads))
        self._torch = torch
        self._script = to_torchscript(model)
        self.world_model: Optional[WorldModel] = model
        self._predict_script, self._predict_device = self._script, "cpu"
        try:
            self._fused: Optional[FusedWorldModel] = FusedWorldModel(model)
        except ValueError:
            self._fused = None
        self._latent_dim = int(model.config.latent_dim)
        self._v_limit = float(model.config.v_abs_max)
        self._w_limit = float(model.config.w_abs_max)
        self.version = str(meta["version"])
        self.metadata = meta
        self.payload_kg: Optional[float] = None
        self.failures = 0
        self.last_error = ""
        self._fallback = KinematicMotionModel()
        self.set_payload(None)
        _warm_up(self)

    def set_payload(self, payload_kg: Optional[float]) -> None:
        """The carried mass (kg), or None when unknown (the model then uses its 'unknown'
        mode, which it was trained for)."""
        if payload_kg is not None and not (math.isfinite(payload_kg) and payload_kg >= 0.0):
            raise ValueError("payload must be a finite mass >= 0, got %r" % (payload_kg,))
        self.payload_kg = None if payload_kg is None else float(payload_kg)
        if self._fused is not None:
            self._fused.set_context(self.payload_kg)

    def _context(self, k: int):
        ctx = self._torch.zeros(k, 2 + self._latent_dim)
        if self.payload_kg is not None:
            ctx[:, 0] = self.payload_kg
            ctx[:, 1] = 1.0
        return ctx

    def rollout(self, state: RobotState, controls: np.ndarray, dt: float) -> np.ndarray:
        """The model's own scripted rollout of clamped (K, H, 2) or (H, 2) controls."""
        torch = self._torch
        u = np.asarray(controls, dtype=np.float64)
        single = u.ndim == 2
        if single:
            u = u[None]
        k = u.shape[0]
        s0 = torch.tensor([[0.0, 0.0, state.yaw, state.v, state.w]],
                          dtype=torch.float32).expand(k, 5)
        with torch.no_grad():
            pred = self._script.rollout(s0, torch.from_numpy(u.astype(np.float32)),
                                        self._context(k))
        poses = pred[:, :, :3].permute(2, 1, 0)          # channel-major view, no copy
        reason = self._check(poses.numpy(), dt)
        if reason:
            return self._failed(reason, state, controls, dt)
        traj = pred[:, :, :3].numpy().astype(np.float64)
        traj[:, :, 0] += state.x
        traj[:, :, 1] += state.y
        return traj[0] if single else traj

    def clamp_rollout(self, state: RobotState, requests: np.ndarray, limits: RobotLimits,
                      dt: float) -> Tuple[np.ndarray, np.ndarray]:
        """(clamped controls, their world-model rollouts) of (K, H, 2) or (H, 2) requests,
        in one scripted call (see the module docstring)."""
        torch = self._torch
        req, single = _channel_major(requests)
        bounds = _bounds(torch, state, limits, dt)
        kernels = _kernels()
        with torch.no_grad():
            if self._fused is not None:
                u, poses = kernels.world_model_clamp_rollout(
                    torch.from_numpy(req), bounds, state.yaw, WORLD_MODEL_CHUNK,
                    *self._fused.args())
            else:
                u = kernels.clamp_requests(torch.from_numpy(req), bounds)
                k = req.shape[2]
                s0 = torch.tensor([[0.0, 0.0, state.yaw, state.v, state.w]],
                                  dtype=torch.float32).expand(k, 5)
                pred = self._script.rollout(s0, u.permute(2, 0, 1).float(), self._context(k))
                poses = pred[:, :, :3].permute(2, 1, 0)
        reason = self._check(poses.numpy(), dt)
        if reason:
            controls = u.numpy().transpose(2, 0, 1)
            controls = controls[0].copy() if single else controls
            return controls, self._failed(reason, state, controls, dt)
        # Back to float64 and to the robot's position (exact: SE(2) equivariance).
        poses = poses.double()
        poses[0].add_(state.x)
        poses[1].add_(state.y)
        return _batch_major(u, poses, single)

    def predict_on(self, device: str) -> None:
        """Run `predict` (the world-model service's batched calls) on a torch device: 'cuda'
        scripts a copy of the model there; the planner's own paths stay on the CPU."""
        torch = self._torch
        dev = torch.device(device)
        if dev.type == "cpu":
            self._predict_script, self._predict_device = self._script, "cpu"
            return

        self._predict_script = to_torchscript(copy.deepcopy(self.world_model).to(dev))
        self._predict_device = str(dev)

    def predict(self, states: np.ndarray, commands: np.ndarray,
                payloads: Sequence[Optional[float]], dt: float
                ) -> Tuple[np.ndarray, np.ndarray]:
        """What-if predictions for many robots in one scripted call (the world-model
        service's batch): (N, 5) states [x, y, yaw, v, w], (N, H, 2) commanded velocities
        and one payload (kg, None = unknown) per row -> (N, H+1, 5) states and (N,) trusted
        flags. A row the model predicts implausibly (see _check) is kinematics instead,
        flagged untrusted, without touching the other rows."""
        torch = self._torch
        states = np.asarray(states, dtype=np.float64).reshape(-1, 5)
        commands = np.asarray(commands, dtype=np.float64)
        n = states.shape[0]
        s0 = np.zeros((n, 5), dtype=np.float32)
        s0[:, 2:] = states[:, 2:]        # from the origin, as clamp_rollout (equivariance)
        ctx = np.zeros((n, 2 + self._latent_dim), dtype=np.float32)
        known = np.array([m is not None for m in payloads], dtype=bool)
        ctx[known, 0] = [m for m in payloads if m is not None]
        ctx[known, 1] = 1.0
        ctx = torch.from_numpy(ctx)
        dev = self._predict_device
        with torch.no_grad():
            pred = self._predict_script.rollout(
                torch.from_numpy(s0).to(dev),
                torch.from_numpy(commands.astype(np.float32)).to(dev), ctx.to(dev))
        out = pred.cpu().numpy().astype(np.float64)
        out[:, :, 0] += states[:, None, 0]
        out[:, :, 1] += states[:, None, 1]
        trusted = self._plausible(out[:, :, :3].transpose(2, 1, 0), dt)
        if not trusted.all():
            self.failures += int((~trusted).sum())
            bad = ~trusted
            out[bad] = self._fallback.predict(states[bad], commands[bad], [], dt)[0]
        return out, trusted

    def _failed(self, reason: str, state: RobotState, controls: np.ndarray,
                dt: float) -> np.ndarray:
        self.failures += 1
        self.last_error = reason
        return self._fallback.rollout(state, controls, dt)

    def _check(self, poses: np.ndarray, dt: float) -> str:
        """Why (3, H+1, K) channel-major poses are not believable; '' when they are."""
        if not np.all(np.isfinite(poses)):
            return "non-finite prediction"
        # The model clamps its velocities; a step longer than the limit allows means the
        # pose update itself went wrong. 1.5x: the residual may add up to its bound.
        dx = np.diff(poses[0], axis=0)
        dy = np.diff(poses[1], axis=0)
        step = float(np.sqrt((dx * dx + dy * dy).max(initial=0.0)))
        if step > self._max_step(dt):
            return "step of %.3f m in %.2f s exceeds the model's speed limit" % (step, dt)
        turn = float(np.abs(np.diff(poses[2], axis=0)).max(initial=0.0))
        if turn > self._max_turn(dt):
            return "turn of %.3f rad in %.2f s exceeds the model's turn-rate limit" % (
                turn, dt)
        return ""

    def _max_step(self, dt: float) -> float:
        return 1.5 * self._v_limit * dt + 1e-6

    def _max_turn(self, dt: float) -> float:
        return 1.5 * self._w_limit * dt + 1e-6

    def _plausible(self, poses: np.ndarray, dt: float) -> np.ndarray:
        """(K,) True for the rollouts of (3, H+1, K) channel-major poses that pass `_check`
        (all at once: the service checks thousands of rows per call)."""
        dx = np.diff(poses[0], axis=0)
        dy = np.diff(poses[1], axis=0)
        with np.errstate(invalid="ignore"):
            step = np.sqrt(dx * dx + dy * dy).max(axis=0, initial=0.0)
            turn = np.abs(np.diff(poses[2], axis=0)).max(axis=0, initial=0.0)
            return np.isfinite(poses).all(axis=(0, 1)) & (step <= self._max_step(dt)) \
                & (turn <= self._max_turn(dt))
