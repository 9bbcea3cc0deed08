"""End to end across processes: an Ouster cloud published at 10 Hz by another process, through
the real perception node, to its voxel_grid and distance_field.

    python benchmarks/bench_perception_e2e.py [--quick] [--seconds S] [--sizes 128x1024,16x1024]
                                              [--domain D]

Cases: each size at 10 Hz; 128x1024 at 20 Hz (an Ouster in 1024x20 mode); and two LiDARs of
16x1024 and of 128x1024 at 10 Hz (front and rear: `point_topics [points, rear/points]`, the rear
cloud sent just before the front one with the same stamp, merged into the front one's field;
latency from that stamp).

Per cloud size three processes run: the perception node executable (``--params-file
config/robot.yaml``, namespace /bench), a publisher (this module, ``--role pub``) that sends an
organized Ouster cloud (48-byte points, the warehouse scene of bench_perception, frame
lidar_link) stamped with the wall clock at 10 Hz, each preceded by nav_msgs/Odometry (odom ->
base_link, identity pose) with the same stamp, and this process, which subscribes to
/bench/voxel_grid and /bench/distance_field. Both outputs carry the cloud's stamp, so per output:
latency = receive wall time - header.stamp (one host clock), median and p99 ms; delivered % =
clouds whose output arrived / clouds sent; rate Hz = those outputs / publishing window. The
publisher first sends 1 s of warm-up clouds that are not counted. Default window 10 s (--quick:
4 s). Every child has a timeout and is killed on exit; DDS stays on localhost in a private
ROS_DOMAIN_ID (201-230, or --domain), all processes with config/fastdds.xml (large clouds).
"""
from __future__ import annotations

import argparse
import array
import ctypes
import ctypes.util
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_dds  # noqa: E402  (stdlib-only at import; its helpers are reused)
from benchlib import main as bench_main, row  # noqa: E402

SIZES: Tuple[Tuple[int, int], ...] = ((128, 1024), (16, 1024))
# (rows, cols, rate Hz, LiDARs) beyond SIZES at 10 Hz with one LiDAR
EXTRA_CASES: Tuple[Tuple[int, int, float, int], ...] = (
    (128, 1024, 20.0, 1), (16, 1024, 10.0, 2), (128, 1024, 10.0, 2))
REAR_EXTRINSIC = "[0.0, 0.0, 0.4, 0.0, -0.3, 0.0, 0.4, 3.14159]"
OUTPUTS = ("distance_field", "voxel_grid")
NS = "/bench"
RATE_HZ = 10.0
WARMUP_S = 1.0
NODE_START_TIMEOUT_S = 40.0   # perception node up and its outputs discovered
MATCH_TIMEOUT_S = 20.0        # publisher: the node's subscriptions matched
DRAIN_S = 1.5                 # outputs still in flight after the last cloud
CONFIG = REPO / "config" / "robot.yaml"


def case_name(rows: int, cols: int, output: str, rate: float = RATE_HZ,
              sensors: int = 1) -> str:
    return "e2e/%s%dx%d%s/%s" % ("%dx " % sensors if sensors > 1 else "", rows, cols,
                                 "@%.0fHz" % rate if rate != RATE_HZ else "", output)


def perception_executable() -> str:
    """The node executable as `ros2 run wm_perception perception` finds it (tests/rosutil.py)."""
    path = REPO / "ros2_ws" / "install" / "wm_perception" / "lib" / "wm_perception" / "perception"
    if not path.exists():
        raise FileNotFoundError("%s not built: run make test (colcon build)" % path)
    return str(path)


# ---------------------------------------------------------------- publisher (child process)

def role_pub(rows: int, cols: int, seconds: float, rate: float, warmup: float,
             match_timeout: float = MATCH_TIMEOUT_S, sensors: int = 1) -> int:
    """Wait for the perception node's subscriptions, publish odometry + cloud at `rate` for
    `warmup` + `seconds`, print the stamps of the counted clouds."""
    import rclpy
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import PointCloud2

    from bench_perception import warehouse_scan
    from wm_common.ros.qos import SENSOR_QOS

    rclpy.init()
    node = rclpy.create_node("bench_e2e_pub")
    cloud_pub = node.create_publisher(PointCloud2, NS + "/points", SENSOR_QOS)
    odom_pub = node.create_publisher(Odometry, NS + "/odom", SENSOR_QOS)
    rear_pub = node.create_publisher(PointCloud2, NS + "/rear/points", SENSOR_QOS) \
        if sensors > 1 else None
    msg = bench_dds.make_cloud(rows, cols)  # header, fields, steps of an organized Ouster cloud
    msg.data = array.array("B", warehouse_scan(rows, cols))
    msg.is_dense = False  # the scene has dropouts (NaN points)
    msg.header.frame_id = "lidar_link"
    odom = Odometry()
    odom.header.frame_id, odom.child_frame_id = "odom", "base_link"
    odom.pose.pose.orientation.w = 1.0

    deadline = time.monotonic() + match_timeout
    pubs = [cloud_pub, odom_pub] + ([rear_pub] if rear_pub is not None else [])
    while time.monotonic() < deadline and any(p.get_subscription_count() < 1 for p in pubs):
        time.sleep(0.05)
    matched = all(p.get_subscription_count() >= 1 for p in pubs)
    time.sleep(0.5)  # let the reader side finish matching (best effort drops early samples)

    period = 1.0 / rate
    n_warm = int(round(warmup * rate))
    stamps, pub_ms = [], []
    sent = 0
    t_next = time.monotonic()
    t0 = t_last = None
    end = None
    while matched:
        now = time.monotonic()
        if sent == n_warm and t0 is None:
            t0, end = t_next, t_next + seconds
        if end is not None and t_next >= end:
            break
        if now < t_next:
            time.sleep(t_next - now)
        stamp = node.get_clock().now().to_msg()  # wall clock, as a driver stamps
        odom.header.stamp = stamp
        msg.header.stamp = stamp
        t1 = time.perf_counter()
        odom_pub.publish(odom)
        if rear_pub is not None:
            msg.header.frame_id = "rear_lidar"
            rear_pub.publish(msg)
            msg.header.frame_id = "lidar_link"
        cloud_pub.publish(msg)
        pub_ms.append((time.perf_counter() - t1) * 1e3)
        if sent >= n_warm:
            stamps.append([stamp.sec, stamp.nanosec])
            t_last = time.monotonic()
        sent += 1
        t_next += period
        if time.monotonic() > t_next + period:  # fell behind: skip, do not burst
            t_next = time.monotonic()
    elapsed = (t_last - t0) + period if stamps else 0.0
    time.sleep(0.5)  # keep the writer alive while the last samples drain
    bench_dds._emit({"stamps": stamps, "matched": matched, "elapsed_s": elapsed,
                     "warmup_sent": min(sent, n_warm), "publish_ms": pub_ms,
                     "bytes": len(msg.data)})
    node.destroy_node()
    rclpy.try_shutdown()
    return 0 if matched else 2


# ---------------------------------------------------------------- orchestration

class _Receiver:
    """An rclpy node in this process (own context, DDS env of the children) recording
    (receive wall time, stamp) per voxel_grid / distance_field."""

    def __init__(self, env: Dict[str, str]):
        from rclpy.executors import SingleThreadedExecutor

        from wm_common.ros.qos import FIELD_QOS, STATUS_QOS
        from wm_msgs.msg import DistanceField, VoxelGrid

        self.context, self.node = bench_dds.node_in_env(env, "bench_e2e_sub")
        self.samples: Dict[str, List[Tuple[float, Tuple[int, int]]]] = {o: [] for o in OUTPUTS}
        for output, typ, qos in (("distance_field", DistanceField, FIELD_QOS),
                                 ("voxel_grid", VoxelGrid, STATUS_QOS)):
            self.node.create_subscription(typ, NS + "/" + output, self._cb(output), qos)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def _cb(self, output: str):
        got = self.samples[output]

        def cb(msg) -> None:
            got.append((time.time(), (msg.header.stamp.sec, msg.header.stamp.nanosec)))
        return cb

    def outputs_discovered(self) -> bool:
        return all(self.node.count_publishers(NS + "/" + o) >= 1 for o in OUTPUTS)

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, end - time.monotonic())))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


try:
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL the child when this process dies (even by SIGKILL, when atexit
    does not run). PR_SET_PDEATHSIG = 1; Linux only, a no-op elsewhere."""
    if _LIBC is not None:
        _LIBC.prctl(1, int(signal.SIGKILL), 0, 0, 0)


def _start_node(env: Dict[str, str], log, sensors: int = 1) -> subprocess.Popen:
    cmd = [perception_executable(), "--ros-args", "--params-file", str(CONFIG),
           "-r", "__ns:=" + NS, "-p", "use_tf:=static"]
    if sensors > 1:
        cmd += ["-p", "point_topics:=[points, rear/points]",
                "-p", "sensor_extrinsic:=" + REAR_EXTRINSIC]
    p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, preexec_fn=_die_with_parent)
    bench_dds._CHILDREN.append(p)  # killed by bench_dds's atexit hook whatever happens
    return p


def _stop(p: subprocess.Popen, timeout: float = 5.0) -> None:
    """SIGINT the child's process group, SIGKILL after `timeout`."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGINT)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        except OSError:
            pass
    if p in bench_dds._CHILDREN:
        bench_dds._CHILDREN.remove(p)


def _spawn_pub(args: List[str], env: Dict[str, str]) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--role", "pub"] + args,
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, preexec_fn=_die_with_parent)
    bench_dds._CHILDREN.append(p)
    return p


def _log_tail(log) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def measure(rows: int, cols: int, seconds: float, domain: int, rate: float = RATE_HZ,
            warmup: float = WARMUP_S, sensors: int = 1) -> List[Dict[str, object]]:
    env = bench_dds.child_env(True, domain)
    recv = None
    with tempfile.TemporaryFile() as log:
        node = _start_node(env, log, sensors)
        try:
            recv = _Receiver(env)
            deadline = time.monotonic() + NODE_START_TIMEOUT_S
            while not recv.outputs_discovered() and time.monotonic() < deadline:
                if node.poll() is not None:
                    break
                recv.spin_for(0.1)
            if not recv.outputs_discovered():
                raise RuntimeError("perception node did not come up in %.0f s (rc %s): %s" % (
                    NODE_START_TIMEOUT_S, node.poll(), _log_tail(log)))
            pub = _spawn_pub(["--rows", str(rows), "--cols", str(cols), "--seconds",
                              str(seconds), "--rate", str(rate), "--warmup", str(warmup),
                              "--sensors", str(sensors)], env)
            budget = time.monotonic() + MATCH_TIMEOUT_S + warmup + seconds + 30.0
            while pub.poll() is None and time.monotonic() < budget:
                recv.spin_for(0.05)
            recv.spin_for(DRAIN_S)
            p_res = bench_dds.finish(pub, 5.0)
            if not p_res["matched"]:
                raise RuntimeError("publisher never matched the perception node: %s"
                                   % _log_tail(log))
        finally:
            if recv is not None:
                recv.close()
            _stop(node)
            bench_dds._kill_children()
    sent_stamps = {tuple(s) for s in p_res["stamps"]}
    sent = len(sent_stamps)
    elapsed = float(p_res["elapsed_s"]) or seconds
    out = []
    for output in OUTPUTS:
        first: Dict[Tuple[int, int], float] = {}
        for t_recv, stamp in recv.samples[output]:
            if stamp in sent_stamps and stamp not in first:
                first[stamp] = t_recv
        lat = [(t - (s[0] + s[1] * 1e-9)) * 1e3 for s, t in first.items()]
        out.append(row(case_name(rows, cols, output, rate, sensors), lat,
                       delivered_pct=100.0 * len(first) / sent if sent else 0.0,
                       rate_hz=len(first) / elapsed if elapsed > 0 else 0.0,
                       sent=sent, received=len(first), mbytes=p_res["bytes"] / 1e6))
    return out


def run(repeats: Optional[int] = None, seconds: Optional[float] = None,
        sizes: Sequence[Tuple[int, int]] = SIZES,
        domain: Optional[int] = None) -> List[Dict[str, object]]:
    """Rows distance_field and voxel_grid per cloud size. `repeats` (as run_all --quick passes
    it) shortens the window to 4 s; latency n is the number of outputs received."""
    if seconds is None:
        seconds = 4.0 if repeats is not None and repeats <= 10 else 10.0
    if domain is None:
        domain = random.SystemRandom().randint(201, 230)
    rows: List[Dict[str, object]] = []
    for r, c in sizes:
        rows += measure(r, c, seconds, domain)
    for r, c, rate, sensors in (EXTRA_CASES if tuple(sizes) == SIZES else ()):
        rows += measure(r, c, seconds, domain, rate=rate, sensors=sensors)
    return rows


def _sizes(text: str) -> Tuple[Tuple[int, int], ...]:
    return tuple(tuple(int(v) for v in s.split("x")) for s in text.split(","))


def _extra_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--seconds", type=float, default=None,
                    help="publishing window (default 10 s, --quick 4 s)")
    ap.add_argument("--sizes", type=_sizes, default=SIZES, help="e.g. 128x1024,16x1024")
    ap.add_argument("--domain", type=int, default=None, help="ROS_DOMAIN_ID (default 201-230)")


def _role_main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=("pub",), required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--cols", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--rate", type=float, default=RATE_HZ)
    ap.add_argument("--warmup", type=float, default=WARMUP_S)
    ap.add_argument("--sensors", type=int, default=1)
    a = ap.parse_args(argv)
    return role_pub(a.rows, a.cols, a.seconds, a.rate, a.warmup, sensors=a.sensors)


if __name__ == "__main__":
    if "--role" in sys.argv[1:]:
        raise SystemExit(_role_main(sys.argv[1:]))
    raise SystemExit(bench_main(run, __doc__, extra_args=_extra_args))
