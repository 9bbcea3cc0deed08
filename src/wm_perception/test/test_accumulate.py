from __future__ import annotations

import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_perception.accumulate import VoxelAccumulator
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_perception.voxel_grid import voxelize

RES = 0.1
DIMS = (40, 40, 10)


def _grid(points, origin):
    return voxelize(np.asarray(points, dtype=np.float64), origin, RES, DIMS)


def _as_dict(grid):
    return {tuple(np.round(c, 6)): v for c, v in zip(grid.centers(), grid.values)}


def test_counts_decay_and_drop_after_max_scans():
    acc = VoxelAccumulator(decay=0.5, max_scans=3, min_count=0.1)
    o = (0.0, 0.0, 0.0)
    a = (1.05, 1.05, 0.05)
    b = (2.05, 2.05, 0.05)
    g = acc.add(_grid([a, a], o))
    assert _as_dict(g) == {(1.05, 1.05, 0.05): 2.0}
    g = acc.add(_grid([b], o))
    assert _as_dict(g) == {(1.05, 1.05, 0.05): 1.0, (2.05, 2.05, 0.05): 1.0}
    g = acc.add(_grid([b, a], o))   # a hit again: 0.5 + 1
    assert _as_dict(g) == {(1.05, 1.05, 0.05): 1.5, (2.05, 2.05, 0.05): 1.5}
    g = acc.add(_grid([], o))
    g = acc.add(_grid([], o))
    assert set(_as_dict(g)) == {(1.05, 1.05, 0.05), (2.05, 2.05, 0.05)}
    g = acc.add(_grid([], o))       # 3 scans without a hit: gone
    assert g.n_voxels == 0 and acc.n_voxels == 0


def test_min_count_threshold_drops_faint_voxels():
    acc = VoxelAccumulator(decay=0.2, max_scans=10, min_count=0.1)
    acc.add(_grid([(1.05, 1.05, 0.05)], (0, 0, 0)))
    assert acc.add(_grid([], (0, 0, 0))).values.tolist() == [pytest.approx(0.2)]
    assert acc.add(_grid([], (0, 0, 0))).n_voxels == 0   # 0.04 < 0.1


def test_voxels_stay_put_in_odom_when_the_window_moves():
    acc = VoxelAccumulator(decay=1.0, max_scans=5)
    p = (1.55, 2.55, 0.35)
    acc.add(_grid([p], (0.0, 0.0, 0.0)))
    moved = (-1.2, 0.7, 0.0)               # on the lattice, 12 and 7 cells away
    g = acc.add(_grid([(2.55, 2.55, 0.35)], moved))
    assert _as_dict(g) == {(1.55, 2.55, 0.35): 1.0, (2.55, 2.55, 0.35): 1.0}
    # Once the first voxel is outside the window it is not reported but still kept.
    far = (1.6, 0.0, 0.0)
    g = acc.add(_grid([], far))
    assert _as_dict(g) == {(2.55, 2.55, 0.35): 1.0}
    g = acc.add(_grid([], (0.0, 0.0, 0.0)))
    assert set(_as_dict(g)) == {(1.55, 2.55, 0.35), (2.55, 2.55, 0.35)}
    assert np.all(np.diff(g.indices.astype(np.int64)) > 0)


def test_negative_odom_coordinates_and_a_changed_lattice_resets():
    acc = VoxelAccumulator(decay=1.0, max_scans=5)
    o = (-1000.0, -2000.0, 0.05)
    pts = [(-999.95, -1999.95, 0.1), (-996.05, -1996.05, 0.9)]
    g = acc.add(_grid(pts, o))
    assert g.n_voxels == 2
    g = acc.add(_grid(pts, o))
    assert g.values.tolist() == [2.0, 2.0]
    g = acc.add(voxelize(np.asarray(pts), o, 0.2, DIMS))  # other resolution: start over
    assert g.values.tolist() == [1.0, 1.0]


def test_pipeline_accumulation_fills_sparse_rings():
    rng = np.random.default_rng(0)
    cfg = PerceptionConfig(accumulate_scans=3, accumulate_decay=0.8, min_points_per_voxel=2)
    per = Perception(cfg)
    # One point per voxel per scan: never occupied alone with min_points_per_voxel=2.
    wall = np.stack([np.full(12, 3.05), np.arange(12) * 0.2 - 1.05, np.full(12, 0.4)],
                    axis=1)
    outs = []
    for k in range(3):   # the robot creeping forward by 10 cm per scan
        pts = wall + rng.normal(0, 0.005, wall.shape)
        pts[:, 0] -= 0.1 * k
        outs.append(per.process(pts, (0, 0, 0, 0), Pose2D(0.1 * k, 0.0, 0.0)))
    assert (outs[0].voxels.values >= 2).sum() == 0
    assert outs[0].distance_field.data.min() == pytest.approx(cfg.max_distance)
    assert (outs[-1].voxels.values >= 2).sum() == 12      # 1 + 0.8 + 0.64
    assert outs[-1].distance_field.data.min() < 0
    assert outs[-1].n_points_used == 12
    per.reset()
    assert per.accumulator.n_voxels == 0


def test_bad_arguments():
    with pytest.raises(ValueError):
        VoxelAccumulator(decay=0.0)
    with pytest.raises(ValueError):
        VoxelAccumulator(max_scans=0)
    with pytest.raises(ValueError):
        PerceptionConfig(accumulate_scans=0).validate()
