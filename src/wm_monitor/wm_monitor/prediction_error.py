"""The world model's one-step prediction error, measured online on the robot.

Steps are paired exactly as the training data is (`wm_world_model.data`): a step starts at a
command (`cmd_vel`, the safety gate's output to the base) at t_k and holds it until the next
command at t_{k+1}; a step counts when the commands are dt +- `time_tolerance` apart, the
command did not change in between, and the payload stayed the same. Its

    state_k  = [x, y, yaw] of the localization pose (map) at t_k, [v, w] of wheel odometry
               at t_k (both interpolated between the samples around t_k)
    action_k = the command of t_k
    payload  = the latched payload (kg; None = unknown)

go through the predictor (the world model the planner uses, one step, batch 1) and the
prediction is compared with the localization pose at t_{k+1}: position error (m) and heading
error (rad). Not wheel odometry's pose: it cannot see wheel slip, the very thing the model's
residual has to learn. The unicycle with the command (the planner's kinematic model) is
predicted too, for comparison.

Data is not trusted: non-finite or absurd values, stamps out of order, older than
`max_delay` or from the future are rejected (counted by reason, `rejected`). A step is
skipped (counted by reason, `skipped`) when the commands leave a gap, the command changed
within the step, the payload changed, or the localization / odometry around t_k or t_{k+1}
has a gap or did not arrive within `max_delay`. A step waits for the poses after t_{k+1} (a
localizer publishes later than the command), so results come out up to `max_delay` late.

Plain Python + numpy (the predictor: the planner's motion model), no rclpy; Python 3.8.
"""
from __future__ import annotations

import bisect
import math
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Sequence, Tuple

import numpy as np

from wm_world_model.artifact import resolve_artifact
from wm_world_model.kinematics import unicycle_terms
from wm_world_model.motion_model import LearnedMotionModel
from wm_world_model.state import RobotState

ABSURD_COORDINATE = 1.0e6   # m: a pose farther out is corrupt
ABSURD_SPEED = 20.0         # m/s or rad/s: a twist or command beyond is corrupt
HISTORY_S = 10.0            # s of localization / odometry samples kept for interpolation

_PENDING = "pending"


def wrap(a: float) -> float:
    """Angle wrapped to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass
class PairingConfig:
    dt: float = 0.1                 # s, the world model's step (the planner's control period)
    time_tolerance: float = 0.02    # s, command spacing that still counts as "every dt"
    max_delay: float = 0.5          # s, input older on arrival is stale; steps wait this long
    max_gap: float = 0.25           # s, longest gap between samples bridged by interpolation
    command_epsilon: float = 1e-3   # m/s, rad/s: a command within this is a repeat
    future_tolerance: float = 0.2   # s, stamps this far ahead of the clock are accepted
    window: float = 60.0            # s, rolling mean window

    def validate(self) -> None:
        if not (self.dt > 0.0 and self.time_tolerance > 0.0
                and self.time_tolerance < 0.5 * self.dt):
            raise ValueError("need dt > 0 and 0 < time_tolerance < dt / 2 (dt %r, tolerance "
                             "%r)" % (self.dt, self.time_tolerance))
        if not (self.max_delay > 0.0 and self.max_gap > 0.0 and self.window > 0.0):
            raise ValueError("max_delay, max_gap and window must be positive")


@dataclass
class StepResult:
    """One evaluated step: the state at t0 and command, the state observed at t1, errors."""

    t0: float
    t1: float
    state0: Tuple[float, float, float, float, float]   # [x, y, yaw, v, w] at t0
    action0: Tuple[float, float]                       # command held from t0
    state1: Tuple[float, float, float, float, float]   # observed at t1
    action1: Tuple[float, float]                       # the command of t1
    payload: Optional[float]                           # kg, None = unknown
    predicted: Tuple[float, float, float]              # world model's [x, y, yaw] at t1
    position_error: float                              # m
    heading_error: float                               # rad, |wrapped difference|
    kinematic_position_error: float                    # m, unicycle with the command
    kinematic_heading_error: float                     # rad
    inference_s: float                                 # wall time of the prediction


class _Series:
    """Stamped samples in stamp order, interpolated linearly (angles along the short way)."""

    def __init__(self, angle_index: int = -1):
        self.t: List[float] = []
        self.v: List[Tuple[float, ...]] = []
        self.angle_index = angle_index

    @property
    def newest(self) -> Optional[float]:
        return self.t[-1] if self.t else None

    def push(self, t: float, value: Tuple[float, ...]) -> None:
        self.t.append(t)
        self.v.append(value)
        if len(self.t) > 64 and self.t[0] < t - HISTORY_S:
            cut = bisect.bisect_left(self.t, t - HISTORY_S)
            del self.t[:cut]
            del self.v[:cut]

    def at(self, t: float, max_gap: float):
        """(value, '') at t; (None, 'pending') when no sample at or after t has arrived yet;
        (None, 'gap') when the samples around t are farther apart than max_gap; (None,
        'missing') when t is before the kept history."""
        if not self.t or self.t[-1] < t:
            return None, _PENDING
        i = bisect.bisect_left(self.t, t)
        if self.t[i] == t:
            return self.v[i], ""
        if i == 0:
            return None, "missing"
        t0, t1 = self.t[i - 1], self.t[i]
        if t1 - t0 > max_gap:
            return None, "gap"
        a = (t - t0) / (t1 - t0)
        v0, v1 = self.v[i - 1], self.v[i]
        out = []
        for j, (p, q) in enumerate(zip(v0, v1)):
            d = wrap(q - p) if j == self.angle_index else q - p
            out.append(p + a * d)
        if self.angle_index >= 0:
            out[self.angle_index] = wrap(out[self.angle_index])
        return tuple(out), ""


class _Anchor:
    """A command that starts a step."""

    __slots__ = ("t", "u", "payload", "state", "fail", "link")

    def __init__(self, t: float, u: Tuple[float, float], payload: Optional[float]):
        self.t = t
        self.u = u
        self.payload = payload
        self.state: Optional[Tuple[float, ...]] = None
        self.fail = ""            # why no state could be had at t
        self.link: Optional[str] = None   # '' = the next command makes a step; else why not


class KinematicPredictor:
    """One unicycle step with the command (the planner's kinematic motion model)."""

    name = "kinematic"
    version = "kinematic"

    def __init__(self, dt: float):
        self.dt = dt

    def predict(self, state: Sequence[float], action: Sequence[float],
                payload: Optional[float]) -> Tuple[float, float, float]:
        return kinematic_step(state, action, self.dt)


def kinematic_step(state: Sequence[float], action: Sequence[float],
                   dt: float) -> Tuple[float, float, float]:
    """The planner's unicycle for one step (wm_world_model.kinematics.unicycle_terms)."""
    return tuple(float(v) for v in unicycle_terms(state[0], state[1], state[2], action[0],
                                                  action[1], dt, math.cos, math.sin))


class WorldModelPredictor:
    """One step of a LearnedMotionModel (wm_world_model.motion_model, as the planner runs it),
    batch 1.

    A prediction the model's guard refuses (non-finite, faster than its limits) comes back
    as the kinematic fallback the planner would have used, and is counted in `fallbacks`."""

    name = "world_model"

    def __init__(self, model, dt: float):
        self.model = model
        self.dt = dt
        meta = model.metadata or {}
        version = str(model.version or "")
        # "worldmodel-1.0.0": the artifact's directory name, the fleet's model_version
        self.version = ("%s-%s" % (meta["name"], version) if meta.get("name") and version
                        else version or "world_model")
        self._payload: Optional[float] = model.payload_kg

    @property
    def fallbacks(self) -> int:
        return int(self.model.failures)

    def predict(self, state: Sequence[float], action: Sequence[float],
                payload: Optional[float]) -> Tuple[float, float, float]:
        if payload != self._payload:
            self.model.set_payload(payload)
            self._payload = payload
        s = RobotState(x=float(state[0]), y=float(state[1]), yaw=float(state[2]),
                            v=float(state[3]), w=float(state[4]))
        u = np.array([[float(action[0]), float(action[1])]], dtype=np.float64)
        traj = self.model.rollout(s, u, self.dt)          # (2, 3): now and one step on
        return (float(traj[1, 0]), float(traj[1, 1]), float(traj[1, 2]))


def load_world_model(artifact: str, dt: float, public_key_file: str = "",
                     threads: int = 1) -> WorldModelPredictor:
    """The planner's LearnedMotionModel of `artifact` (a directory, or the name of one
    shipped with wm_world_model), as a predictor. Raises ArtifactError / ValueError /
    OSError with the reason."""
    model = LearnedMotionModel(resolve_artifact(artifact), dt,
                               public_key_file=public_key_file,
                               require_signature=bool(public_key_file), threads=threads)
    return WorldModelPredictor(model, dt)


class RollingMean:
    """Mean of (t, value) samples over the last `window` seconds (of sample time). `mean`
    is one attribute, set by `add`: safe to read from another thread (a metrics scrape)."""

    def __init__(self, window: float):
        self.window = window
        self._items: Deque[Tuple[float, float]] = deque()
        self._sum = 0.0
        self._adds = 0
        self.mean = float("nan")

    def add(self, t: float, value: float) -> None:
        self._items.append((t, value))
        self._sum += value
        while self._items[0][0] < t - self.window:
            self._sum -= self._items.popleft()[1]
        self._adds += 1
        if self._adds % 1000 == 0:   # re-summed now and then: no float drift
            self._sum = math.fsum(v for _, v in self._items)
        self.mean = self._sum / len(self._items)

    def __len__(self) -> int:
        return len(self._items)


class PredictionErrorTracker:
    """Pairs commands, localization and odometry into steps and measures each step's
    prediction error (see the module docstring). Feed it with the add_* methods (stamps in
    seconds on one clock, `now` on the same clock) and call `process(now)` for the steps
    that became complete."""

    def __init__(self, config: PairingConfig, predictor, kinematic: Optional[object] = None,
                 perf_counter: Callable[[], float] = time.perf_counter):
        config.validate()
        self.config = config
        self.predictor = predictor
        self.kinematic = kinematic or KinematicPredictor(config.dt)
        self._perf = perf_counter
        self._loc = _Series(angle_index=2)       # x, y, yaw
        self._odom = _Series()                   # v, w
        self._anchors: Deque[_Anchor] = deque()
        self._last_cmd: Optional[Tuple[float, Tuple[float, float]]] = None
        self.payload: Optional[float] = None
        self.rejected: Counter = Counter()
        self.skipped: Counter = Counter()
        self.steps = 0
        self.error_mean = RollingMean(config.window)
        self.kinematic_error_mean = RollingMean(config.window)

    # ------------------------------------------------------------------ inputs
    def _check_stamp(self, what: str, t: float, newest: Optional[float], now: float,
                     same_ok: bool = False) -> str:
        if not math.isfinite(t):
            return what + "_invalid"
        if newest is not None and (t < newest or (t == newest and not same_ok)):
            return what + "_out_of_order"
        if t > now + self.config.future_tolerance:
            return what + "_future"
        if now - t > self.config.max_delay:
            return what + "_stale"
        return ""

    def _reject(self, reason: str) -> str:
        self.rejected[reason] += 1
        return reason

    def add_localization(self, t: float, x: float, y: float, yaw: float, now: float) -> str:
        """A localization pose (map frame); returns the rejection reason or ''."""
        if not all(math.isfinite(v) for v in (x, y, yaw)) or \
                max(abs(x), abs(y)) > ABSURD_COORDINATE:
            return self._reject("localization_invalid")
        why = self._check_stamp("localization", t, self._loc.newest, now)
        if why:
            return self._reject(why)
        self._loc.push(t, (float(x), float(y), wrap(float(yaw))))
        return ""

    def add_odometry(self, t: float, v: float, w: float, now: float) -> str:
        """Wheel odometry's body twist; returns the rejection reason or ''."""
        if not (math.isfinite(v) and math.isfinite(w)) or max(abs(v), abs(w)) > ABSURD_SPEED:
            return self._reject("odom_invalid")
        why = self._check_stamp("odom", t, self._odom.newest, now)
        if why:
            return self._reject(why)
        self._odom.push(t, (float(v), float(w)))
        return ""

    def set_payload(self, payload: Optional[float]) -> str:
        """The carried mass in kg (None or < 0: unknown); returns the rejection reason or ''."""
        if payload is not None and payload < 0.0:
            payload = None
        if payload is not None and not (math.isfinite(payload) and payload <= 5000.0):
            return self._reject("payload_invalid")
        self.payload = None if payload is None else float(payload)
        return ""

    def add_command(self, t: float, v: float, w: float, now: float) -> str:
        """A command the base received at t; returns the rejection reason or ''."""
        if not (math.isfinite(v) and math.isfinite(w)) or max(abs(v), abs(w)) > ABSURD_SPEED:
            return self._reject("cmd_vel_invalid")
        # Two commands may share a stamp (a gate stamping with a clock that did not advance,
        # as in lockstep simulation): the base holds the later one.
        why = self._check_stamp("cmd_vel", t,
                                None if self._last_cmd is None else self._last_cmd[0], now,
                                same_ok=True)
        if why:
            return self._reject(why)
        u = (float(v), float(w))
        self._last_cmd = (t, u)
        cfg = self.config
        last = self._anchors[-1] if self._anchors else None
        if last is not None and t == last.t:
            last.u = u
            return ""
        if last is not None and t < last.t + cfg.dt - cfg.time_tolerance:
            # within the step: a repeat of its command is harmless, a new one breaks it
            if max(abs(u[0] - last.u[0]), abs(u[1] - last.u[1])) <= cfg.command_epsilon:
                return ""
            last.link = "command_changed"
        elif last is not None:
            if t > last.t + cfg.dt + cfg.time_tolerance:
                last.link = "command_gap"
            elif last.payload != self.payload:
                last.link = "payload_changed"
            else:
                last.link = ""
        self._anchors.append(_Anchor(t, u, self.payload))
        return ""

    # ------------------------------------------------------------------ steps
    def _resolve(self, a: _Anchor, now: float) -> bool:
        """Fill a.state (or a.fail); False while the data around a.t may still come."""
        if a.state is not None or a.fail:
            return True
        late = now - a.t > self.config.max_delay
        pose, why = self._loc.at(a.t, self.config.max_gap)
        if pose is None:
            if why == _PENDING and not late:
                return False
            a.fail = "localization_" + ("missing" if why == _PENDING else why)
            return True
        twist, why = self._odom.at(a.t, self.config.max_gap)
        if twist is None:
            if why == _PENDING and not late:
                return False
            a.fail = "odom_" + ("missing" if why == _PENDING else why)
            return True
        a.state = (pose[0], pose[1], pose[2], twist[0], twist[1])
        return True

    def process(self, now: float) -> List[StepResult]:
        """Every step that can be decided now, evaluated or skipped (oldest first)."""
        results: List[StepResult] = []
        while len(self._anchors) >= 2:
            a, b = self._anchors[0], self._anchors[1]
            if a.link is None:   # cannot happen: b's arrival decided it
                a.link = "command_gap"
            if a.link:
                self._anchors.popleft()
                self.skipped[a.link] += 1
                continue
            if not (self._resolve(a, now) and self._resolve(b, now)):
                break
            self._anchors.popleft()
            if a.fail or b.fail:
                self.skipped[a.fail or b.fail] += 1
                continue
            results.append(self._evaluate(a, b))
        return results

    def _evaluate(self, a: _Anchor, b: _Anchor) -> StepResult:
        t0 = self._perf()
        pred = self.predictor.predict(a.state, a.u, a.payload)
        inference = self._perf() - t0
        kin = self.kinematic.predict(a.state, a.u, a.payload)
        s1 = b.state
        err = math.hypot(s1[0] - pred[0], s1[1] - pred[1])
        herr = abs(wrap(s1[2] - pred[2]))
        kerr = math.hypot(s1[0] - kin[0], s1[1] - kin[1])
        kherr = abs(wrap(s1[2] - kin[2]))
        if not math.isfinite(err):
            err = herr = float("nan")
        self.steps += 1
        if math.isfinite(err):
            self.error_mean.add(b.t, err)
        self.kinematic_error_mean.add(b.t, kerr)
        return StepResult(t0=a.t, t1=b.t, state0=tuple(a.state), action0=a.u,
                          state1=tuple(s1), action1=b.u, payload=a.payload,
                          predicted=(float(pred[0]), float(pred[1]), float(pred[2])),
                          position_error=err, heading_error=herr,
                          kinematic_position_error=kerr, kinematic_heading_error=kherr,
                          inference_s=inference)

    @property
    def pending(self) -> int:
        """Commands waiting for their step to be decided."""
        return len(self._anchors)
