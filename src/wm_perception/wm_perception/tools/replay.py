"""Read recorded point clouds without ROS: PCD/PLY files (open3d) and sensor_msgs/PointCloud2
messages from rosbag2 bags (MCAP or SQLite, via the `rosbags` package), plus the conversion
back to PointCloud2 parts in a chosen driver layout for replay_node.

    from wm_perception.tools.replay import iter_clouds
    for rec in iter_clouds("run_0001/", topic="/points"):
        out = perception.process(rec.xyz, extrinsic, pose, t_rel=rec.t_rel)

Per-point time is returned as t_rel, seconds relative to the cloud's stamp, whatever the
driver's convention (see wm_common.point_layouts): Ouster/Velodyne times are already relative,
Hesai/Livox absolute times have the stamp subtracted.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from wm_common.point_layouts import (INTEGER_DATATYPES, OUSTER, FieldSpec, Layout,
                                     pack_points)
from wm_perception.pointcloud import decode_points, match_layout, relative_time

FILE_SUFFIXES = (".pcd", ".ply")
BAG_SUFFIXES = (".mcap", ".db3")
POINTCLOUD2 = "sensor_msgs/msg/PointCloud2"


class RecordedCloud(NamedTuple):
    xyz: np.ndarray                 # (N, 3) float32 in the cloud's frame, finite
    t_rel: Optional[np.ndarray]     # (N,) float64 s relative to the stamp, or None
    stamp_ns: int                   # header stamp (0 for PCD/PLY)
    frame_id: str                   # '' for PCD/PLY
    topic: str = ""
    layout: str = ""                # name of the matching wm_common layout, if any


def read_cloud_file(path) -> RecordedCloud:
    """A PCD or PLY file (via open3d) -> xyz; non-finite and (0, 0, 0) points dropped."""
    import open3d as o3d
    path = str(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    pc = o3d.io.read_point_cloud(path)
    xyz = np.asarray(pc.points, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(xyz).all(axis=1) & (xyz != 0).any(axis=1)
    return RecordedCloud(xyz[ok].astype(np.float32), None, 0, "")


def write_cloud_file(path, xyz: np.ndarray) -> None:
    """xyz -> PCD/PLY (open3d; binary). For tests and for exporting clouds."""
    import open3d as o3d
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(
        np.asarray(xyz, dtype=np.float64).reshape(-1, 3)))
    if not o3d.io.write_point_cloud(str(path), pc):
        raise IOError("open3d could not write %s" % path)


def decode_message(msg, max_points: int = 20_000_000) -> Tuple[np.ndarray, Optional[np.ndarray],
                                                               str]:
    """A PointCloud2-like message (rclpy or rosbags) -> (xyz, t_rel or None, layout name)."""
    lay, tf, scale = match_layout(msg.fields, int(msg.point_step))
    stamp_s = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
    cloud = decode_points(msg.fields, msg.data, msg.width, msg.height, msg.point_step,
                          msg.row_step, msg.is_bigendian, max_points=max_points,
                          time_field=tf, time_scale=scale, allow_empty=True)
    return cloud.xyz, relative_time(cloud.time, stamp_s), lay.name if lay else ""


def _typestore():
    from rosbags.typesys import Stores, get_typestore
    return get_typestore(Stores.ROS2_KILTED)


def bag_topics(path) -> Dict[str, int]:
    """{topic: message count} of the PointCloud2 topics in a bag."""
    from rosbags.highlevel import AnyReader
    with AnyReader([Path(path)], default_typestore=_typestore()) as reader:
        return {c.topic: c.msgcount for c in reader.connections if c.msgtype == POINTCLOUD2}


def read_bag(path, topic: Optional[str] = None,
             max_messages: Optional[int] = None) -> Iterator[RecordedCloud]:
    """PointCloud2 messages of a rosbag2 bag (directory, .mcap or .db3) in log-time order.
    topic=None takes every PointCloud2 topic."""
    from rosbags.highlevel import AnyReader
    with AnyReader([Path(path)], default_typestore=_typestore()) as reader:
        conns = [c for c in reader.connections if c.msgtype == POINTCLOUD2
                 and (topic is None or c.topic == topic)]
        if not conns:
            raise ValueError("no PointCloud2 messages%s in %s (PointCloud2 topics: %s)" % (
                "" if topic is None else " on %r" % topic, path,
                sorted(c.topic for c in reader.connections if c.msgtype == POINTCLOUD2)))
        n = 0
        for conn, _t, raw in reader.messages(connections=conns):
            if max_messages is not None and n >= max_messages:
                return
            msg = reader.deserialize(raw, conn.msgtype)
            xyz, t_rel, lay = decode_message(msg)
            st = msg.header.stamp
            yield RecordedCloud(xyz, t_rel, int(st.sec) * 1_000_000_000 + int(st.nanosec),
                                msg.header.frame_id, conn.topic, lay)
            n += 1


def is_bag(path) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix.lower() in BAG_SUFFIXES


def iter_clouds(path, topic: Optional[str] = None,
                max_messages: Optional[int] = None) -> Iterator[RecordedCloud]:
    """Clouds of a PCD/PLY file (one) or a bag (each PointCloud2 message)."""
    if is_bag(path):
        yield from read_bag(path, topic, max_messages)
    elif Path(path).suffix.lower() in FILE_SUFFIXES:
        yield read_cloud_file(path)
    else:
        raise ValueError("%s: not a .pcd/.ply file, a .mcap/.db3 bag or a bag directory"
                         % path)


def read_one(path, index: int = 0, topic: Optional[str] = None) -> RecordedCloud:
    """The index-th cloud of a file or bag."""
    for k, rec in enumerate(iter_clouds(path, topic, max_messages=index + 1)):
        if k == index:
            return rec
    raise IndexError("%s has fewer than %d clouds" % (path, index + 1))


def pack_for_layout(xyz: np.ndarray, t_rel: Optional[np.ndarray], layout: Layout,
                    stamp_ns: int) -> Tuple[bytes, int, List[FieldSpec]]:
    """(data, stamp_ns, fields) of a one-row PointCloud2 in `layout` for the points and their
    times (relative to stamp_ns), each written in the driver's own convention. Ouster times
    are unsigned nanoseconds after the stamp, so when some points precede it the returned
    stamp moves back to the earliest point."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    cols = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    tf = layout.time_field
    if tf is not None:
        t = np.zeros(len(xyz)) if t_rel is None else np.asarray(t_rel, dtype=np.float64)
        spec = layout.field(tf)
        scale = layout.time_scale
        if scale is None:
            scale = 1e-9 if spec.datatype in INTEGER_DATATYPES else 1.0
        if layout is OUSTER or spec.datatype in INTEGER_DATATYPES:
            t0 = min(0.0, float(t.min())) if t.size else 0.0
            stamp_ns += int(round(t0 * 1e9))
            t = t - t0
            cols[tf] = np.round(t / scale).astype(np.int64)
        elif layout.name in ("hesai", "hesai_general", "livox"):   # absolute time
            cols[tf] = (t + stamp_ns * 1e-9) / scale
        else:
            cols[tf] = t / scale
    return pack_points(layout, cols), stamp_ns, list(layout.fields)
