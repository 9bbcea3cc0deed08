"""Train the scene encoder (encoder.SceneModel) self-supervised on simulator scans.

    python -m wm_perception.train_encoder --out DIR --minutes 5 --engine kinematic --seed 0

Generates episodes in-process (encoder_data), splits train/val by episode (every 5th
episode is validation), fits the count normalisation on the training split, trains for
--minutes of wall time, evaluates IoU on the validation episodes against the static-world
baseline and writes DIR/encoder.pt + DIR/encoder.json (sha256, config, normalisation,
data/training info, metrics) and DIR/metrics.md.

Static-world baseline: the current occupancy moved by the known ego motion into the frame
the prediction is expressed in. Targets are in the CURRENT base frame, so that transform is
the identity and the baseline is the current BEV occupancy itself.

Training script: Python 3.8 syntax, but it may use newer torch than the robot code.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from wm_perception.encoder import (EncoderConfig, SceneModel, batch_coords, features,
                                   save_artifact)
from wm_perception.encoder_data import DataConfig, SceneDataset, generate

MOVING_WEIGHT = 4.0   # extra loss weight on cells of moving things
RECON_WEIGHT = 0.5    # decode(encode(x)) -> current occupancy, auxiliary


def make_batch(ds: SceneDataset, idx: np.ndarray, cfg: EncoderConfig):
    cl, fl = [], []
    for i in idx:
        c, n = ds.cells(int(i))
        cl.append(c)
        fl.append(features(n, cfg))
    coords = torch.from_numpy(batch_coords(cl))
    feats = torch.from_numpy(np.concatenate(fl) if fl else np.zeros((0, 2), np.float32))
    motions = torch.from_numpy(ds.motions[idx].astype(np.float32))
    occ = torch.from_numpy(ds.occupancy(idx).astype(np.float32))
    mov = torch.from_numpy(ds.moving_mask(idx).astype(np.float32))
    return coords, feats, motions, occ, mov


def loss_fn(model: SceneModel, batch) -> torch.Tensor:
    coords, feats, motions, occ, mov = batch
    z = model.encode(coords, feats, motions.shape[0])
    loss = RECON_WEIGHT * F.binary_cross_entropy_with_logits(model.decode(z), occ[:, 0])
    for k in range(motions.shape[1]):
        z = model.next(z, motions[:, k])
        w = 1.0 + MOVING_WEIGHT * torch.maximum(mov[:, 0], mov[:, k + 1])
        loss = loss + F.binary_cross_entropy_with_logits(model.decode(z), occ[:, k + 1],
                                                         weight=w)
    return loss / (RECON_WEIGHT + motions.shape[1])


def fit_normalisation(ds: SceneDataset, cfg: EncoderConfig) -> EncoderConfig:
    v = np.log1p(ds.counts.astype(np.float64))
    return dataclasses.replace(cfg, count_mean=float(v.mean()), count_std=float(v.std() + 1e-6))


def _iou(i: float, u: float) -> float:
    return float(i / u) if u > 0 else float("nan")


@torch.no_grad()
def evaluate(model: SceneModel, ds: SceneDataset, batch: int = 32,
             threshold: float = 0.5) -> Dict[str, float]:
    """Dataset-level IoU (sums of intersections / unions over all validation samples) of
    model and static baseline at each step, over all cells and over the moving region
    (cells covered by a moving robot now or at that step)."""
    model.eval()
    k_steps = ds.motions.shape[1]
    acc = {}
    for s in range(0, len(ds), batch):
        idx = np.arange(s, min(s + batch, len(ds)))
        coords, feats, motions, occ, mov = make_batch(ds, idx, model.config)
        pred = torch.sigmoid(model.predict(coords, feats, motions)) > threshold
        occ_b = occ > 0.5
        mov_b = mov > 0.5
        for k in range(k_steps):
            tgt = occ_b[:, k + 1]
            region = mov_b[:, 0] | mov_b[:, k + 1]
            for name, p in (("model", pred[:, k]), ("static", occ_b[:, 0])):
                for rname, r in (("all", None), ("moving", region)):
                    inter = p & tgt
                    union = p | tgt
                    if r is not None:
                        inter, union = inter & r, union & r
                    key = "%s/%s/%.1fs" % (name, rname, (k + 1) * model.config.step_dt)
                    a = acc.setdefault(key, [0.0, 0.0])
                    a[0] += float(inter.sum())
                    a[1] += float(union.sum())
    model.train()
    return {k: _iou(*v) for k, v in sorted(acc.items())}


def metrics_table(m: Dict[str, float], steps: List[float]) -> str:
    lines = ["| horizon | cells | model IoU | static-world IoU |", "|---|---|---:|---:|"]
    for t in steps:
        for r in ("all", "moving"):
            lines.append("| %.1f s | %s | %.3f | %.3f |" % (
                t, r, m["model/%s/%.1fs" % (r, t)], m["static/%s/%.1fs" % (r, t)]))
    return "\n".join(lines)


def train(model: SceneModel, train_ds: SceneDataset, minutes: float, batch: int = 16,
          lr: float = 2e-3, seed: int = 0, max_steps: Optional[int] = None,
          log_every: int = 50, verbose: bool = True) -> Dict[str, object]:
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    t0 = time.perf_counter()
    deadline = t0 + 60.0 * minutes
    losses = []
    step = 0
    model.train()
    while time.perf_counter() < deadline and (max_steps is None or step < max_steps):
        idx = rng.integers(0, len(train_ds), size=batch)
        loss = loss_fn(model, make_batch(train_ds, idx, model.config))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if verbose and step % log_every == 0:
            print("step %d loss %.4f (%.0f s)" % (step, float(np.mean(losses[-log_every:])),
                                                  time.perf_counter() - t0), flush=True)
    return {"steps": step, "seconds": round(time.perf_counter() - t0, 1), "batch": batch,
            "lr": lr, "loss_first": losses[0] if losses else None,
            "loss_last50": float(np.mean(losses[-50:])) if losses else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=5.0, help="training wall time")
    ap.add_argument("--engine", default="kinematic", choices=("kinematic", "mujoco"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=25)
    ap.add_argument("--episode-seconds", type=float, default=60.0)
    ap.add_argument("--robots", type=int, default=5)
    ap.add_argument("--data-minutes", type=float, default=4.0,
                    help="stop generating episodes after this wall time")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--backend", default="dense", choices=("auto", "sparse", "dense"),
                    help="backend used for training (weights are backend independent)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    ecfg = EncoderConfig()
    dcfg = DataConfig(engine=args.engine, robots=args.robots,
                      episode_seconds=args.episode_seconds)
    t0 = time.perf_counter()
    ds = generate(dcfg, ecfg, args.seed, args.episodes, ecfg.horizon,
                  deadline=t0 + 60.0 * args.data_minutes)
    data_s = time.perf_counter() - t0
    n_ep = int(ds.episode.max()) + 1
    is_val = (ds.episode % 5) == 4 if n_ep >= 5 else ds.episode == n_ep - 1
    train_ds, val_ds = ds.subset(~is_val), ds.subset(is_val)
    os.makedirs(args.out, exist_ok=True)
    print("data: %d episodes, %d train / %d val samples in %.0f s"
          % (n_ep, len(train_ds), len(val_ds), data_s), flush=True)
    ecfg = fit_normalisation(train_ds, ecfg)
    model = SceneModel(ecfg, backend=args.backend)
    info = train(model, train_ds, args.minutes, batch=args.batch, seed=args.seed)
    metrics = evaluate(model, val_ds)
    steps = [(k + 1) * ecfg.step_dt for k in range(ecfg.horizon)]
    table = metrics_table(metrics, steps)
    print(table)
    extra = {"training": info, "metrics": metrics,
             "data": {"engine": args.engine, "seed": args.seed, "episodes": n_ep,
                      "episode_seconds": args.episode_seconds, "robots": args.robots,
                      "train_samples": len(train_ds), "val_samples": len(val_ds),
                      "val_episodes": sorted(set(int(e) for e in val_ds.episode)),
                      "generation_s": round(data_s, 1),
                      "data_config": {k: (list(v) if isinstance(v, tuple) else v)
                                      for k, v in dataclasses.asdict(dcfg).items()}},
             "trained_with_backend": model.backend}
    meta = save_artifact(model, args.out, extra)
    with open(os.path.join(args.out, "metrics.md"), "w") as f:
        f.write(table + "\n")
    print(json.dumps({"sha256": meta["sha256"], "training": info}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
