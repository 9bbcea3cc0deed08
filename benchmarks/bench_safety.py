"""The collision monitor (wm_safety): how soon an obstacle in the stop zone reaches the base, across
processes, and what the gate costs per cloud in process.

    python benchmarks/bench_safety.py [--quick] [--trials N] [--sizes 128x1024,16x512]
                                      [--domain D]

* safety_dds/<rows>x<cols>/cloud -> stop: the collision_monitor executable runs as its own
  process (``-r __ns:=/bench -p use_sim_time:=false``, every other parameter at its default:
  sensor_extrinsic [0, 0, 0.4, 0], unknown payload). This process publishes /bench/cmd_vel_nav
  at 20 Hz (v = 0.3 m/s, reliable depth 1) and organized Ouster clouds (48-byte points,
  SensorDataQoS) on /bench/points: the walls and ceiling of an 18 x 11 m hall, 4-15 m away
  (nothing near the robot), and the same cloud with an obstacle, 50 returns on a plane
  0.45 m ahead of base_link at sensor height (base z 0.35-0.45 m), inside the stop zone
  (the footprint with the unknown payload's 5 cm overhang reaches 0.40 m, the stop zone
  0.50 m). One trial: clear clouds every 100 ms until /bench/safety_state says 'free', a
  random 0-50 ms (against the cmd_vel_nav phase), then one obstacle cloud stamped with the
  wall clock; latency = arrival of the first safety_state with action 'stop' - that stamp
  (one host clock), median and p99 ms. delivered % = trials that saw 'stop' within 1 s; a
  miss (a best-effort cloud lost) is not a latency sample. A few warm-up trials per size are
  not counted. The node publishes cmd_vel and safety_state together, so safety_state is
  when cmd_vel went out.
* safety_gate/<rows>x<cols>/..: the node's per-cloud work in this process, on the same
  obstacle cloud: decode_points, sensor_points_to_base, SafetyGate.set_points + update
  (gate from wm_safety.configure.build_gate with the SAFETY_PARAMS defaults, nav command fresh), and
  the three together; set_points + update also for the clear cloud.

Both processes run with config/fastdds.xml (large clouds), DDS stays on localhost in a private
ROS_DOMAIN_ID (201-230, or --domain); the node is stopped (SIGINT, then SIGKILL) whatever
happens, and dies with this process. The planner comparison (control period, planner budget,
its measured cycle) is in NOTE.
"""
from __future__ import annotations

import argparse
import array
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_dds  # noqa: E402  (child_env, _CHILDREN and its atexit kill)
import bench_perception_e2e as e2e  # noqa: E402  (_die_with_parent, _stop, _log_tail)
from benchlib import main as bench_main, row, time_calls  # noqa: E402

SIZES: Tuple[Tuple[int, int], ...] = ((128, 1024), (16, 512))
NS = "/bench"
TRIALS = 80                 # counted trials per size (>= 60 for a p99 worth printing)
WARMUP_TRIALS = 3           # per size, not counted
GATE_REPEATS = 200
CMD_RATE_HZ = 20.0
CLOUD_PERIOD_S = 0.1        # clear clouds while waiting for 'free' (points_timeout is 0.5 s)
V_NAV = 0.3
STOP_TIMEOUT_S = 1.0        # a trial without 'stop' this long after the cloud is a miss
FREE_TIMEOUT_S = 5.0
NODE_START_TIMEOUT_S = 30.0
SENSOR_Z = 0.4              # SAFETY_PARAMS sensor_extrinsic z
OBSTACLE_X = 0.45           # m ahead of base_link: past the 0.40 m footprint, inside 0.50 m
OBSTACLE_RINGS, OBSTACLE_COLS = 5, 10   # 50 returns

# The comparison, from BENCHMARKS.md (2026-11-26, same 2-core development machine): the
# planner's cycle. Not measured here.
CONTROL_PERIOD_MS = 100.0   # 10 Hz: one cloud, one plan, one cmd_vel_nav
PLANNER_BUDGET_MS = 30.0    # the planner's allowance within that period
MPPI_PLAN_MS = 5.15         # mppi_plan/K=2048,H=10 median
PLANNER_CLOUD_TO_CMD_MS = (11.5, 28.7)  # planner_quality cloud -> cmd_vel medians, closed loop


def dds_case(rows: int, cols: int) -> str:
    return "safety_dds/%dx%d/cloud -> stop" % (rows, cols)


def gate_case(rows: int, cols: int, part: str) -> str:
    return "safety_gate/%dx%d/%s" % (rows, cols, part)


PEERS = {dds_case(128, 1024): dds_case(16, 512),
         gate_case(128, 1024, "decode + to_base + set_points + update"):
             gate_case(16, 512, "decode + to_base + set_points + update")}


def NOTE(r) -> str:  # noqa: N802 (run_all looks the note function up by this name)
    name = str(r["name"])
    med = float(r["median_ms"])
    if not math.isfinite(med):
        return ""
    if name.startswith("safety_dds/"):
        p99 = float(r["p99_ms"])
        return ("%.2f of the %.0f ms control period and %.2f of the %.0f ms planner budget "
                "(p99: %.2f, %.2f); the planner, from BENCHMARKS.md (not measured here): "
                "MPPI plan %.2f ms, cloud -> cmd_vel %.0f-%.0f ms median closed loop" % (
                    med / CONTROL_PERIOD_MS, CONTROL_PERIOD_MS, med / PLANNER_BUDGET_MS,
                    PLANNER_BUDGET_MS, p99 / CONTROL_PERIOD_MS, p99 / PLANNER_BUDGET_MS,
                    MPPI_PLAN_MS, PLANNER_CLOUD_TO_CMD_MS[0], PLANNER_CLOUD_TO_CMD_MS[1]))
    if name.endswith("decode + to_base + set_points + update"):
        return "%.3f of the %.0f ms control period" % (med / CONTROL_PERIOD_MS,
                                                        CONTROL_PERIOD_MS)
    return ""


# ---------------------------------------------------------------- clouds

def room_columns(rows: int, cols: int, obstacle: bool, seed: int = 0) -> Dict[str, np.ndarray]:
    """Ouster columns (ring-major, ring 0 the top beam) of a hall: walls at x -4 / +14 and
    y -5 / +6 m around the sensor, a ceiling 3.6 m above it; rays below the horizon run on to
    the walls (no floor: its returns would be under z_min anyway and nearer than 4 m).
    With `obstacle`, OBSTACLE_RINGS x OBSTACLE_COLS returns around azimuth 0 / elevation 0
    land on the plane x = OBSTACLE_X."""
    rng = np.random.default_rng(seed)
    el = np.deg2rad(np.linspace(22.5, -22.5, rows))
    az = np.linspace(-np.pi, np.pi, cols, endpoint=False)
    EL, AZ = np.meshgrid(el, az, indexing="ij")
    dx, dy = np.cos(AZ), np.sin(AZ)
    with np.errstate(divide="ignore"):
        tx = np.where(dx > 0, 14.0 / dx, np.where(dx < 0, -4.0 / dx, np.inf))
        ty = np.where(dy > 0, 6.0 / dy, np.where(dy < 0, -5.0 / dy, np.inf))
    horiz = np.minimum(tx, ty)
    tan_el = np.tan(EL)
    with np.errstate(divide="ignore"):
        to_ceiling = np.where(tan_el > 0, 3.6 / np.where(tan_el > 0, tan_el, 1.0), np.inf)
    horiz = np.minimum(horiz, to_ceiling) + rng.normal(0.0, 0.01, horiz.shape)
    x, y, z = horiz * dx, horiz * dy, horiz * tan_el
    if obstacle:
        r0 = rows // 2 - OBSTACLE_RINGS // 2
        c0 = cols // 2 - OBSTACLE_COLS // 2
        sl = (slice(r0, r0 + OBSTACLE_RINGS), slice(c0, c0 + OBSTACLE_COLS))
        t = OBSTACLE_X / (np.cos(EL[sl]) * np.cos(AZ[sl]))
        x[sl] = t * np.cos(EL[sl]) * np.cos(AZ[sl])
        y[sl] = t * np.cos(EL[sl]) * np.sin(AZ[sl])
        z[sl] = t * np.sin(EL[sl])
    rng_m = np.sqrt(x * x + y * y + z * z)
    n = rows * cols
    return {
        "x": x.ravel(), "y": y.ravel(), "z": z.ravel(),
        "intensity": rng.uniform(0.0, 255.0, n),
        "t": np.tile(np.arange(cols, dtype=np.uint32) * (100_000_000 // cols), rows),
        "reflectivity": rng.integers(0, 255, n),
        "ring": np.repeat(np.arange(rows, dtype=np.uint16), cols),
        "ambient": rng.integers(0, 1000, n),
        "range": (rng_m.ravel() * 1000.0).astype(np.uint32),
    }


def room_scan(rows: int, cols: int, obstacle: bool) -> bytes:
    from wm_common.point_layouts import OUSTER, pack_points
    return pack_points(OUSTER, room_columns(rows, cols, obstacle), height=rows)


def make_msg(rows: int, cols: int, data: bytes):
    """sensor_msgs/PointCloud2 as wm_sim's _publish_scan builds it (frame lidar_link)."""
    from sensor_msgs.msg import PointCloud2, PointField
    from wm_common.point_layouts import OUSTER

    msg = PointCloud2()
    msg.header.frame_id = "lidar_link"
    msg.height, msg.width = rows, cols
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                  for f in OUSTER.fields]
    msg.is_bigendian = False
    msg.point_step = OUSTER.point_step
    msg.row_step = OUSTER.point_step * cols
    msg.is_dense = True
    msg.data = array.array("B", data)  # one buffer copy in the setter and at publish
    return msg


# ---------------------------------------------------------------- in process

def measure_gate(rows: int, cols: int, repeats: int) -> List[Dict[str, object]]:
    from wm_common.params import defaults
    from wm_common.point_layouts import OUSTER
    from wm_perception.pointcloud import decode_points
    from wm_safety.configure import build_gate
    from wm_safety.collision_monitor_node import sensor_points_to_base
    from wm_safety.mux import NAV
    from wm_safety.params import SAFETY_PARAMS

    p = defaults(SAFETY_PARAMS)
    gate, _ = build_gate(p)
    ext = [float(v) for v in p["sensor_extrinsic"]]
    step = OUSTER.point_step
    bufs = {k: room_scan(rows, cols, k == "obstacle") for k in ("clear", "obstacle")}

    def decode(data):
        return decode_points(OUSTER.fields, data, cols, rows, step, step * cols, False,
                             max_points=p["max_points"], allow_empty=True)

    xyz = decode(bufs["obstacle"]).xyz
    xy = {k: sensor_points_to_base(decode(b).xyz, ext, p["z_min"], p["z_max"])
          for k, b in bufs.items()}
    clock = [1000.0]

    def gate_step(points):
        now = clock[0] = clock[0] + 0.05
        gate.mux.command(NAV, V_NAV, 0.0, now)
        gate.set_points(points, now)
        return gate.update(now)

    def pipeline():
        pts = sensor_points_to_base(decode(bufs["obstacle"]).xyz, ext, p["z_min"], p["z_max"])
        return gate_step(pts)

    out = gate_step(xy["obstacle"])
    if out.action != "stop" or out.points_stop < OBSTACLE_RINGS * OBSTACLE_COLS:
        raise RuntimeError("the obstacle cloud does not stop the gate: %r" % (out,))
    if gate_step(xy["clear"]).action != "free":
        raise RuntimeError("the clear cloud does not free the gate")
    return [
        row(gate_case(rows, cols, "decode_points"),
            time_calls(lambda: decode(bufs["obstacle"]), repeats, warmup=3),
            points=rows * cols),
        row(gate_case(rows, cols, "sensor_points_to_base"),
            time_calls(lambda: sensor_points_to_base(xyz, ext, p["z_min"], p["z_max"]),
                       repeats, warmup=3), points_in_z=len(xy["obstacle"])),
        row(gate_case(rows, cols, "set_points + update, obstacle (stop)"),
            time_calls(lambda: gate_step(xy["obstacle"]), repeats, warmup=3)),
        row(gate_case(rows, cols, "set_points + update, clear (free)"),
            time_calls(lambda: gate_step(xy["clear"]), repeats, warmup=3)),
        row(gate_case(rows, cols, "decode + to_base + set_points + update"),
            time_calls(pipeline, repeats, warmup=3)),
    ]


# ---------------------------------------------------------------- across processes

def monitor_executable() -> str:
    """The node executable as `ros2 run wm_safety collision_monitor` finds it."""
    path = (REPO / "ros2_ws" / "install" / "wm_safety" / "lib" / "wm_safety"
            / "collision_monitor")
    if not path.exists():
        raise FileNotFoundError("%s not built: run make test (colcon build)" % path)
    return str(path)


def _start_monitor(env: Dict[str, str], log) -> subprocess.Popen:
    cmd = [monitor_executable(), "--ros-args", "-r", "__ns:=" + NS,
           "-p", "use_sim_time:=false"]
    p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, preexec_fn=e2e._die_with_parent)
    bench_dds._CHILDREN.append(p)  # killed by bench_dds's atexit hook whatever happens
    return p


class _Driver:
    """The planner and the LiDAR in this process: an rclpy node (own context, the children's
    DDS environment) publishing cmd_vel_nav at 20 Hz and clouds on demand, recording
    (arrival wall time, action, points_stop, output v) per safety_state."""

    def __init__(self, env: Dict[str, str]):
        from geometry_msgs.msg import Twist
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import PointCloud2

        from wm_common.ros.qos import CMD_VEL_QOS, SENSOR_QOS, STATUS_QOS
        from wm_msgs.msg import SafetyState

        self.context, self.node = bench_dds.node_in_env(env, "bench_safety")
        self.states: List[Tuple[float, str, int, float]] = []
        self.cloud_pub = self.node.create_publisher(PointCloud2, NS + "/points", SENSOR_QOS)
        self.cmd_pub = self.node.create_publisher(Twist, NS + "/cmd_vel_nav", CMD_VEL_QOS)
        self.node.create_subscription(SafetyState, NS + "/safety_state", self._on_state,
                                      STATUS_QOS)
        self.cmd = Twist()
        self.cmd.linear.x = V_NAV
        self.timer = None
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def _on_state(self, msg) -> None:
        self.states.append((time.time(), msg.action, int(msg.points_stop),
                            float(msg.output.linear.x)))

    def start_commands(self) -> None:
        self.timer = self.node.create_timer(1.0 / CMD_RATE_HZ,
                                            lambda: self.cmd_pub.publish(self.cmd))

    def matched(self) -> bool:
        return (self.cloud_pub.get_subscription_count() >= 1
                and self.cmd_pub.get_subscription_count() >= 1
                and self.node.count_publishers(NS + "/safety_state") >= 1)

    def publish_cloud(self, msg) -> float:
        """Stamp `msg` with the wall clock and send it; the stamp in seconds."""
        stamp = self.node.get_clock().now()
        msg.header.stamp = stamp.to_msg()
        self.cloud_pub.publish(msg)
        return stamp.nanoseconds * 1e-9

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.005, max(0.0, end - time.monotonic())))

    def close(self) -> None:
        if self.timer is not None:
            self.node.destroy_timer(self.timer)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def _wait_action(drv: _Driver, since: int, action: str, timeout: float,
                 keep_alive=None) -> Optional[Tuple[float, str, int, float]]:
    """The first safety_state at index >= `since` with `action`, spinning up to `timeout`;
    `keep_alive()` is called every CLOUD_PERIOD_S meanwhile (clear clouds)."""
    end = time.monotonic() + timeout
    next_cloud = time.monotonic() + CLOUD_PERIOD_S
    while time.monotonic() < end:
        for s in drv.states[since:]:
            if s[1] == action:
                return s
        since = len(drv.states)
        if keep_alive is not None and time.monotonic() >= next_cloud:
            keep_alive()
            next_cloud += CLOUD_PERIOD_S
        drv.executor.spin_once(timeout_sec=0.002)
    return None


def measure_dds(drv: _Driver, rows: int, cols: int, trials: int,
                rnd: random.Random) -> Dict[str, object]:
    clear = make_msg(rows, cols, room_scan(rows, cols, False))
    obstacle = make_msg(rows, cols, room_scan(rows, cols, True))
    lat = []
    missed = 0
    for i in range(WARMUP_TRIALS + trials):
        # the gate must say 'free' on a clear cloud first: after a stop, every state until
        # the clear cloud is processed is 'stop' (its points stay), so the next 'free' is it
        since = len(drv.states)
        drv.publish_cloud(clear)
        if _wait_action(drv, since, "free", FREE_TIMEOUT_S,
                        keep_alive=lambda: drv.publish_cloud(clear)) is None:
            raise RuntimeError("collision monitor never said 'free' (last states %r)"
                               % drv.states[-3:])
        drv.spin_for(rnd.uniform(0.0, 0.05))
        since = len(drv.states)
        stamp = drv.publish_cloud(obstacle)
        got = _wait_action(drv, since, "stop", STOP_TIMEOUT_S)
        if i < WARMUP_TRIALS:
            continue
        if got is None:
            missed += 1
            continue
        if got[2] < OBSTACLE_RINGS * OBSTACLE_COLS:
            raise RuntimeError("'stop' with %d points in the stop zone, expected %d"
                               % (got[2], OBSTACLE_RINGS * OBSTACLE_COLS))
        lat.append((got[0] - stamp) * 1e3)
    return row(dds_case(rows, cols), lat, delivered_pct=100.0 * len(lat) / max(trials, 1),
               sent=trials, missed=missed, mbytes=rows * cols * 48 / 1e6)


def measure_all_dds(sizes: Sequence[Tuple[int, int]], trials: int,
                    domain: int) -> List[Dict[str, object]]:
    env = bench_dds.child_env(True, domain)
    rnd = random.Random(0)
    drv = None
    out = []
    with tempfile.TemporaryFile() as log:
        node = _start_monitor(env, log)
        try:
            drv = _Driver(env)
            deadline = time.monotonic() + NODE_START_TIMEOUT_S
            while not drv.matched() and time.monotonic() < deadline and node.poll() is None:
                drv.spin_for(0.1)
            if not drv.matched():
                raise RuntimeError("collision_monitor did not come up in %.0f s (rc %s): %s"
                                   % (NODE_START_TIMEOUT_S, node.poll(), e2e._log_tail(log)))
            drv.spin_for(0.5)  # let the reader side finish matching (best effort)
            drv.start_commands()
            for r, c in sizes:
                out.append(measure_dds(drv, r, c, trials, rnd))
        except RuntimeError as e:
            raise RuntimeError("%s\nnode log: %s" % (e, e2e._log_tail(log))) from None
        finally:
            if drv is not None:
                drv.close()
            e2e._stop(node)
            bench_dds._kill_children()
    return out


def run(repeats: Optional[int] = None, trials: Optional[int] = None,
        sizes: Sequence[Tuple[int, int]] = SIZES,
        domain: Optional[int] = None) -> List[Dict[str, object]]:
    """DDS rows per size, then the in-process gate rows. `repeats` (run_all --quick passes
    10) sets both the DDS trials and the in-process repetitions."""
    if trials is None:
        trials = repeats if repeats is not None else TRIALS
    gate_repeats = repeats if repeats is not None else GATE_REPEATS
    if domain is None:
        domain = random.SystemRandom().randint(201, 230)
    rows = measure_all_dds(sizes, trials, domain)
    for r, c in sizes:
        rows += measure_gate(r, c, gate_repeats)
    return rows


def _extra_args(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--trials", type=int, default=None,
                    help="counted obstacle trials per size (default %d)" % TRIALS)
    ap.add_argument("--sizes", type=e2e._sizes, default=SIZES, help="e.g. 128x1024,16x512")
    ap.add_argument("--domain", type=int, default=None, help="ROS_DOMAIN_ID (default 201-230)")


if __name__ == "__main__":
    raise SystemExit(bench_main(run, __doc__, extra_args=_extra_args, peers=PEERS, note=NOTE))
