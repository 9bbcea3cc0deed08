"""Train the scene encoder (encoder.SceneModel) self-supervised on simulator scans.

    python -m wm_sim.encoder_datagen --out d.npz --engine kinematic --seed 0   (the data)
    python -m wm_perception.train_encoder --data d.npz --out DIR --minutes 5
    python -m wm_perception.train_encoder --data d.npz --out DIR --device cuda --minutes 4 \
        --batch 64                                                   (GPU, dense backend)

Reads a dataset of simulated driving (wm_sim.encoder_datagen, a tool beside the stack), splits
train/val by episode (every 5th episode is validation; --calibrate also holds out episodes
e % 10 == 3 to pick the decision threshold), fits the count normalisation on the training
split, trains for --minutes of wall time (--device cuda: dense backend on the GPU, batches
assembled on the device), evaluates IoU on the validation episodes against the static-world
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
import math
import os
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from wm_perception.encoder import (EncoderConfig, SceneModel, batch_coords, features,
                                   save_artifact)
from wm_perception.encoder_data import SceneDataset

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


class TensorBatcher:
    """A SceneDataset held as tensors on one device (GPU or CPU): batches are assembled
    there (no per-sample numpy work), same content as make_batch."""

    def __init__(self, ds: SceneDataset, cfg: EncoderConfig, device: str = "cpu"):
        dev = torch.device(device)
        self.device = dev
        self.n = len(ds)
        self.coords = torch.from_numpy(ds.coords.astype(np.int32)).to(dev)
        self.feats = torch.from_numpy(features(ds.counts, cfg)).to(dev)
        self.offsets = torch.from_numpy(ds.offsets[:-1].astype(np.int64)).to(dev)
        self.n_cells = torch.from_numpy(ds.n_cells.astype(np.int64)).to(dev)
        self.motions = torch.from_numpy(ds.motions.astype(np.float32)).to(dev)
        self.occ = self._unpack(ds.occ, ds.nx, dev)
        self.moving = self._unpack(ds.moving, ds.nx, dev)

    @staticmethod
    def _unpack(packed: np.ndarray, nx: int, dev: torch.device) -> torch.Tensor:
        out = []
        for s in range(0, packed.shape[0], 4096):   # bounded host memory
            out.append(torch.from_numpy(
                np.unpackbits(packed[s:s + 4096], axis=-1, count=nx)).to(dev))
        return torch.cat(out) if out else torch.zeros((0,) + packed.shape[1:-1] + (nx,),
                                                      dtype=torch.uint8, device=dev)

    def batch(self, idx) -> tuple:
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long).to(self.device)
        lens = self.n_cells[idx]
        total = int(lens.sum())
        starts = torch.repeat_interleave(self.offsets[idx], lens, output_size=total)
        first = torch.repeat_interleave(torch.cumsum(lens, 0) - lens, lens, output_size=total)
        rows = starts + torch.arange(total, device=self.device) - first
        b = torch.repeat_interleave(torch.arange(idx.shape[0], device=self.device,
                                                 dtype=torch.int32), lens, output_size=total)
        coords = torch.cat([b[:, None], self.coords[rows]], dim=1)
        return (coords, self.feats[rows], self.motions[idx], self.occ[idx].float(),
                self.moving[idx].float())


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor,
                  region: Optional[torch.Tensor] = None) -> torch.Tensor:
    """1 - soft Jaccard index over the batch (inside `region` if given)."""
    p = torch.sigmoid(logits)
    inter = p * target
    union = p + target - inter
    if region is not None:
        inter, union = inter * region, union * region
    return 1.0 - inter.sum() / union.sum().clamp_min(1.0)


def loss_fn(model: SceneModel, batch, iou_weight: float = 0.0) -> torch.Tensor:
    """BCE of the residual decoder's logits at every step (moving cells weighted), plus a
    small reconstruction term (step 0: the residual should leave the current scan alone),
    plus iou_weight x soft-IoU losses over all cells and over the moving region (the
    metric's terms: BCE alone leaves an uncertain mover below 0.5 everywhere)."""
    coords, feats, motions, occ, mov = batch
    b = motions.shape[0]
    z = model.encode(coords, feats, b)
    cur = model.bev_occupancy(coords, b)
    loss = RECON_WEIGHT * F.binary_cross_entropy_with_logits(model.decode(z, cur), occ[:, 0])
    for k in range(motions.shape[1]):
        z = model.next(z, motions[:, k])
        w = 1.0 + MOVING_WEIGHT * torch.maximum(mov[:, 0], mov[:, k + 1])
        logits = model.decode(z, cur)
        loss = loss + F.binary_cross_entropy_with_logits(logits, occ[:, k + 1], weight=w)
        if iou_weight > 0.0:
            region = torch.maximum(mov[:, 0], mov[:, k + 1])
            loss = loss + iou_weight * (soft_iou_loss(logits, occ[:, k + 1])
                                        + soft_iou_loss(logits, occ[:, k + 1], region))
    return loss / (RECON_WEIGHT + motions.shape[1])


def fit_normalisation(ds: SceneDataset, cfg: EncoderConfig) -> EncoderConfig:
    v = np.log1p(ds.counts.astype(np.float64))
    return dataclasses.replace(cfg, count_mean=float(v.mean()), count_std=float(v.std() + 1e-6))


def _iou(i: float, u: float) -> float:
    return float(i / u) if u > 0 else float("nan")


@torch.no_grad()
def evaluate(model: SceneModel, ds: SceneDataset, batch: int = 32,
             threshold: float = 0.5,
             batcher: Optional[TensorBatcher] = None) -> Dict[str, float]:
    """Dataset-level IoU (sums of intersections / unions over all validation samples) of
    model and static baseline at each step, over all cells and over the moving region
    (cells covered by a moving robot now or at that step)."""
    model.eval()
    k_steps = ds.motions.shape[1]
    acc = {}
    for s in range(0, len(ds), batch):
        idx = np.arange(s, min(s + batch, len(ds)))
        if batcher is not None:
            coords, feats, motions, occ, mov = batcher.batch(idx)
        else:
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


def calibrate_threshold(model: SceneModel, ds: SceneDataset, batcher: TensorBatcher,
                        thresholds=(0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)) -> tuple:
    """The decision threshold maximising the mean IoU (all + moving cells, every step) on a
    calibration split (episodes neither trained on nor used for validation)."""
    scores = {}
    for t in thresholds:
        m = evaluate(model, ds, batch=128, threshold=t, batcher=batcher)
        vals = [v for k, v in m.items() if k.startswith("model/")]
        scores[t] = float(np.nanmean(vals))
    best = max(scores, key=lambda t: (round(scores[t], 4), -abs(t - 0.5)))  # ties: 0.5
    return best, scores


def metrics_table(m: Dict[str, float], steps: List[float]) -> str:
    lines = ["| horizon | cells | model IoU | static-world IoU |", "|---|---|---:|---:|"]
    for t in steps:
        for r in ("all", "moving"):
            lines.append("| %.1f s | %s | %.3f | %.3f |" % (
                t, r, m["model/%s/%.1fs" % (r, t)], m["static/%s/%.1fs" % (r, t)]))
    return "\n".join(lines)


def train(model: SceneModel, train_ds: SceneDataset, minutes: float, batch: int = 16,
          lr: float = 2e-3, seed: int = 0, max_steps: Optional[int] = None,
          log_every: int = 50, verbose: bool = True,
          batcher: Optional[TensorBatcher] = None, iou_weight: float = 0.0) -> Dict[str, object]:
    """AdamW, cosine learning-rate decay over the wall-time (or step) budget. Batches come
    from `batcher` (tensors on the model's device) or, if None, one built on the model's
    device here."""
    rng = np.random.default_rng(seed)
    if batcher is None:
        batcher = TensorBatcher(train_ds, model.config,
                                str(next(model.parameters()).device))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    t0 = time.perf_counter()
    budget = 60.0 * minutes
    deadline = t0 + budget
    losses = []
    loss_acc = []
    step = 0
    model.train()
    while time.perf_counter() < deadline and (max_steps is None or step < max_steps):
        frac = (time.perf_counter() - t0) / budget
        if max_steps is not None:
            frac = max(frac, step / float(max_steps))
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0))))
        idx = rng.integers(0, len(train_ds), size=batch)
        loss = loss_fn(model, batcher.batch(idx), iou_weight)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        loss_acc.append(loss.detach())
        step += 1
        if step % log_every == 0 or len(loss_acc) >= log_every:
            losses.extend(float(v) for v in torch.stack(loss_acc).cpu())
            loss_acc = []
            if verbose and step % log_every == 0:
                print("step %d loss %.4f lr %.2e (%.0f s)"
                      % (step, float(np.mean(losses[-log_every:])), opt.param_groups[0]["lr"],
                         time.perf_counter() - t0), flush=True)
    if loss_acc:
        losses.extend(float(v) for v in torch.stack(loss_acc).cpu())
    return {"steps": step, "seconds": round(time.perf_counter() - t0, 1), "batch": batch,
            "lr": lr, "schedule": "cosine to 5 %", "iou_weight": iou_weight,
            "loss_first": losses[0] if losses else None,
            "loss_last50": float(np.mean(losses[-50:])) if losses else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=5.0, help="training wall time")
    ap.add_argument("--data", required=True,
                    help="the dataset (.npz) of wm_sim.encoder_datagen (simulated driving)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--backend", default="dense", choices=("auto", "sparse", "dense"),
                    help="backend used for training (weights are backend independent)")
    ap.add_argument("--device", default="cpu",
                    help="torch device for training and evaluation; 'cuda' forces the dense "
                         "backend (spconv is optional and absent on the GPU image)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--iou-weight", type=float, default=0.0,
                    help="weight of the soft-IoU loss terms (0: BCE only, as v1)")
    ap.add_argument("--calibrate", action="store_true",
                    help="hold out episodes e %% 10 == 3 from training to pick the decision "
                         "threshold (stored as decision_threshold in encoder.json)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        args.backend = "dense"
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(args.seed)
    ecfg = EncoderConfig()
    t0 = time.perf_counter()
    ds = SceneDataset.load(args.data)
    data_s = time.perf_counter() - t0
    n_ep = int(ds.episode.max()) + 1
    is_val = (ds.episode % 5) == 4 if n_ep >= 5 else ds.episode == n_ep - 1
    is_cal = ((ds.episode % 10) == 3) & ~is_val if args.calibrate else np.zeros_like(is_val)
    train_ds, val_ds = ds.subset(~is_val & ~is_cal), ds.subset(is_val)
    os.makedirs(args.out, exist_ok=True)
    print("data: %d episodes, %d train / %d val samples in %.0f s"
          % (n_ep, len(train_ds), len(val_ds), data_s), flush=True)
    ecfg = fit_normalisation(train_ds, ecfg)
    model = SceneModel(ecfg, backend=args.backend).to(args.device)
    tb = TensorBatcher(train_ds, ecfg, args.device)
    info = train(model, train_ds, args.minutes, batch=args.batch, lr=args.lr, seed=args.seed,
                 batcher=tb, iou_weight=args.iou_weight)
    info["device"] = (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                      else "cpu")
    del tb
    vb = TensorBatcher(val_ds, ecfg, args.device)
    threshold, cal_scores = 0.5, {}
    if is_cal.any():
        cal_ds = ds.subset(is_cal)
        threshold, cal_scores = calibrate_threshold(model, cal_ds,
                                                    TensorBatcher(cal_ds, ecfg, args.device))
        print("calibration (%d samples): threshold %.2f, scores %s"
              % (len(cal_ds), threshold, json.dumps(cal_scores)), flush=True)
    metrics = evaluate(model, val_ds, batch=128, batcher=vb)
    steps = [(k + 1) * ecfg.step_dt for k in range(ecfg.horizon)]
    table = metrics_table(metrics, steps)
    print(table)
    metrics_tuned = {}
    if threshold != 0.5:
        metrics_tuned = evaluate(model, val_ds, batch=128, threshold=threshold, batcher=vb)
        print("threshold %.2f:" % threshold)
        print(metrics_table(metrics_tuned, steps))
    # The v1 report's validation episodes (4, 9, .., 24: the same simulator episodes when
    # the seed is the same), for a like-for-like comparison.
    v1_mask = val_ds.episode < 25
    metrics_v1_split = {}
    if v1_mask.any() and not v1_mask.all():
        sub = val_ds.subset(v1_mask)
        sb = TensorBatcher(sub, ecfg, args.device)
        metrics_v1_split = evaluate(model, sub, batch=128, batcher=sb)
        print("v1 validation episodes (%d samples):" % len(sub))
        print(metrics_table(metrics_v1_split, steps))
        if threshold != 0.5:
            metrics_v1_split_tuned = evaluate(model, sub, batch=128, threshold=threshold,
                                              batcher=sb)
            metrics_v1_split["threshold_%.2f" % threshold] = metrics_v1_split_tuned
            print(metrics_table(metrics_v1_split_tuned, steps))
    model = model.cpu()
    extra = {"training": info, "metrics": metrics, "metrics_v1_val_episodes": metrics_v1_split,
             "decision_threshold": threshold, "metrics_at_decision_threshold": metrics_tuned,
             "calibration_scores": {"%.2f" % k: v for k, v in cal_scores.items()},
             "data": dict(ds.meta, episodes=n_ep, file=os.path.basename(args.data),
                          train_samples=len(train_ds), val_samples=len(val_ds),
                          calibration_episodes=sorted(set(int(e) for e in ds.episode[is_cal])),
                          val_episodes=sorted(set(int(e) for e in val_ds.episode)),
                          load_s=round(data_s, 1)),
             "trained_with_backend": model.backend}
    meta = save_artifact(model, args.out, extra)
    with open(os.path.join(args.out, "metrics.md"), "w") as f:
        f.write(table + "\n")
        if metrics_tuned:
            f.write("\nthreshold %.2f (calibrated):\n" % threshold
                    + metrics_table(metrics_tuned, steps) + "\n")
        if metrics_v1_split:
            f.write("\nv1 validation episodes only:\n" + metrics_table(metrics_v1_split, steps)
                    + "\n")
    print(json.dumps({"sha256": meta["sha256"], "training": info}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
