from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wm_perception.voxel_grid import (VoxelGrid, VoxelGridSpec, crop, crop_mask, occupancy_2d,
                                      voxelize)


def test_spec_dims_survive_floating_point_division():
    spec = VoxelGridSpec(resolution=0.1, size_x=16.0, size_y=8.0, size_z=1.75)
    assert spec.dims.tolist() == [160, 80, 18]


def test_voxelize_counts_and_linear_indices():
    pts = np.array([
        [0.05, 0.05, 0.05],   # (0, 0, 0)
        [0.09, 0.01, 0.02],   # (0, 0, 0) again
        [0.15, 0.25, 0.35],   # (1, 2, 3)
        [-0.01, 0.0, 0.0],    # outside (x < origin)
        [0.5, 0.5, 0.5],      # outside (ix == nx)
        [np.nan, 0.1, 0.1],   # ignored
    ])
    g = voxelize(pts, (0.0, 0.0, 0.0), 0.1, (5, 4, 6))
    nx, ny = 5, 4
    assert g.indices.dtype == np.uint32 and g.values.dtype == np.float32
    assert g.indices.tolist() == [0, 1 + nx * (2 + ny * 3)]
    assert g.values.tolist() == [2.0, 1.0]
    assert g.ijk().tolist() == [[0, 0, 0], [1, 2, 3]]
    np.testing.assert_allclose(g.centers(), [[0.05, 0.05, 0.05], [0.15, 0.25, 0.35]])


def test_voxelize_with_offset_origin_and_empty_input():
    g = voxelize(np.array([[10.05, -3.95, 0.51]]), (10.0, -4.0, 0.5), 0.02, (10, 10, 10))
    assert g.ijk().tolist() == [[2, 2, 0]]
    empty = voxelize(np.zeros((0, 3)), (0, 0, 0), 0.1, (3, 3, 3))
    assert empty.n_voxels == 0 and occupancy_2d(empty).shape == (3, 3)


def test_voxelize_rejects_bad_grids():
    with pytest.raises(ValueError):
        voxelize(np.zeros((1, 3)), (0, 0, 0), 0.0, (2, 2, 2))
    with pytest.raises(ValueError):
        voxelize(np.zeros((1, 3)), (0, 0, 0), 0.1, (2, 0, 2))
    with pytest.raises(ValueError):
        voxelize(np.zeros((1, 3)), (0, 0, 0), 0.1, (2 ** 11, 2 ** 11, 2 ** 11))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), n=st.integers(0, 400),
       dims=st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(1, 8)))
def test_dense_and_sorted_paths_agree_with_a_reference(seed, n, dims):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-0.5, 3.5, (n, 3))
    g = voxelize(pts, (0.0, 0.0, 0.0), 0.1, dims)
    ijk = np.floor(pts / 0.1).astype(np.int64)
    inside = ((ijk >= 0) & (ijk < np.array(dims))).all(axis=1)
    ijk = ijk[inside]
    lin = ijk[:, 0] + dims[0] * (ijk[:, 1] + dims[1] * ijk[:, 2])
    idx, cnt = np.unique(lin, return_counts=True)
    assert g.indices.tolist() == idx.tolist()
    assert g.values.tolist() == cnt.tolist()
    assert g.values.sum() == inside.sum()


def test_occupancy_2d_projects_columns_with_threshold():
    g = VoxelGrid(np.zeros(3), 0.1, np.array([4, 3, 2]),
                  np.array([1 + 4 * (2 + 3 * 0), 3 + 4 * (0 + 3 * 1), 3 + 4 * (0 + 3 * 0)],
                           np.uint32),
                  np.array([1.0, 2.0, 1.0], np.float32))
    occ = occupancy_2d(g)
    assert occ.shape == (3, 4)
    assert sorted(zip(*np.nonzero(occ))) == [(0, 3), (2, 1)]
    occ2 = occupancy_2d(g, min_points=2)
    assert sorted(zip(*np.nonzero(occ2))) == [(0, 3)]


def test_crop_range_ring_and_height_band():
    pts = np.array([
        [1.0, 0.0, 0.5],    # kept
        [0.2, 0.1, 0.5],    # inside min_range: the robot itself
        [0.0, 0.0, 3.0],    # above z_max
        [5.0, 0.0, 0.0],    # floor
        [20.0, 0.0, 0.5],   # beyond max_range
        [3.0, 4.0, 1.7],    # xy range exactly 5: kept even though 3D range is larger
    ])
    out = crop(pts, max_range=5.0, min_range=0.35, z_min=0.05, z_max=1.8)
    np.testing.assert_array_equal(out, pts[[0, 5]])
    # Range measured from the sensor, not the base origin.
    m = crop_mask(pts, 5.0, 0.35, 0.05, 1.8, origin_xy=(0.8, 0.0))
    assert m.tolist() == [False, True, False, False, False, True]
