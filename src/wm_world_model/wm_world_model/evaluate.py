"""Evaluate a world-model artifact against naive and calibrated kinematics on held-out data.

    python -m wm_world_model.evaluate --artifact src/wm_world_model/models/worldmodel-1.0.0 \
        --config config/world_model/train.yaml --out out/world_model/eval

Uses the training configuration's data roots and split (same seed, so the same held-out
episodes), prints a table of one-step and 10-step errors (median, p95) for naive kinematics, the
calibrated baseline and the residual model on the held-out trajectories and on the payloads
never seen in training (with the payload given, and hidden), and writes eval.json, eval.md and
PNG plots (error over the horizon; predicted vs true rollouts) to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence

import numpy as np

from . import data as wm_data
from .artifact import load_artifact
from .metrics import MODELS, error_by_step, evaluate, predict
from .train import load_config, load_splits

SETS = (("test", "held-out trajectories", True),
        ("unseen_payload", "unseen payloads (mass given)", True),
        ("unseen_payload", "unseen payloads (mass hidden)", False))


def report(results: Dict[str, Any], horizon: int) -> str:
    lines = ["| data | model | one-step pos median / p95 (mm) | %d-step pos median / p95 / mean "
             "(cm) | %d-step heading median / p95 (deg) |" % (horizon, horizon),
             "|---|---|---|---|---|"]
    for label, res in results.items():
        for kind in MODELS:
            m = res[kind]
            lines.append("| %s | %s | %.1f / %.1f | %.2f / %.2f / %.2f | %.2f / %.2f |" % (
                label, kind, m["one_step_pos_mm_median"], m["one_step_pos_mm_p95"],
                m["rollout_pos_cm_median"], m["rollout_pos_cm_p95"], m["rollout_pos_cm_mean"],
                m["rollout_yaw_deg_median"], m["rollout_yaw_deg_p95"]))
    lines += ["", "Residual model's %d-step position error below the baselines:" % horizon, ""]
    for label, res in results.items():
        r = res["reduction_pct"]
        lines.append("- %s: %.0f %% (median) / %.0f %% (mean) below calibrated, %.0f %% / %.0f %% "
                     "below naive; %d windows" % (
                         label, r["vs_calibrated_median"], r["vs_calibrated_mean"],
                         r["vs_naive_median"], r["vs_naive_mean"], res["residual"]["windows"]))
    return "\n".join(lines) + "\n"


def plot(windows: Dict[str, wm_data.Windows], model, out_dir: str, seed: int = 0) -> list:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"naive": "tab:red", "calibrated": "tab:orange", "residual": "tab:blue"}
    written = []
    fig, axes = plt.subplots(1, len(windows), figsize=(5 * len(windows), 3.6), squeeze=False)
    for ax, (label, w) in zip(axes[0], windows.items()):
        steps = np.arange(w.actions.shape[1] + 1) * model.dt
        for kind in MODELS:
            ax.plot(steps, 100 * error_by_step(predict(w, model, kind), w.states), "o-",
                    color=colors[kind], label=kind, ms=3)
        ax.set_title(label)
        ax.set_xlabel("prediction horizon (s)")
        ax.set_ylabel("median position error (cm)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, "error_by_horizon.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    for label, w in windows.items():
        # The windows where the calibrated baseline is worst are where the residual matters.
        preds = {k: predict(w, model, k) for k in MODELS}
        err = np.hypot(*(preds["calibrated"][:, -1, :2] - w.states[:, -1, :2]).T)
        rng = np.random.default_rng(seed)
        pick = list(np.argsort(err)[-3:]) + list(rng.choice(len(w), 3, replace=False))
        fig, axes = plt.subplots(2, 3, figsize=(12, 7))
        for ax, i in zip(axes.ravel(), pick):
            t = w.states[i]
            ax.plot(t[:, 0], t[:, 1], "k.-", lw=2, label="true")
            for kind in MODELS:
                p = preds[kind][i]
                ax.plot(p[:, 0], p[:, 1], ".-", color=colors[kind], label=kind)
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_title("window %d, %.0f kg" % (i, w.payload[i]), fontsize=9)
        axes[0, 0].legend(fontsize=8)
        fig.suptitle("1 s rollouts, %s (top: calibrated's worst, bottom: random)" % label)
        fig.tight_layout()
        path = os.path.join(out_dir, "rollouts_%s.png" % label.split()[0].replace("-", "_"))
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def run(artifact: str, config: str, out_dir: str, plots: bool = True) -> Dict[str, Any]:
    model, meta = load_artifact(artifact)
    cfg = load_config(config)
    _, parts = load_splits(cfg, model.dt, model.config.horizon)
    os.makedirs(out_dir, exist_ok=True)
    results: Dict[str, Any] = {}
    wins: Dict[str, wm_data.Windows] = {}
    for name, label, known in SETS:
        if not parts.get(name):
            continue
        w = wm_data.windows(parts[name], model.config.horizon)
        results[label] = evaluate(w, model, payload_known=known)
        if known:
            wins[label] = w
    text = report(results, model.config.horizon)
    with open(os.path.join(out_dir, "eval.json"), "w") as f:
        json.dump({"artifact": artifact, "version": meta["version"], "results": results}, f,
                  indent=2)
    with open(os.path.join(out_dir, "eval.md"), "w") as f:
        f.write("# World model %s on held-out data\n\n" % meta["version"] + text)
    if plots and wins:
        plot(wins, model, out_dir)
    return {"results": results, "text": text}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="wm_evaluate_world_model",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--config", default="config/world_model/train.yaml")
    ap.add_argument("--out", default="out/world_model/eval")
    ap.add_argument("--no-plots", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.artifact, a.config, a.out, plots=not a.no_plots)
    print(res["text"])
    print("written to %s" % a.out, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
