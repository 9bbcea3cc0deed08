"""Train the world model from driving data and write a versioned artifact.

    python -m wm_world_model.train --config config/world_model/train.yaml --out out/world_model

Steps (every one seeded; the configuration, as run, is saved inside the artifact):
  1. data: the bags under `data.roots` (recorded beforehand per `data.generate` by the tool
     `python -m wm_sim.training_data train CONFIG`, as `make train` does), split by episode into
     train / val / test plus the unseen-payload set (wm_world_model.data);
  2. the calibrated baseline: scale_v, scale_w, tau_v, tau_w fitted by L-BFGS on the training
     windows' H-step rollout loss (the same loss the residual is trained on, so the baseline
     gets the same chance);
  3. the residual on top of the frozen calibration: Adam on a one-step loss (teacher forced)
     plus a rollout loss over the horizon, as the planner uses the model; the payload is
     hidden in a fraction of the samples (`payload_dropout`) so "payload unknown" works;
     early stopping on the validation H-step position error (the best epoch is kept);
  4. evaluation on the held-out splits (wm_world_model.metrics), artifact written with the
     metrics, the data fingerprint and the limits.
Plain Python + torch; the progress bar and the per-epoch summary go to stderr.
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
import yaml

from . import data as wm_data
from .artifact import save_artifact
from .kinematics import CALIBRATION_NAMES, calibrated_rollout
from .metrics import contexts, evaluate
from .model import WorldModel, WorldModelConfig

# Error scales of the loss per state channel: 2 cm, 2 cm, ~1 deg, 5 cm/s, 0.1 rad/s. They make
# the channels comparable; position dominates, as it does in the planner's critics.
LOSS_SCALE = (0.02, 0.02, 0.02, 0.05, 0.1)

DEFAULTS: Dict[str, Any] = {
    "version": "1.0.0",
    "seed": 0,
    "data": {"roots": [], "label_source": "truth", "heldout_payloads": [], "val": 0.15,
             "test": 0.15, "generate": []},
    "model": {},
    "train": {"epochs": 40, "batch_size": 256, "lr": 3e-3, "weight_decay": 1e-6,
              "one_step_weight": 1.0, "rollout_weight": 1.0, "payload_dropout": 0.2,
              "patience": 6, "stride": 1, "threads": 1, "calibration_iterations": 60},
}


def load_config(path: str) -> Dict[str, Any]:
    """DEFAULTS overlaid by the YAML file; unknown keys are an error, not a silent default."""
    with open(path) as f:
        user = yaml.safe_load(f) or {}
    cfg = copy.deepcopy(DEFAULTS)
    for key, value in user.items():
        if key not in cfg:
            raise ValueError("%s: unknown key %r (valid: %s)" % (path, key, sorted(cfg)))
        if isinstance(cfg[key], dict) and key != "model":
            unknown = sorted(set(value or {}) - set(cfg[key]))
            if unknown:
                raise ValueError("%s: unknown %s key(s) %s" % (path, key, unknown))
            cfg[key].update(value or {})
        else:
            cfg[key] = value
    WorldModelConfig.from_dict(cfg["model"])   # validate early
    return cfg


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- data -----------------------------------------------------------------------------------

def load_splits(cfg: Mapping[str, Any], dt: float, horizon: int):
    d = cfg["data"]
    trajs = wm_data.load_trajectories(d["roots"], dt, d["label_source"], horizon + 1)
    parts = wm_data.split(trajs, d["heldout_payloads"], d["val"], d["test"], int(cfg["seed"]))
    wm_data.require(parts)
    return trajs, parts


# -- losses ---------------------------------------------------------------------------------

def _state_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    d = pred - true
    # Heading difference wrapped: the labels' yaw is unwrapped along a trajectory, but a
    # prediction 2*pi off is still the same heading.
    d = torch.cat([d[..., :2], torch.atan2(torch.sin(d[..., 2:3]), torch.cos(d[..., 2:3])),
                   d[..., 3:]], dim=-1)
    return d / torch.tensor(LOSS_SCALE)


def losses(model: WorldModel, states: torch.Tensor, actions: torch.Tensor,
           ctx: torch.Tensor) -> Dict[str, torch.Tensor]:
    b, h1, _ = states.shape
    h = h1 - 1
    # One step from every true state of the window (teacher forcing).
    flat_s = states[:, :-1].reshape(b * h, 5)
    flat_a = actions.reshape(b * h, 2)
    flat_c = ctx.repeat_interleave(h, dim=0)
    one = model.next(flat_s, flat_a, flat_c).reshape(b, h, 5)
    one_step = _state_error(one, states[:, 1:]).pow(2).mean()
    roll = model.rollout(states[:, 0], actions, ctx)[:, 1:]
    rollout = _state_error(roll, states[:, 1:]).pow(2).mean()
    return {"one_step": one_step, "rollout": rollout}


def fit_calibration(states: torch.Tensor, actions: torch.Tensor, dt: float,
                    iterations: int = 60) -> Dict[str, float]:
    """Least-squares fit of the calibrated unicycle on H-step rollouts (L-BFGS).

    Scales are free; lags are parameterised by log(tau) so they stay positive.
    """
    scale = torch.ones(2, requires_grad=True)
    log_tau = torch.log(torch.tensor([0.1, 0.1])).requires_grad_(True)
    opt = torch.optim.LBFGS([scale, log_tau], lr=0.5, max_iter=iterations,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        cal = torch.cat([scale, torch.exp(log_tau)])
        pred = calibrated_rollout(states[:, 0], actions, cal, dt)[:, 1:]
        loss = _state_error(pred, states[:, 1:]).pow(2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    values = torch.cat([scale, torch.exp(log_tau)]).detach().tolist()
    return dict(zip(CALIBRATION_NAMES, values))


def feature_statistics(model: WorldModel, w: wm_data.Windows, dropout: float,
                       seed: int) -> None:
    s = torch.as_tensor(w.states[:, :-1].reshape(-1, 5), dtype=torch.float32)
    a = torch.as_tensor(w.actions.reshape(-1, 2), dtype=torch.float32)
    ctx = contexts(np.repeat(w.payload, w.actions.shape[1]), model.latent_dim)
    gen = torch.Generator().manual_seed(seed)
    ctx[torch.rand(len(ctx), generator=gen) < dropout, 1] = 0.0
    model.feature_mean.zero_()
    model.feature_std.fill_(1.0)
    f = model.features(s, a, ctx)
    model.set_normalisation(f.mean(0), f.std(0))


# -- progress -------------------------------------------------------------------------------

class Progress:
    """A one-line progress bar on a terminal, nothing otherwise (CI logs stay readable)."""

    def __init__(self, total: int, label: str, stream=sys.stderr):
        self.total, self.label, self.stream = total, label, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.t0 = time.time()

    def update(self, i: int, note: str = "") -> None:
        if not self.tty:
            return
        frac = i / max(self.total, 1)
        bar = "#" * int(30 * frac)
        self.stream.write("\r%s [%-30s] %3d%% %s %s" % (self.label, bar, 100 * frac,
                                                         "%.0fs" % (time.time() - self.t0),
                                                         note))
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


# -- training -------------------------------------------------------------------------------

def train_residual(model: WorldModel, train_w: wm_data.Windows, val_w: wm_data.Windows,
                   tc: Mapping[str, Any], seed: int, log=print,
                   start: str = "untrained = calibrated") -> List[Dict[str, float]]:
    """Adam on one-step + rollout loss; early stopping on the validation H-step error."""
    from .metrics import position_error, predict

    gen = torch.Generator().manual_seed(seed)
    s_all = torch.as_tensor(train_w.states, dtype=torch.float32)
    a_all = torch.as_tensor(train_w.actions, dtype=torch.float32)
    c_all = contexts(train_w.payload, model.latent_dim)
    opt = torch.optim.Adam(model.residual.parameters(), lr=float(tc["lr"]),
                           weight_decay=float(tc["weight_decay"]))
    epochs, bs = int(tc["epochs"]), int(tc["batch_size"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    # The untrained model (exactly the calibrated baseline: the last layer starts at zero) is
    # the first candidate, so training can never ship something worse on validation.
    model.eval()
    best = float(np.mean(position_error(predict(val_w, model, "residual"),
                                        val_w.states)[:, -1]))
    best_state, stale, history = copy.deepcopy(model.state_dict()), 0, []
    log("epoch   0  (%s)  val %d-step position error %.2f cm"
        % (start, val_w.actions.shape[1], best * 100.0))
    n = len(train_w)
    batches = max(1, n // bs)
    for epoch in range(epochs):
        t0 = time.time()
        model.train()
        perm = torch.randperm(n, generator=gen)
        bar = Progress(batches, "epoch %d/%d" % (epoch + 1, epochs))
        total = 0.0
        for b in range(batches):
            idx = perm[b * bs:(b + 1) * bs]
            ctx = c_all[idx].clone()
            hide = torch.rand(len(idx), generator=gen) < float(tc["payload_dropout"])
            ctx[hide, 1] = 0.0
            parts = losses(model, s_all[idx], a_all[idx], ctx)
            loss = float(tc["one_step_weight"]) * parts["one_step"] + \
                float(tc["rollout_weight"]) * parts["rollout"]
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.residual.parameters(), 10.0)
            opt.step()
            total += float(loss.detach())
            if b % 10 == 0:
                bar.update(b + 1, "loss %.3f" % (total / (b + 1)))
        bar.close()
        sched.step()
        model.eval()
        val_err = float(np.mean(position_error(predict(val_w, model, "residual"),
                                               val_w.states)[:, -1]))
        rec = {"epoch": epoch + 1, "train_loss": total / batches, "val_rollout_pos_cm":
               val_err * 100.0, "seconds": time.time() - t0}
        history.append(rec)
        improved = val_err < best - 1e-6
        log("epoch %3d  train loss %.4f  val %d-step position error %.2f cm%s  (%.1f s)"
            % (epoch + 1, rec["train_loss"], val_w.actions.shape[1], rec["val_rollout_pos_cm"],
               "  *best" if improved else "", rec["seconds"]))
        if improved:
            best, stale = val_err, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= int(tc["patience"]):
                log("early stop: no validation improvement in %d epochs" % stale)
                break
    model.load_state_dict(best_state)
    return history


def run(cfg: Dict[str, Any], config_text: str, out_dir: str, log=print) -> Dict[str, Any]:
    seed = int(cfg["seed"])
    seed_everything(seed)
    torch.set_num_threads(int(cfg["train"]["threads"]))
    mcfg = WorldModelConfig.from_dict(cfg["model"])
    t_start = time.time()
    trajs, parts = load_splits(cfg, mcfg.dt, mcfg.horizon)
    summary = wm_data.summary(parts, mcfg.dt)
    for name, s in summary.items():
        log("data %-15s %3d episodes %4d trajectories %6.1f min payloads %s"
            % (name, s["episodes"], s["trajectories"], s["minutes"], s["payloads"]))
    stride = int(cfg["train"]["stride"])
    w = {name: wm_data.windows(trs, mcfg.horizon, stride if name == "train" else 1)
         for name, trs in parts.items()}

    t0 = time.time()
    st = torch.as_tensor(w["train"].states, dtype=torch.float32)
    at = torch.as_tensor(w["train"].actions, dtype=torch.float32)
    calibration = fit_calibration(st, at, mcfg.dt, int(cfg["train"]["calibration_iterations"]))
    log("calibrated baseline: %s (%.1f s)" % (
        ", ".join("%s %.3f" % kv for kv in calibration.items()), time.time() - t0))

    model = WorldModel(mcfg, calibration)
    feature_statistics(model, w["train"], float(cfg["train"]["payload_dropout"]), seed)
    history = train_residual(model, w["train"], w["val"], cfg["train"], seed, log)

    metrics: Dict[str, Any] = {}
    for name in ("test", "unseen_payload"):
        if len(w[name]):
            metrics[name] = evaluate(w[name], model)
    if len(w["unseen_payload"]):
        metrics["unseen_payload_unknown"] = evaluate(w["unseen_payload"], model,
                                                     payload_known=False)
    for name, m in metrics.items():
        r = m["reduction_pct"]
        log("%-22s %d-step position error median: naive %.1f cm, calibrated %.1f cm, "
            "residual %.1f cm (-%.0f %% vs calibrated, -%.0f %% vs naive)"
            % (name, mcfg.horizon, m["naive"]["rollout_pos_cm_median"],
               m["calibrated"]["rollout_pos_cm_median"], m["residual"]["rollout_pos_cm_median"],
               r["vs_calibrated_median"], r["vs_naive_median"]))
    all_states = np.concatenate([t.state for t in trajs])
    all_actions = np.concatenate([t.action for t in trajs])
    limits = {"state_min": all_states.min(0).tolist(), "state_max": all_states.max(0).tolist(),
              "action_min": all_actions.min(0).tolist(),
              "action_max": all_actions.max(0).tolist(),
              "payload_kg_trained": sorted(set(float(t.payload) for t in parts["train"]))}
    path = save_artifact(
        model, out_dir, str(cfg["version"]), train_config_yaml=config_text, metrics=metrics,
        data_fingerprint=wm_data.fingerprint(trajs, cfg["data"]["label_source"]),
        limits=limits,
        extra={"data": summary, "history": history,
               "train_seconds": round(time.time() - t_start, 1)})
    log("artifact: %s (%.0f s in all)" % (path, time.time() - t_start))
    return {"path": path, "metrics": metrics, "history": history, "data": summary}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="wm_train_world_model", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--config", required=True, help="training YAML (config/world_model/)")
    ap.add_argument("--out", default="out/world_model", help="directory for the artifact")
    ap.add_argument("--compare", default="",
                    help="an artifact to compare the result with (e.g. the shipped one)")
    args = ap.parse_args(argv)
    with open(args.config) as f:
        text = f.read()
    cfg = load_config(args.config)
    result = run(cfg, text, args.out, log=lambda s: print(s, file=sys.stderr, flush=True))
    if args.compare:
        print(json.dumps(compare(result["path"], args.compare), indent=2))
    return 0


def compare(path: str, reference: str) -> Dict[str, Any]:
    """How a fresh artifact differs from a reference one: data, weights, metrics."""
    from .artifact import load_artifact

    m_new, meta_new = load_artifact(path)
    m_ref, meta_ref = load_artifact(reference)
    diff = max(float((a - b).abs().max()) for a, b in zip(
        m_new.state_dict().values(), m_ref.state_dict().values()))
    return {"same_data": meta_new["data_fingerprint"] == meta_ref["data_fingerprint"],
            "max_weight_difference": diff,
            "test_residual_cm_median": [
                meta_new["metrics"].get("test", {}).get("residual", {}).get(
                    "rollout_pos_cm_median"),
                meta_ref["metrics"].get("test", {}).get("residual", {}).get(
                    "rollout_pos_cm_median")]}


if __name__ == "__main__":
    sys.exit(main())
