"""Fine-tune the world model's residual from logged high-error transitions (`make finetune`).

The retraining loop: the monitor on each robot logs the segments its world model got wrong
(wm_monitor.transitions, MCAP); this fine-tunes the deployed artifact on them and writes the
next version, with its metrics against the previous one; the planner takes it on
`~/swap_world_model` (checksums, probe, automatic rollback: wm_planner.model_swap).

    python -m wm_monitor.finetune --artifact worldmodel-1.0.0 --transitions out/transitions \\
        --out out/world_model [--version 1.0.1] [--config config/world_model/finetune.yaml]

* Segments become trajectories (`wm_world_model.data.Trajectory`); those with an unknown
  payload are skipped (the model's payload input needs a mass). Whole segments are split
  into train and validation (deterministic), never single windows.
* The previous model is the starting point and the first candidate: training keeps the best
  epoch on validation, so the new version is never worse than the previous one on the
  validation segments (the same rule as `make train`). Input normalisation and calibration
  stay those of the previous model.
* The artifact's metadata carries the parent version, the segment count and both models'
  errors on the validation segments; `metrics.json` beside it says the same.

`--simulated-bags DIR` derives transitions when the directory has none (`make finetune` on a
machine without robot logs): DIR holds simulated driving with a payload beyond the trained
range and low friction (`python -m wm_sim.training_data finetune --out DIR`, a tool beside
the stack), the previous model's one-step error selects the segments, and the monitor's own
selector and writer (SegmentSelector, TransitionLog) log them.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch
import yaml

from wm_monitor.prediction_error import StepResult
from wm_monitor.transitions import SegmentSelector, TransitionLog, read_segments
from wm_world_model import data as wm_data
from wm_world_model.artifact import load_artifact, resolve_artifact, save_artifact
from wm_world_model.data import Trajectory
from wm_world_model.metrics import contexts, evaluate
from wm_world_model.train import seed_everything, train_residual

DEFAULTS = {"seed": 3, "val": 0.25, "min_segments": 6, "segment_steps": 20,
            "train": {"epochs": 25, "batch_size": 128, "lr": 3.0e-3, "weight_decay": 1.0e-6,
                      "one_step_weight": 1.0, "rollout_weight": 1.0, "payload_dropout": 0.2,
                      "patience": 6, "threads": 1},
            "simulate": {"payloads": [250.0], "frictions": [0.4], "episodes": 6,
                         "episode_seconds": 60.0, "robots": 2, "seed": 21, "threshold": 0.01}}


def load_config(path: str) -> Dict[str, Any]:
    cfg = json.loads(json.dumps(DEFAULTS))
    if path:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
        for key, value in doc.items():
            if isinstance(value, dict):
                cfg.setdefault(key, {}).update(value)
            else:
                cfg[key] = value
    return cfg


def segments_to_trajectories(segments: Sequence[Dict[str, Any]], horizon: int):
    """(trajectories, skipped counts): one Trajectory per segment long enough for a window."""
    out, skipped = [], {"unknown_payload": 0, "too_short": 0, "not_finite": 0}
    for i, seg in enumerate(segments):
        if seg["payload"] < 0:
            skipped["unknown_payload"] += 1
            continue
        t = np.asarray(seg["t"], dtype=np.float64)
        state = np.asarray(seg["states"], dtype=np.float64).reshape(-1, 5)
        action = np.asarray(seg["actions"], dtype=np.float64).reshape(-1, 2)
        if not (np.all(np.isfinite(state)) and np.all(np.isfinite(action))
                and np.all(np.isfinite(t))):
            skipped["not_finite"] += 1
            continue
        if len(t) < horizon + 1:
            skipped["too_short"] += 1
            continue
        state[:, 2] = np.unwrap(state[:, 2])
        name = "%s/segment%05d" % (seg.get("robot", "robot"), i)
        out.append(Trajectory(name=name, episode=name, robot=seg.get("robot", "robot"),
                              payload=float(seg["payload"]), t=t, state=state,
                              action=action))
    return out, skipped


def split(trajs, val: float, seed: int):
    """Whole segments to train / val, deterministic for a seed."""
    order = np.random.default_rng(seed).permutation(len(trajs))
    n_val = max(1, int(round(val * len(trajs))))
    val_idx = set(order[:n_val].tolist())
    return ([t for i, t in enumerate(trajs) if i not in val_idx],
            [t for i, t in enumerate(trajs) if i in val_idx])


def next_version(version: str) -> str:
    major, minor, patch = (int(v) for v in version.split("."))
    return "%d.%d.%d" % (major, minor, patch + 1)


def finetune(artifact: str, transitions: Sequence[str], out_dir: str, cfg: Dict[str, Any],
             version: str = "", log=print) -> Dict[str, Any]:
    seed_everything(int(cfg["seed"]))
    torch.set_num_threads(int(cfg["train"]["threads"]))
    model, meta = load_artifact(artifact)
    horizon = int(model.config.horizon)
    segments = read_segments(transitions)
    trajs, skipped = segments_to_trajectories(segments, horizon)
    log("%d segments read, %d usable (skipped: %s)" % (len(segments), len(trajs), skipped))
    if len(trajs) < int(cfg["min_segments"]):
        raise ValueError("only %d usable segments (min_segments %d): log more driving first"
                         % (len(trajs), int(cfg["min_segments"])))
    train_t, val_t = split(trajs, float(cfg["val"]), int(cfg["seed"]))
    train_w = wm_data.windows(train_t, horizon, 1)
    val_w = wm_data.windows(val_t, horizon, 1)
    log("train: %d segments, %d windows; validation: %d segments, %d windows"
        % (len(train_t), len(train_w), len(val_t), len(val_w)))
    before = evaluate(val_w, model)
    t0 = time.time()
    history = train_residual(model, train_w, val_w, cfg["train"], int(cfg["seed"]), log,
                             start="the deployed %s" % meta["version"])
    after = evaluate(val_w, model)
    version = version or next_version(meta["version"])
    metrics = {"finetune": {
        "parent": meta["version"], "segments": len(trajs), "skipped": skipped,
        "train_windows": len(train_w), "val_windows": len(val_w),
        "val_previous": before["residual"], "val_new": after["residual"],
        "val_calibrated": after["calibrated"], "seconds": round(time.time() - t0, 1)}}
    path = save_artifact(
        model, out_dir, version, metrics=dict(meta.get("metrics", {}), **metrics),
        data_fingerprint=meta.get("data_fingerprint", ""), limits=meta.get("limits", {}),
        extra={"parent": meta["version"], "history": history,
               "finetune_config": cfg})
    with open(os.path.join(path, "..", "metrics-%s.json" % version), "w") as f:
        json.dump(metrics, f, indent=2)
    b, a = before["residual"], after["residual"]
    log("%d-step position error on the validation segments: %s mean %.2f cm, median %.2f cm"
        " -> %s mean %.2f cm, median %.2f cm (early stopping keeps the best mean)"
        % (horizon, meta["version"], b["rollout_pos_cm_mean"], b["rollout_pos_cm_median"],
           version, a["rollout_pos_cm_mean"], a["rollout_pos_cm_median"]))
    log("artifact: %s" % path)
    return {"path": path, "version": version, "metrics": metrics}


# -- simulated transitions (a machine without robot logs) --------------------------------------

def simulate_transitions(artifact: str, out_dir: str, cfg: Dict[str, Any], bags: str,
                         log=print) -> int:
    """Transitions from simulated driving (`bags`: python -m wm_sim.training_data finetune,
    a payload beyond the trained range): the previous model's one-step error selects
    segments, written by the monitor's own selector and log."""
    sim = cfg["simulate"]
    model, meta = load_artifact(artifact)
    trajs = wm_data.load_trajectories([bags], model.dt, "truth", model.config.horizon + 1)
    written, logs = 0, {}
    for traj in trajs:
        if traj.robot not in logs:   # one log per robot, as on the robots
            logs[traj.robot] = TransitionLog(out_dir, robot=traj.robot, dt=model.dt,
                                             model_version="worldmodel-%s" % meta["version"],
                                             fsync=False)
        log_ = logs[traj.robot]
        selector = SegmentSelector(int(cfg["segment_steps"]), float(sim["threshold"]))
        s = torch.as_tensor(traj.state[:-1], dtype=torch.float32)
        a = torch.as_tensor(traj.action[:-1], dtype=torch.float32)
        with torch.no_grad():
            pred = model.next(s, a, contexts(np.full(len(s), traj.payload), model.latent_dim))
        pred = pred.numpy()
        for k in range(len(traj) - 1):
            err = math.hypot(pred[k, 0] - traj.state[k + 1, 0], pred[k, 1] - traj.state[k + 1, 1])
            step = StepResult(
                t0=float(traj.t[k]), t1=float(traj.t[k + 1]),
                state0=tuple(float(v) for v in traj.state[k]),
                action0=tuple(float(v) for v in traj.action[k]),
                state1=tuple(float(v) for v in traj.state[k + 1]),
                action1=tuple(float(v) for v in traj.action[k + 1]),
                payload=float(traj.payload), predicted=tuple(float(v) for v in pred[k, :3]),
                position_error=err, heading_error=float("nan"),
                kinematic_position_error=float("nan"), kinematic_heading_error=float("nan"),
                inference_s=0.0)
            segment = selector.add(step)
            if segment is not None:
                log_.write(segment)
                written += 1
    for log_ in logs.values():
        log_.close()
    log("%d segments logged to %s" % (written, out_dir))
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="wm_finetune", description=__doc__.split("\n")[0])
    ap.add_argument("--artifact", required=True, help="the deployed artifact (dir or name)")
    ap.add_argument("--transitions", required=True, help="directory of transitions-*.mcap")
    ap.add_argument("--out", default="out/world_model", help="where the new version goes")
    ap.add_argument("--version", default="", help="default: the parent's patch + 1")
    ap.add_argument("--config", default="", help="YAML overriding the defaults above")
    ap.add_argument("--simulated-bags", default="",
                    help="when the transitions directory has none: derive them from these "
                         "bags of simulated driving (python -m wm_sim.training_data finetune)")
    a = ap.parse_args(argv)

    def log(s):
        print(s, file=sys.stderr, flush=True)

    artifact = resolve_artifact(a.artifact)
    cfg = load_config(a.config)
    os.makedirs(a.transitions, exist_ok=True)
    have = [f for f in os.listdir(a.transitions) if f.endswith(".mcap")]
    if not have:
        if not a.simulated_bags:
            log("error: no transitions-*.mcap in %s (run the monitor with transitions_dir on "
                "a robot, or pass --simulated-bags)" % a.transitions)
            return 2
        simulate_transitions(artifact, a.transitions, cfg, a.simulated_bags, log)
    try:
        result = finetune(artifact, [a.transitions], a.out, cfg, a.version, log)
    except ValueError as e:
        log("error: %s" % e)
        return 2
    print(json.dumps({"path": result["path"], **result["metrics"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
