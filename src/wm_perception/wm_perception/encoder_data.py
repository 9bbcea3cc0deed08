"""The scene encoder's self-supervised training data: SceneDataset, samples of concatenated
episodes with random access, saved and loaded as one .npz.

A sample (generated in-process from the simulator by wm_sim.encoder_datagen, a tool beside the
stack):

  cells, counts     encoder input: the pipeline voxels re-binned robot-centred
                    (encoder.cells_from_voxels), base frame at time t
  motions (K, 5)    ego motion per step k: (dx, dy, dyaw) from pose(t+(k-1)dt) to
                    pose(t+k dt) in the frame of the former, and mean (v, w) over the step
  occ (K+1, ny, nx) observed BEV occupancy of the scans at t + k dt, k = 0..K, expressed
                    in the CURRENT base frame at t (k = 0: the current scan), bit-packed
  moving (K+1, ny, nx)  footprints (+0.25 m) of the other robots that move during
                    [t, t + K dt], at t + k dt, in the current base frame (for the
                    "moving cells" metric and the loss weighting; ground truth), bit-packed

Train/val split by episode. Plain numpy; Python 3.8 syntax.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Optional, Sequence

import numpy as np


class SceneDataset:
    """Concatenated episodes with random access to samples."""

    def __init__(self, parts: Sequence[Dict[str, np.ndarray]], nx: int,
                 meta: Optional[Dict[str, Any]] = None):
        self.nx = nx
        self.meta = dict(meta or {})   # how it was generated (engine, seed, config), JSON
        self.coords = np.concatenate([p["coords"] for p in parts])
        self.counts = np.concatenate([p["counts"] for p in parts])
        self.n_cells = np.concatenate([p["n_cells"] for p in parts])
        self.offsets = np.concatenate([[0], np.cumsum(self.n_cells)])
        self.motions = np.concatenate([p["motions"] for p in parts])
        self.occ = np.concatenate([p["occ"] for p in parts])
        self.moving = np.concatenate([p["moving"] for p in parts])
        self.episode = np.concatenate([p["episode"] for p in parts])

    def __len__(self) -> int:
        return int(self.n_cells.shape[0])

    def subset(self, mask: np.ndarray) -> "SceneDataset":
        idx = np.flatnonzero(mask)
        parts = {"coords": [], "counts": []}
        for i in idx:
            a, b = self.offsets[i], self.offsets[i + 1]
            parts["coords"].append(self.coords[a:b])
            parts["counts"].append(self.counts[a:b])
        return SceneDataset([{
            "coords": (np.concatenate(parts["coords"]) if idx.size
                       else np.zeros((0, 3), np.int16)),
            "counts": (np.concatenate(parts["counts"]) if idx.size
                       else np.zeros(0, np.float32)),
            "n_cells": self.n_cells[idx], "motions": self.motions[idx],
            "occ": self.occ[idx], "moving": self.moving[idx], "episode": self.episode[idx]}],
            self.nx, self.meta)

    def cells(self, i: int):
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.coords[a:b].astype(np.int32), self.counts[a:b]

    def occupancy(self, idx: np.ndarray) -> np.ndarray:
        """(B, K+1, ny, nx) bool."""
        return np.unpackbits(self.occ[idx], axis=-1, count=self.nx).astype(bool)

    def moving_mask(self, idx: np.ndarray) -> np.ndarray:
        return np.unpackbits(self.moving[idx], axis=-1, count=self.nx).astype(bool)

    def save(self, path: str) -> None:
        np.savez_compressed(path, coords=self.coords, counts=self.counts, n_cells=self.n_cells,
                            motions=self.motions, occ=self.occ, moving=self.moving,
                            episode=self.episode, nx=np.asarray([self.nx]),
                            meta=np.asarray(json.dumps(self.meta, sort_keys=True)))

    @staticmethod
    def load(path: str) -> "SceneDataset":
        z = np.load(path)
        d = {k: z[k] for k in ("coords", "counts", "n_cells", "motions", "occ", "moving",
                               "episode")}
        meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
        return SceneDataset([d], int(z["nx"][0]), meta)
