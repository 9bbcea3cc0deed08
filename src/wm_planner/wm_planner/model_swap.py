"""Swapping the planner's world model while it runs, with a probe before and a rollback after.

The retraining loop (wm_monitor logs the transitions the model gets wrong, `make finetune`
trains a new versioned artifact from them) ends here: the planner is told on a service call
to use the new artifact. Nothing reaches the MPC before it has passed three gates:

1. the artifact loader (wm_world_model.artifact): schema, sha256 of every file, and the
   Ed25519 signature when the planner requires one;
2. `probe()`: a fixed batch of rollouts (standing, cruising, turning, braking, reversing,
   at every payload mode) must come out finite and within the model's physical limits: the
   same check every planning call makes (LearnedMotionModel), run once up front so a model
   that is broken everywhere is refused before it drives;
3. after the swap, `check()`: a model whose predictions are refused `rollback_failures`
   times within `rollback_window` seconds is replaced by the previous one by itself.
   (Each refused batch already plans on kinematics for that cycle: the robot stays safe
   in between; the rollback stops a bad model from degrading every plan.)

`load_candidate` runs gates 1 and 2 on the planner's parameters; `ModelSwap` holds the model
in use and the one kept for rollback, runs gate 3, and counts the refused predictions of the
model in use (`fallbacks`) for the node's diagnostics.

Plain Python (no rclpy); the planner node owns the timing and the logging.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import numpy as np

from wm_planner.configure import build_motion_model
from wm_world_model.state import RobotState

# the service's answer when the solver cannot take another model while running
NEEDS_MPPI = ("swapping needs solver mppi: the CasADi solvers build the model into their "
              "problem at configure")

# (v, w) start states and constant (v, w) commands the probe rolls out (m/s, rad/s)
PROBE_STATES = [(0.0, 0.0), (0.5, 0.0), (0.3, 0.8), (-0.15, 0.0), (0.7, -1.0)]
PROBE_COMMANDS = [(0.0, 0.0), (0.7, 0.0), (0.4, 1.2), (0.4, -1.2), (-0.2, 0.0), (0.0, 1.2)]
PROBE_PAYLOADS = [None, 0.0, 100.0]


def probe(model, dt: float, horizon: int = 10) -> Optional[str]:
    """None when the model's probe rollouts are all accepted, else the reason."""
    failures = model.failures
    controls = np.array([[c] * horizon for c in PROBE_COMMANDS], dtype=np.float64)
    payload = model.payload_kg
    try:
        for mass in PROBE_PAYLOADS:
            model.set_payload(mass)
            for v, w in PROBE_STATES:
                traj = model.rollout(RobotState(0.0, 0.0, 0.3, v, w), controls, dt)
                if not np.all(np.isfinite(traj)):
                    return "probe: non-finite rollout"
                if model.failures > failures:
                    return "probe: %s" % (model.last_error or "prediction refused")
    finally:
        model.set_payload(payload)
    return None


def load_candidate(params: Mapping[str, Any], artifact: str, payload_kg: Optional[float]
                   ) -> Tuple[Optional[Any], str]:
    """(the motion model of `artifact`, loaded with the planner's parameters and the current
    payload and probed, ''), or (None, why it is refused)."""
    if params["solver"] != "mppi":
        return None, NEEDS_MPPI
    p = dict(params)
    p["world_model_artifact"] = artifact
    p["payload_mass"] = -1.0 if payload_kg is None else payload_kg
    try:
        if not artifact:
            raise ValueError("no artifact given")
        model = build_motion_model(p)
    except (ValueError, RuntimeError, OSError, KeyError) as e:
        # RuntimeError: wm_world_model.artifact.ArtifactError (checksum, schema, signature)
        return None, "refused: %s" % e
    why = probe(model, params["dt"], params["horizon"])
    if why is not None:
        return None, "refused: %s" % why
    return model, ""


class ModelSwap:
    """The model in use, the one kept for rollback, and when to roll back."""

    def __init__(self, current, rollback_failures: int = 3, rollback_window: float = 30.0):
        if rollback_failures < 1 or rollback_window <= 0.0:
            raise ValueError("rollback needs failures >= 1 and a positive window")
        self.current = current
        self.previous = None
        self.rollback_failures = int(rollback_failures)
        self.rollback_window = float(rollback_window)
        self._swapped_at: Optional[float] = None
        self._base_failures = 0
        self._seen_failures = 0   # of the model in use, when `fallbacks` last looked

    @staticmethod
    def version(model) -> str:
        return str(model.version or model.name)

    def versions(self) -> Tuple[str, str]:
        """(the version in use, the one kept for rollback or '')."""
        return (self.version(self.current),
                "" if self.previous is None else self.version(self.previous))

    def fallbacks(self, model) -> int:
        """How many predictions `model` (the one in use) refused since the last call or since
        it came into use: each refused batch planned on kinematics."""
        new = model.failures - self._seen_failures
        if new <= 0:
            return 0
        self._seen_failures = model.failures
        return new

    def swap(self, new, now: float) -> None:
        """Use `new` from now on (it passed the loader and the probe); keep the current one."""
        self.previous, self.current = self.current, new
        self._swapped_at = float(now)
        self._base_failures = getattr(new, "failures", 0)
        self._seen_failures = new.failures

    def check(self, now: float) -> Optional[str]:
        """After a swap: roll back (and say why) when the new model's predictions were
        refused rollback_failures times within rollback_window; None otherwise."""
        if self.previous is None or self._swapped_at is None:
            return None
        if now - self._swapped_at > self.rollback_window:
            self._swapped_at = None      # it proved itself; the previous one stays for a
            return None                  # manual swap back only
        refused = getattr(self.current, "failures", 0) - self._base_failures
        if refused < self.rollback_failures:
            return None
        bad = self.current
        self.current, self.previous = self.previous, None
        self._swapped_at = None
        self._seen_failures = self.current.failures
        return "world model %s: %d predictions refused within %.0f s of the swap (%s): " \
               "rolled back to %s" % (self.version(bad), refused, self.rollback_window,
                                      getattr(bad, "last_error", ""), self.version(self.current))
