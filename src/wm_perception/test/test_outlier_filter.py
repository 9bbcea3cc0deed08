from __future__ import annotations

import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_perception.pipeline import Perception, PerceptionConfig, statistical_outlier_mask


def _noisy_cloud(seed=0):
    """Two walls of 2000 points with 1 cm noise plus 60 scattered outliers."""
    rng = np.random.default_rng(seed)
    n = 2000
    a = np.stack([np.full(n, 3.0), rng.uniform(-2, 2, n), rng.uniform(0.1, 1.5, n)], axis=1)
    b = np.stack([rng.uniform(-1, 3, n), np.full(n, 2.0), rng.uniform(0.1, 1.5, n)], axis=1)
    walls = np.concatenate([a, b]) + rng.normal(0, 0.01, (2 * n, 3))
    outliers = rng.uniform([-4, -4, 0.1], [4, 4, 1.5], (60, 3))
    return np.concatenate([walls, outliers]), 2 * n


def test_scipy_backend_drops_the_scattered_points():
    pts, n_wall = _noisy_cloud()
    keep = statistical_outlier_mask(pts, 16, 2.0, backend="scipy")
    assert keep[:n_wall].mean() > 0.97
    assert keep[n_wall:].mean() < 0.2


def test_scipy_and_open3d_backends_agree():
    pytest.importorskip("open3d")
    pts, _ = _noisy_cloud(1)
    for k, ratio in ((16, 2.0), (8, 1.0)):
        a = statistical_outlier_mask(pts, k, ratio, backend="scipy")
        b = statistical_outlier_mask(pts, k, ratio, backend="open3d")
        # Identical statistic; only a point within rounding of the threshold could differ.
        assert (a != b).sum() <= 1, (k, ratio, (a != b).sum())


def test_edge_cases():
    assert statistical_outlier_mask(np.zeros((0, 3)), backend="scipy").shape == (0,)
    # Piles of duplicates have mean distance 0 and are dropped, as open3d does.
    dup = np.zeros((20, 3))
    assert not statistical_outlier_mask(dup, 4, 2.0, backend="scipy").any()
    few = np.random.default_rng(0).normal(size=(5, 3))
    assert statistical_outlier_mask(few, 16, 2.0, backend="scipy").shape == (5,)


def test_pipeline_outlier_filter_switch():
    pts, n_wall = _noisy_cloud(2)
    base = Pose2D(0.0, 0.0, 0.0)
    plain = Perception(PerceptionConfig()).process(pts, (0, 0, 0, 0), base)
    cfg = PerceptionConfig(outlier_filter=True, outlier_backend="scipy")
    filt = Perception(cfg).process(pts, (0, 0, 0, 0), base)
    assert plain.n_outliers == 0
    assert 40 <= filt.n_outliers <= 150
    assert filt.voxels.n_voxels < plain.voxels.n_voxels
    with pytest.raises(ValueError):
        PerceptionConfig(outlier_neighbors=1).validate()
