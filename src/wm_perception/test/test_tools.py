"""Offline tools: PCD/PLY and MCAP readers, the PointCloud2 packing for replay, inspect_cloud."""
from __future__ import annotations

import numpy as np
import pytest

from wm_common.point_layouts import HESAI, OUSTER, VELODYNE, XYZ, pack_points
from wm_perception.pointcloud import decode_points, relative_time
from wm_perception.tools import replay


def _points(n=500, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform([-6, -6, -0.3], [6, 6, 1.5], (n, 3)).astype(np.float32)
    return xyz


@pytest.mark.parametrize("suffix", [".pcd", ".ply"])
def test_pcd_and_ply_round_trip(tmp_path, suffix):
    pytest.importorskip("open3d")
    xyz = _points()
    path = tmp_path / ("cloud" + suffix)
    replay.write_cloud_file(path, xyz)
    rec = replay.read_cloud_file(path)
    np.testing.assert_allclose(rec.xyz, xyz, atol=1e-6)
    assert rec.t_rel is None and rec.stamp_ns == 0
    assert [r.xyz.shape for r in replay.iter_clouds(path)] == [xyz.shape]
    with pytest.raises(FileNotFoundError):
        replay.read_cloud_file(tmp_path / ("missing" + suffix))


def _write_bag(path, clouds, topic="/points"):
    from rosbags.rosbag2 import StoragePlugin, Writer
    ts = replay._typestore()
    PC2 = ts.types["sensor_msgs/msg/PointCloud2"]
    PF = ts.types["sensor_msgs/msg/PointField"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(topic, replay.POINTCLOUD2, typestore=ts)
        other = w.add_connection("/other", "std_msgs/msg/Header", typestore=ts)
        for layout, cols, stamp_ns in clouds:
            data = pack_points(layout, cols)
            n = len(cols["x"])
            msg = PC2(header=Header(stamp=Time(sec=stamp_ns // 10 ** 9,
                                               nanosec=stamp_ns % 10 ** 9),
                                    frame_id="lidar_link"),
                      height=1, width=n,
                      fields=[PF(name=f.name, offset=f.offset, datatype=f.datatype,
                                 count=f.count) for f in layout.fields],
                      is_bigendian=False, point_step=layout.point_step,
                      row_step=layout.point_step * n,
                      data=np.frombuffer(data, dtype=np.uint8), is_dense=True)
            w.write(conn, stamp_ns, ts.serialize_cdr(msg, replay.POINTCLOUD2))
            w.write(other, stamp_ns + 1, ts.serialize_cdr(msg.header, "std_msgs/msg/Header"))


def test_mcap_bag_round_trip_with_driver_times(tmp_path):
    pytest.importorskip("rosbags")
    xyz = _points(300)
    stamp = 1_700_000_000_123_456_789
    t = np.linspace(0.0, 0.099, 300)
    cols = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    clouds = [
        (OUSTER, dict(cols, t=np.round(t * 1e9).astype(np.int64)), stamp),
        (VELODYNE, dict(cols, time=t - 0.1), stamp + 100_000_000),
        (HESAI, dict(cols, timestamp=(stamp + 200_000_000) * 1e-9 + t), stamp + 200_000_000),
        (XYZ, cols, stamp + 300_000_000),
    ]
    bag = tmp_path / "bag"
    _write_bag(bag, clouds)
    assert replay.bag_topics(bag) == {"/points": 4}
    recs = list(replay.iter_clouds(bag))
    assert [r.layout for r in recs] == ["ouster", "velodyne", "hesai", "xyz"]
    for r, (_, _, st) in zip(recs, clouds):
        np.testing.assert_array_equal(r.xyz, xyz)
        assert r.stamp_ns == st and r.frame_id == "lidar_link" and r.topic == "/points"
    np.testing.assert_allclose(recs[0].t_rel, t, atol=1e-9)
    np.testing.assert_allclose(recs[1].t_rel, t - 0.1, atol=1e-6)
    np.testing.assert_allclose(recs[2].t_rel, t, atol=1e-6)   # absolute -> relative
    assert recs[3].t_rel is None
    assert replay.read_one(bag, 2).layout == "hesai"
    assert len(list(replay.read_bag(bag, "/points", max_messages=2))) == 2
    with pytest.raises(ValueError):
        next(replay.read_bag(bag, "/nope"))
    with pytest.raises(IndexError):
        replay.read_one(bag, 9)


@pytest.mark.parametrize("layout", [OUSTER, VELODYNE, HESAI, XYZ])
def test_pack_for_layout_decodes_back(layout):
    xyz = _points(200)
    t_rel = np.linspace(-0.05, 0.05, 200)
    stamp = 1_700_000_000_000_000_000
    data, st, fields = replay.pack_for_layout(xyz, t_rel, layout, stamp)
    cloud = decode_points(fields, data, 200, 1, layout.point_step, 200 * layout.point_step,
                          False, time_field=layout.time_field, time_scale=layout.time_scale)
    np.testing.assert_array_equal(cloud.xyz, xyz)
    if layout.time_field is None:
        return
    t = relative_time(cloud.time, st * 1e-9) + (st - stamp) * 1e-9
    np.testing.assert_allclose(t, t_rel, atol=1e-6)
    if layout is OUSTER:
        assert st == stamp - 50_000_000     # uint32 ns: the stamp moves to the first point


def test_replay_node_message():
    pytest.importorskip("rclpy")
    pytest.importorskip("sensor_msgs.msg")
    from wm_perception.pointcloud import decode_message
    from wm_perception.tools.replay_node import make_message
    xyz = _points(100)
    rec = replay.RecordedCloud(xyz, np.linspace(0, 0.09, 100), 0, "")
    msg = make_message(rec, OUSTER, 5_000_000_123, "lidar_link")
    assert msg.header.stamp.sec == 5 and msg.header.stamp.nanosec == 123
    assert msg.header.frame_id == "lidar_link" and msg.width == 100
    out = decode_message(msg, time_field="t")
    np.testing.assert_array_equal(out.xyz, xyz)
    np.testing.assert_allclose(out.time, np.linspace(0, 0.09, 100), atol=1e-9)


def test_inspect_cloud_writes_ply_and_png(tmp_path):
    o3d = pytest.importorskip("open3d")
    pytest.importorskip("matplotlib")
    from wm_perception.tools import inspect_cloud
    # A wall 3 m ahead of a sensor 0.4 m up.
    y, z = np.meshgrid(np.linspace(-2, 2, 80), np.linspace(-0.3, 1.0, 20))
    xyz = np.stack([np.full(y.size, 3.0), y.ravel(), z.ravel()], axis=1)
    src = tmp_path / "wall.pcd"
    replay.write_cloud_file(src, xyz)
    rc = inspect_cloud.main([str(src), "--out-dir", str(tmp_path / "out")])
    assert rc == 0
    ply = tmp_path / "out" / "wall_0_voxels.ply"
    png = tmp_path / "out" / "wall_0_birdseye.png"
    assert ply.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = inspect_cloud.inspect(str(src), str(tmp_path / "out2"))
    vg = o3d.io.read_voxel_grid(res["ply"])
    assert len(vg.get_voxels()) == res["output"].voxels.n_voxels > 0
