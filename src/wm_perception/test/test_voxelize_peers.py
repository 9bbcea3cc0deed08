"""Our voxelize against open3d's and spconv's CPU voxelizers: same occupied-voxel set on the
same points, bounds and resolution (see benchmarks/bench_voxelize.py for the conventions)."""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

from wm_common.geometry import Pose2D
from wm_perception.pipeline import Perception, PerceptionConfig
from wm_perception.voxel_grid import voxelize

_BENCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                      "benchmarks", "bench_voxelize.py")


@pytest.fixture(scope="module")
def bench():
    if not os.path.exists(_BENCH):
        pytest.skip("benchmarks/ not in this checkout")
    spec = importlib.util.spec_from_file_location("bench_voxelize", _BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_voxelize", mod)
    spec.loader.exec_module(mod)
    return mod


def _peer(bench, name, origin, res, dims):
    pytest.importorskip({"open3d": "open3d", "spconv": "spconv.utils"}[name])
    cls = {"open3d": bench.Open3dVoxelizer, "spconv": bench.SpconvVoxelizer}[name]
    return cls(origin, res, dims)


def _clouds():
    rng = np.random.default_rng(7)
    # Odom-like coordinates far from 0, spilling over every face of the box.
    box = rng.uniform([-3.3, -2.2, -0.3], [3.4, 2.3, 1.9], (20000, 3)) + [120.0, -75.0, 0.0]
    # Points exactly on voxel faces (lattice multiples), incl. the box's upper faces.
    grid = np.stack(np.meshgrid(np.arange(-2, 3) * 0.1 + 120.0, np.arange(-2, 3) * 0.1 - 75.0,
                                np.arange(0, 17) * 0.1), axis=-1).reshape(-1, 3)
    return np.concatenate([box, grid])


@pytest.mark.parametrize("peer_name", ["open3d", "spconv"])
def test_same_voxel_set_as_peer_on_random_box(bench, peer_name):
    pts = _clouds()
    res = 0.1
    origin = np.array([117.0, -77.0, 0.0])
    dims = np.array([60, 40, 16])
    peer = _peer(bench, peer_name, origin, res, dims)
    ours = voxelize(pts, origin, res, dims)
    assert ours.n_voxels > 1000
    bench.check_same_voxels(ours.ijk(), peer.ijk(peer(pts)), pts, origin, res, peer_name)


@pytest.mark.parametrize("peer_name", ["open3d", "spconv"])
def test_same_voxel_set_as_peer_on_a_scan(bench, peer_name):
    from wm_common.point_layouts import VELODYNE
    from wm_perception.pointcloud import decode_points
    data = bench.scan(VELODYNE, 16, 600, 15.0)
    xyz = decode_points(VELODYNE.fields, data, 600, 16, VELODYNE.point_step,
                        600 * VELODYNE.point_step, False).xyz
    per = Perception(PerceptionConfig())
    base = Pose2D(12.34, -5.67, 0.8)
    pts = per.crop_to_odom(xyz, bench.SENSOR_IN_BASE, base)
    origin = per.window_origin(base)
    peer = _peer(bench, peer_name, origin, per.config.resolution, per.dims)
    ours = voxelize(pts, origin, per.config.resolution, per.dims)
    assert ours.n_voxels > 500
    bench.check_same_voxels(ours.ijk(), peer.ijk(peer(pts)), pts, origin,
                            per.config.resolution, peer_name)


def test_check_catches_a_real_difference(bench):
    pts = _clouds()
    origin, res, dims = np.array([117.0, -77.0, 0.0]), 0.1, np.array([60, 40, 16])
    ijk = voxelize(pts, origin, res, dims).ijk()
    with pytest.raises(AssertionError):
        bench.check_same_voxels(ijk, ijk[1:], pts + 0.05, origin, res, "shifted")


def test_fortran_and_c_order_input_agree_and_grid_dims_are_configurable():
    pts = _clouds()
    origin, res, dims = np.array([117.0, -77.0, 0.0]), 0.1, np.array([60, 40, 16])
    a = voxelize(np.ascontiguousarray(pts), origin, res, dims)
    b = voxelize(np.asfortranarray(pts), origin, res, dims)
    assert a.indices.tolist() == b.indices.tolist() and a.values.tolist() == b.values.tolist()
    assert Perception(PerceptionConfig()).dims.tolist() == [160, 160, 18]
    cube = Perception(PerceptionConfig(size_xy=6.4, size_z=6.4, z_min=-1.0, z_max=5.4))
    assert cube.dims.tolist() == [64, 64, 64]
