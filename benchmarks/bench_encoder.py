"""Cost of the learned scene encoder on CPU: encode + predict (2 steps, 0.5 s and 1 s) of one
robot's grid from a typical scan (warehouse 'small', another robot in view), sparse (spconv)
vs dense (torch Conv3d) backend with the same weights; PEERS pairs each sparse case with its
dense case so the runner prints the ratio.

    python benchmarks/bench_encoder.py [--quick]
"""
from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional

import numpy as np

try:
    import wm_perception  # noqa: F401
except ImportError:  # running from a source checkout without the packages installed
    _SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
    sys.path[:0] = [os.path.join(_SRC, "wm_common"), os.path.join(_SRC, "wm_perception"),
                    os.path.join(_SRC, "wm_sim")]

import torch

from wm_common.geometry import Pose2D
from wm_perception.encoder import (HAVE_SPCONV, EncoderConfig, SceneModel, batch_coords,
                                   cells_from_voxels, features)
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_sim.lidar import Lidar, LidarSpec
from wm_sim.world import robot_box, warehouse

from benchlib import main as bench_main, row, time_calls

CASES = ("encode", "predict_k2")
PEERS = {"encoder/sparse/%s" % c: "encoder/dense/%s" % c for c in CASES}


def typical_input(cfg: EncoderConfig):
    """Encoder input of one 16 x 512 scan at (8, 5.5) in warehouse 'small'."""
    world = warehouse("small")
    pose = Pose2D(8.0, 5.5, 0.3)
    spec = LidarSpec(columns=512)
    scan = Lidar(spec, seed=0).scan(world, pose, [robot_box(Pose2D(10.0, 5.5, 1.0))])
    xyz = np.stack([scan["x"].ravel(), scan["y"].ravel(), scan["z"].ravel()], axis=1)
    xyz = xyz[np.isfinite(xyz).all(axis=1)]
    vox = Perception(PerceptionConfig()).process(xyz, spec.mount, pose).voxels
    coords, counts = cells_from_voxels(vox, (pose.x, pose.y, pose.yaw), cfg)
    return (torch.from_numpy(batch_coords([coords])),
            torch.from_numpy(features(counts, cfg)), coords.shape[0])


def run(repeats: Optional[int] = None) -> List[Dict[str, object]]:
    torch.manual_seed(0)
    cfg = EncoderConfig()
    coords, feats, _ = typical_input(cfg)
    motions = torch.zeros(1, 2, 5)
    motions[:, :, 0] = 0.4
    reps = repeats or 50
    dense = SceneModel(cfg, backend="dense").eval()
    models = [("dense", dense)]
    if HAVE_SPCONV:
        sparse = SceneModel(cfg, backend="sparse").eval()
        sparse.load_state_dict(dense.state_dict())
        models.insert(0, ("sparse", sparse))
    rows = []
    with torch.no_grad():
        for name, m in models:
            rows.append(row("encoder/%s/encode" % name,
                            time_calls(lambda m=m: m.encode(coords, feats, 1), reps)))
            rows.append(row("encoder/%s/predict_k2" % name,
                            time_calls(lambda m=m: m.predict(coords, feats, motions), reps)))
    return rows


def main(argv=None) -> int:
    return bench_main(run, __doc__, argv, peers=PEERS, quick_repeats=5)


if __name__ == "__main__":
    raise SystemExit(main())
