"""Prediction errors of the three motion models on held-out windows (one place, used by the
training loop's early stopping, the evaluation command and the tests)."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from .data import Windows
from .kinematics import calibrated_rollout, naive_rollout
from .model import WorldModel

MODELS = ("naive", "calibrated", "residual")


def contexts(payload: np.ndarray, latent_dim: int = 0, known: bool = True) -> torch.Tensor:
    """Context rows; a NaN payload (a bag without the payload topic) is "unknown"."""
    payload = np.asarray(payload, dtype=np.float64)
    ctx = torch.zeros(len(payload), 2 + latent_dim)
    if known:
        is_known = np.isfinite(payload)
        ctx[:, 0] = torch.as_tensor(np.where(is_known, payload, 0.0), dtype=torch.float32)
        ctx[:, 1] = torch.as_tensor(is_known, dtype=torch.float32)
    return ctx


@torch.no_grad()
def predict(w: Windows, model: WorldModel, kind: str, payload_known: bool = True,
            batch: int = 8192) -> np.ndarray:
    """(M, H+1, 5) predictions of model `kind` from each window's first state."""
    outs = []
    dt = model.dt
    for i in range(0, len(w), batch):
        s0 = torch.as_tensor(w.states[i:i + batch, 0], dtype=torch.float32)
        a = torch.as_tensor(w.actions[i:i + batch], dtype=torch.float32)
        if kind == "naive":
            p = naive_rollout(s0, a, dt)
        elif kind == "calibrated":
            p = calibrated_rollout(s0, a, model.calibration, dt)
        elif kind == "residual":
            ctx = contexts(w.payload[i:i + batch], model.latent_dim, payload_known)
            p = model.rollout(s0, a, ctx)
        else:
            raise ValueError("unknown model kind %r" % kind)
        outs.append(p.double().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,) + w.states.shape[1:])


def position_error(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(M, H+1) Euclidean position error at every step."""
    return np.hypot(pred[..., 0] - true[..., 0], pred[..., 1] - true[..., 1])


def heading_error(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    d = pred[..., 2] - true[..., 2]
    return np.abs(np.arctan2(np.sin(d), np.cos(d)))


def summarise(pred: np.ndarray, true: np.ndarray) -> Dict[str, float]:
    """One-step and H-step errors: median and p95 (mm / cm / deg), plus the mean H-step."""
    pos = position_error(pred, true)
    yaw = heading_error(pred, true)
    h = pred.shape[1] - 1
    return {
        "one_step_pos_mm_median": float(np.median(pos[:, 1]) * 1e3),
        "one_step_pos_mm_p95": float(np.percentile(pos[:, 1], 95) * 1e3),
        "rollout_pos_cm_median": float(np.median(pos[:, h]) * 1e2),
        "rollout_pos_cm_p95": float(np.percentile(pos[:, h], 95) * 1e2),
        "rollout_pos_cm_mean": float(np.mean(pos[:, h]) * 1e2),
        "rollout_yaw_deg_median": float(np.degrees(np.median(yaw[:, h]))),
        "rollout_yaw_deg_p95": float(np.degrees(np.percentile(yaw[:, h], 95))),
        "windows": int(pred.shape[0]),
    }


def evaluate(w: Windows, model: WorldModel, payload_known: bool = True
             ) -> Dict[str, Dict[str, float]]:
    """model kind -> summarise() on the windows, plus the residual's reductions (%)."""
    out: Dict[str, Dict[str, float]] = {}
    for kind in MODELS:
        out[kind] = summarise(predict(w, model, kind, payload_known), w.states)
    out["reduction_pct"] = reductions(out)
    return out


def reductions(res: Dict[str, Dict[str, float]]) -> Dict[str, Optional[float]]:
    """How much lower the residual model's H-step position error is (median and mean)."""
    out: Dict[str, Optional[float]] = {}
    for base in ("naive", "calibrated"):
        for stat in ("median", "mean"):
            b = res[base]["rollout_pos_cm_" + stat]
            r = res["residual"]["rollout_pos_cm_" + stat]
            out["vs_%s_%s" % (base, stat)] = None if b <= 0 else 100.0 * (1.0 - r / b)
    return out


def error_by_step(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(H+1,) median position error per horizon step (m)."""
    return np.median(position_error(pred, true), axis=0)
