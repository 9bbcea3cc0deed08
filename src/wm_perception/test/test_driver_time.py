"""Per-point time in each driver's own units (issue 19, item 3): the perception node's path
(time_source -> decode_points -> relative_time) turns Ouster's uint32 ns since the scan start,
Velodyne's float32 s, Hesai's absolute float64 s and Livox's absolute float64 ns into the same
seconds relative to the cloud's stamp, and deskew then moves the points the same way."""
from __future__ import annotations

import numpy as np
import pytest

from wm_common.point_layouts import HESAI, HESAI_GENERAL, LIVOX, OUSTER, VELODYNE, pack_points
from wm_perception.deskew import deskew
from wm_perception.pointcloud import decode_points, relative_time, time_source

STAMP = 1_700_000_000.25          # the cloud's header.stamp [s], as a real driver stamps it
N = 64
T_REL = np.linspace(-0.05, 0.0499, N)    # the sweep around the stamp [s]
# raw values of each driver's time field for T_REL (Ouster counts from the scan start,
# which is the stamp: only the non-negative half)
RAW = {
    "ouster": lambda t: np.round((t - t.min()) * 1e9),
    "velodyne": lambda t: t,
    "hesai": lambda t: STAMP + t,
    "hesai_general": lambda t: STAMP + t,
    "livox": lambda t: (STAMP + t) * 1e9,
}
LAYOUTS = {"ouster": OUSTER, "velodyne": VELODYNE, "hesai": HESAI,
           "hesai_general": HESAI_GENERAL, "livox": LIVOX}


def driver_cloud(name):
    lay = LAYOUTS[name]
    xyz = np.column_stack([np.full(N, 3.0), np.linspace(-1, 1, N), np.zeros(N)])
    cols = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2], lay.time_field: RAW[name](T_REL)}
    return lay, pack_points(lay, cols)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_driver_time_becomes_seconds_relative_to_the_stamp(name):
    lay, data = driver_cloud(name)
    # the node's default time_field is Ouster's 't': other drivers' own field is found
    field, scale = time_source(lay.fields, lay.point_step, preferred="t")
    assert field == lay.time_field and scale == lay.time_scale
    cloud = decode_points(lay.fields, data, N, 1, lay.point_step, lay.point_step * N, False,
                          time_field=field, time_scale=scale)
    t_rel = relative_time(cloud.time, STAMP)
    expected = T_REL - T_REL.min() if name == "ouster" else T_REL
    # float32 (Velodyne) and 1e9-scaled float64 ns (Livox) keep about a microsecond
    np.testing.assert_allclose(t_rel, expected, atol=2e-6)
    assert np.ptp(t_rel) < 0.2    # a 10 Hz sweep, not 2.2e7 s of scattered points


def test_deskew_agrees_across_drivers():
    """The same sweep in two drivers' units deskews to the same points."""
    outs = []
    for name in ("velodyne", "livox", "hesai"):
        lay, data = driver_cloud(name)
        field, scale = time_source(lay.fields, lay.point_step)
        cloud = decode_points(lay.fields, data, N, 1, lay.point_step, lay.point_step * N,
                              False, time_field=field, time_scale=scale)
        # 1 m/s forward, turning at 0.5 rad/s, sensor at the base's origin
        outs.append(deskew(cloud.xyz, relative_time(cloud.time, STAMP), 1.0, 0.5,
                           (0.0, 0.0, 0.0, 0.0)))
        raw = cloud.xyz
    for other in outs[1:]:
        np.testing.assert_allclose(other, outs[0], atol=1e-5)
    # and deskew did move them (5 cm of travel and 0.025 rad of turn at 3 m range at the
    # sweep's ends: about 10 cm), so the agreement means something
    moved = np.hypot(*(outs[0][:, :2] - raw[:, :2]).T)
    assert 0.05 < moved.max() < 0.15


def test_a_cloud_without_time_has_no_time_source():
    from wm_common.point_layouts import XYZ
    assert time_source(XYZ.fields, XYZ.point_step, preferred="t") == (None, None)
