"""Driving-data bags: rosbag2 directories with MCAP storage, written and read without ROS.

The data generator (wm_sim.datagen) records what the robots' drivers and the simulator
publish, so the world model trains on the same quantities a real robot logs, and the
bags open with `ros2 bag info` / `ros2 bag play` on a ROS 2 install:

    <bag dir>/metadata.yaml          rosbag2 metadata, version 8, storage_identifier mcap
    <bag dir>/<bag dir name>.mcap    the messages (ros2msg schemas, CDR, zstd chunks)

Topics (robot ids must be valid ROS name tokens: letters, digits, '_', no leading digit):

    /<id>/odom               nav_msgs/msg/Odometry        50 Hz  wheel odometry, frame odom,
                                                                 child base_link, covariances
    /<id>/ground_truth       nav_msgs/msg/Odometry        50 Hz  true pose in map, true body
                                                                 twist in base_link
    /<id>/localization_pose  geometry_msgs/msg/PoseWithCovarianceStamped
                                                          10 Hz  AMCL stand-in, frame map
    /<id>/cmd_vel            geometry_msgs/msg/Twist      10 Hz  command applied from that
                                                                 instant (zero-order hold)
    /<id>/payload            std_msgs/msg/Float32          1 Hz  payload mass [kg] (and on change)
    /wm/episode              std_msgs/msg/String          events, JSON (see below)

Time: header stamps are simulated time (seconds since the episode started, from 0), and
every message's MCAP log_time = publish_time = the same simulated time in nanoseconds
(Twist and Float32 have no header: their log_time is their stamp). So `ros2 bag info`
shows a start near 1970-01-01, and `ros2 bag play --clock` replays the simulated clock.

/wm/episode carries JSON objects with an "event" key: "start" (engine, world, friction,
payloads, command modes, seeds, rates, ...), "reset" (a robot hit something and was put
back at rest elsewhere: robot, pose, cause; its odometry restarts at the origin of a new
odom frame), and "end". The "start" object is also stored in metadata.yaml's custom_data
under "wm_episode" (custom_data always has "wm_recorder", so it is never null).

Message definitions and type hashes are the standard ROS 2 ones (rosbags' Jazzy type
store; these five types are identical in Humble, Jazzy and Kilted, so the CDR bytes are
what rclpy/rclcpp serialise). Metadata version 8 keeps offered_qos_profiles a string,
which Humble's rosbag2 can still parse (Humble needs ros-humble-rosbag2-storage-mcap).

`read_bag()` turns a bag into numpy arrays per robot for training; `iter_messages()`
yields the decoded messages. Labels must come from ground_truth / localization_pose:
odom is the drifting wheel estimate the model gets as an input, never a target.

Needs the `rosbags` package (writing and reading); no rclpy. Python 3.8 syntax.
"""
from __future__ import annotations

import json
import math
import os
import re
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from wm_common.geometry import Pose2D, yaw_from_quaternion

ODOM = "odom"
GROUND_TRUTH = "ground_truth"
LOCALIZATION = "localization_pose"
CMD_VEL = "cmd_vel"
PAYLOAD = "payload"
EPISODE_TOPIC = "/wm/episode"

ROBOT_TOPIC_TYPES = {
    ODOM: "nav_msgs/msg/Odometry",
    GROUND_TRUTH: "nav_msgs/msg/Odometry",
    LOCALIZATION: "geometry_msgs/msg/PoseWithCovarianceStamped",
    CMD_VEL: "geometry_msgs/msg/Twist",
    PAYLOAD: "std_msgs/msg/Float32",
}
EPISODE_TYPE = "std_msgs/msg/String"

BAG_VERSION = 8
STORAGE_ID = "mcap"

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ZERO_COV = [0.0] * 36


def robot_topics(robot_id: str) -> Dict[str, str]:
    """topic name -> message type of one robot's recorded topics."""
    return {"/%s/%s" % (robot_id, name): t for name, t in ROBOT_TOPIC_TYPES.items()}


def to_ns(t: float) -> int:
    """Simulated seconds -> integer nanoseconds (rounded, so 0.02 * k lands on the grid)."""
    if not (math.isfinite(t) and t >= 0.0):
        raise ValueError("bag times must be finite and >= 0, got %r" % (t,))
    return int(round(float(t) * 1e9))


def _typestore():
    try:
        from rosbags.typesys import Stores, get_typestore
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("wm_world_model.recording needs the 'rosbags' package "
                          "(pip install rosbags)") from e
    return get_typestore(Stores.ROS2_JAZZY)


class BagWriter:
    """Context manager writing one rosbag2 bag (MCAP storage) at `path` (a new directory).

        with BagWriter("out/episode_0000") as bag:
            bag.write_episode(0.0, {"event": "start", ...})
            bag.write_odom("robot_0", t, pose, (v, w), pose_cov36, twist_cov36)
            ...

    Write in non-decreasing time order: the MCAP chunks are then log-time ordered, as
    `ros2 bag record` writes them. Topics are registered on first use. `compression`
    is "zstd" (MCAP chunk compression, read natively by rosbag2's mcap plugin) or None.
    """

    def __init__(self, path: str, compression: Optional[str] = "zstd",
                 odom_frame: str = "odom", base_frame: str = "base_link",
                 map_frame: str = "map"):
        self.path = os.fspath(path)
        if compression not in (None, "zstd"):
            raise ValueError("compression must be 'zstd' or None")
        self.compression = compression
        self.odom_frame, self.base_frame, self.map_frame = odom_frame, base_frame, map_frame
        self._ts = _typestore()
        self._writer = None
        self._conns: Dict[str, Any] = {}
        self._last_ns = 0
        self.message_count = 0
        self.custom_data: Dict[str, str] = {}
        self._build_types()

    # ---------------------------------------------------------------- lifecycle
    def open(self) -> "BagWriter":
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

        w = Writer(self.path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        if self.compression == "zstd":
            w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        w.open()
        self._writer = w
        return self

    def close(self) -> None:
        """Write the MCAP summary and metadata.yaml. Also runs when the `with` body raised,
        so what was recorded up to an error stays readable."""
        if self._writer is None:
            return
        # Never empty: rosbag2 (metadata version >= 6) parses custom_data as a map.
        self.custom_data.setdefault("wm_recorder", "wm_world_model.recording")
        for k, v in self.custom_data.items():
            self._writer.set_custom_data(k, v)
        self._writer.close()
        self._writer = None

    def __enter__(self) -> "BagWriter":
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    # ---------------------------------------------------------------- messages
    def _build_types(self) -> None:
        T = self._ts.types
        self._Time = T["builtin_interfaces/msg/Time"]
        self._Header = T["std_msgs/msg/Header"]
        self._Point = T["geometry_msgs/msg/Point"]
        self._Quat = T["geometry_msgs/msg/Quaternion"]
        self._Pose = T["geometry_msgs/msg/Pose"]
        self._PoseCov = T["geometry_msgs/msg/PoseWithCovariance"]
        self._Vec3 = T["geometry_msgs/msg/Vector3"]
        self._Twist = T["geometry_msgs/msg/Twist"]
        self._TwistCov = T["geometry_msgs/msg/TwistWithCovariance"]
        self._Odometry = T["nav_msgs/msg/Odometry"]
        self._PoseCovStamped = T["geometry_msgs/msg/PoseWithCovarianceStamped"]
        self._Float32 = T["std_msgs/msg/Float32"]
        self._String = T["std_msgs/msg/String"]

    def _conn(self, topic: str, msgtype: str):
        c = self._conns.get(topic)
        if c is None:
            if self._writer is None:
                raise RuntimeError("BagWriter is not open (use it as a context manager)")
            c = self._writer.add_connection(topic, msgtype, typestore=self._ts,
                                            offered_qos_profiles=[_qos(topic)])
            self._conns[topic] = c
        return c

    def _write(self, topic: str, msgtype: str, t_ns: int, msg) -> None:
        if t_ns < self._last_ns:
            raise ValueError("%s: time %d ns is before the last written %d ns"
                             % (topic, t_ns, self._last_ns))
        conn = self._conn(topic, msgtype)
        self._writer.write(conn, t_ns, self._ts.serialize_cdr(msg, msgtype))
        self._last_ns = t_ns
        self.message_count += 1

    def _header(self, t_ns: int, frame: str):
        return self._Header(stamp=self._Time(sec=t_ns // 1_000_000_000,
                                             nanosec=t_ns % 1_000_000_000), frame_id=frame)

    def _pose(self, p: Pose2D):
        return self._Pose(position=self._Point(x=float(p.x), y=float(p.y), z=0.0),
                          orientation=self._Quat(x=0.0, y=0.0, z=math.sin(0.5 * p.yaw),
                                                 w=math.cos(0.5 * p.yaw)))

    def _twist(self, v: float, w: float, vy: float = 0.0):
        return self._Twist(linear=self._Vec3(x=float(v), y=float(vy), z=0.0),
                           angular=self._Vec3(x=0.0, y=0.0, z=float(w)))

    def _odometry(self, t_ns: int, frame: str, pose: Pose2D, v: float, w: float,
                  pose_cov: Optional[Sequence[float]], twist_cov: Optional[Sequence[float]],
                  vy: float = 0.0):
        return self._Odometry(
            header=self._header(t_ns, frame), child_frame_id=self.base_frame,
            pose=self._PoseCov(pose=self._pose(pose), covariance=_cov36(pose_cov)),
            twist=self._TwistCov(twist=self._twist(v, w, vy), covariance=_cov36(twist_cov)))

    def write_odom(self, robot_id: str, t: float, pose: Pose2D, twist: Tuple[float, float],
                   pose_covariance: Optional[Sequence[float]] = None,
                   twist_covariance: Optional[Sequence[float]] = None) -> None:
        """Wheel odometry: pose of base_link in odom, twist (v, w) in base_link."""
        topic = _topic(robot_id, ODOM)
        t_ns = to_ns(t)
        msg = self._odometry(t_ns, self.odom_frame, pose, twist[0], twist[1],
                             pose_covariance, twist_covariance)
        self._write(topic, ROBOT_TOPIC_TYPES[ODOM], t_ns, msg)

    def write_ground_truth(self, robot_id: str, t: float, pose: Pose2D,
                           twist: Tuple[float, float], lateral_velocity: float = 0.0) -> None:
        """True pose of base_link in map, true body twist (v, w; vy if known); no
        covariance (exact), as the simulator node publishes it."""
        topic = _topic(robot_id, GROUND_TRUTH)
        t_ns = to_ns(t)
        msg = self._odometry(t_ns, self.map_frame, pose, twist[0], twist[1], None, None,
                             vy=lateral_velocity)
        self._write(topic, ROBOT_TOPIC_TYPES[GROUND_TRUTH], t_ns, msg)

    def write_localization(self, robot_id: str, t: float, pose: Pose2D,
                           covariance: Optional[Sequence[float]] = None) -> None:
        topic = _topic(robot_id, LOCALIZATION)
        t_ns = to_ns(t)
        msg = self._PoseCovStamped(header=self._header(t_ns, self.map_frame),
                                   pose=self._PoseCov(pose=self._pose(pose),
                                                      covariance=_cov36(covariance)))
        self._write(topic, ROBOT_TOPIC_TYPES[LOCALIZATION], t_ns, msg)

    def write_cmd_vel(self, robot_id: str, t: float, v: float, w: float) -> None:
        topic = _topic(robot_id, CMD_VEL)
        self._write(topic, ROBOT_TOPIC_TYPES[CMD_VEL], to_ns(t), self._twist(v, w))

    def write_payload(self, robot_id: str, t: float, mass_kg: float) -> None:
        topic = _topic(robot_id, PAYLOAD)
        self._write(topic, ROBOT_TOPIC_TYPES[PAYLOAD], to_ns(t),
                    self._Float32(data=float(mass_kg)))

    def write_episode(self, t: float, info: Mapping[str, Any]) -> None:
        """A JSON event on /wm/episode; a "start" event also goes to custom_data."""
        text = json.dumps(dict(info), sort_keys=True)
        if info.get("event") == "start":
            self.custom_data["wm_episode"] = text
        self._write(EPISODE_TOPIC, EPISODE_TYPE, to_ns(t), self._String(data=text))


def _topic(robot_id: str, name: str) -> str:
    if not _NAME_RE.match(robot_id):
        raise ValueError("robot id %r is not a valid ROS name token" % (robot_id,))
    return "/%s/%s" % (robot_id, name)


def _cov36(cov: Optional[Sequence[float]]) -> np.ndarray:
    a = np.asarray(_ZERO_COV if cov is None else cov, dtype=np.float64).ravel()
    if a.shape != (36,):
        raise ValueError("a covariance needs 36 values, got %d" % a.size)
    return a


def _qos(topic: str):
    """The QoS recorded as offered: reliable, keep-last; /wm/episode transient-local so a
    late subscriber of `ros2 bag play` still gets the episode description."""
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)
    zero = QosTime(0, 0)
    latched = topic == EPISODE_TOPIC
    return Qos(QosHistory.KEEP_LAST, 10, QosReliability.RELIABLE,
               QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
               zero, zero, QosLiveliness.AUTOMATIC, zero, False)


# -------------------------------------------------------------------- reading
class BagMessage(NamedTuple):
    topic: str
    msgtype: str
    log_time_ns: int
    msg: Any            # the decoded message (rosbags dataclass, ROS field names)


def iter_messages(path: str, topics: Optional[Sequence[str]] = None) -> Iterator[BagMessage]:
    """Decoded messages of a bag directory in log-time order, optionally only `topics`."""
    from rosbags.rosbag2 import Reader

    ts = _typestore()
    with Reader(os.fspath(path)) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, t_ns, raw in reader.messages(connections=conns):
            yield BagMessage(conn.topic, conn.msgtype, int(t_ns),
                             ts.deserialize_cdr(raw, conn.msgtype))


def _stamp(msg) -> float:
    s = msg.header.stamp
    return s.sec + s.nanosec * 1e-9


def _yaw(q) -> float:
    return yaw_from_quaternion(q.x, q.y, q.z, q.w)


# Per topic: (time key, column names) of the arrays read_bag returns.
_COLUMNS = {
    ODOM: ("t_odom", ("odom_x", "odom_y", "odom_yaw", "odom_v", "odom_w")),
    GROUND_TRUTH: ("t_truth", ("truth_x", "truth_y", "truth_yaw", "truth_v", "truth_w",
                               "truth_vy")),
    LOCALIZATION: ("t_loc", ("loc_x", "loc_y", "loc_yaw")),
    CMD_VEL: ("t_cmd", ("cmd_v", "cmd_w")),
    PAYLOAD: ("t_payload", ("payload",)),
}


def _row(name: str, m) -> Tuple[float, ...]:
    if name in (ODOM, GROUND_TRUTH):
        p, tw = m.pose.pose, m.twist.twist
        row = (p.position.x, p.position.y, _yaw(p.orientation), tw.linear.x, tw.angular.z)
        return row + ((tw.linear.y,) if name == GROUND_TRUTH else ())
    if name == LOCALIZATION:
        p = m.pose.pose
        return (p.position.x, p.position.y, _yaw(p.orientation))
    if name == CMD_VEL:
        return (m.linear.x, m.angular.z)
    return (m.data,)


def read_events(path: str) -> List[Dict[str, Any]]:
    """The /wm/episode JSON events, each with "t" (log time, s) added."""
    out = []
    for bm in iter_messages(path, [EPISODE_TOPIC]):
        ev = json.loads(bm.msg.data)
        ev["t"] = bm.log_time_ns * 1e-9
        out.append(ev)
    return out


def read_bag(path: str) -> Dict[str, Dict[str, np.ndarray]]:
    """robot id -> float64 arrays, each topic on its own time base:

        t_odom, odom_x, odom_y, odom_yaw, odom_v, odom_w        odom frame, wheel estimate
        t_truth, truth_x, truth_y, truth_yaw, truth_v, truth_w, truth_vy   map frame, exact
        t_loc, loc_x, loc_y, loc_yaw                            map frame, noisy, 10 Hz
        t_cmd, cmd_v, cmd_w                                     held until the next one
        t_payload, payload                                      kg
        t            = t_truth (odom and ground truth share their 50 Hz stamps)
        segment      int64, aligned with t: 0 until the robot's first reset, then 1, ...
        reset_t      times of the robot's resets (/wm/episode "reset" events)

    Times are header stamps (log times for Twist / Float32) in seconds. A state
    transition t[i] -> t[i+1] with segment[i] != segment[i+1] crosses a reset: drop it.
    """
    rows: Dict[str, Dict[str, List[Tuple[float, ...]]]] = {}
    resets: Dict[str, List[float]] = {}
    for bm in iter_messages(path):
        if bm.topic == EPISODE_TOPIC:
            ev = json.loads(bm.msg.data)
            if ev.get("event") == "reset" and "robot" in ev:
                resets.setdefault(ev["robot"], []).append(bm.log_time_ns * 1e-9)
            continue
        parts = bm.topic.split("/")
        if len(parts) != 3 or parts[2] not in _COLUMNS:
            continue
        rid, name = parts[1], parts[2]
        t = _stamp(bm.msg) if hasattr(bm.msg, "header") else bm.log_time_ns * 1e-9
        rows.setdefault(rid, {}).setdefault(name, []).append((t,) + _row(name, bm.msg))
    out: Dict[str, Dict[str, np.ndarray]] = {}
    for rid in sorted(set(rows) | set(resets)):
        d: Dict[str, np.ndarray] = {}
        for name, (tkey, cols) in _COLUMNS.items():
            a = np.asarray(rows.get(rid, {}).get(name, []), dtype=np.float64)
            a = a.reshape(-1, 1 + len(cols))
            d[tkey] = a[:, 0].copy()
            for i, c in enumerate(cols):
                d[c] = a[:, i + 1].copy()
        d["t"] = d["t_truth"]
        d["reset_t"] = np.asarray(resets.get(rid, []), dtype=np.float64)
        # A reset is logged at the instant of the contact sample; that sample still
        # belongs to the old segment, the next one starts the new segment.
        d["segment"] = np.searchsorted(d["reset_t"], d["t"] - 1e-9, side="right"
                                       ).astype(np.int64)
        out[rid] = d
    return out


def read_metadata(path: str) -> Dict[str, Any]:
    """metadata.yaml's rosbag2_bagfile_information as a dict."""
    import yaml

    with open(os.path.join(os.fspath(path), "metadata.yaml")) as f:
        return yaml.safe_load(f)["rosbag2_bagfile_information"]
