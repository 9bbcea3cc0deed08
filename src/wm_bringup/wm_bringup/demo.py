"""`make demo`: robots in the simulated warehouse drive to their goals through real ROS 2 topics.

Starts a private redis-server (the embedded default, unless WM_REDIS_URL is set), the
simulator, and per robot a perception and a planner process (`--ros-args --params-file
config/robot.yaml -r __ns:=/robotN`, exactly as on a robot without the launch library); sends
each robot its goals through the navigate_to_pose action; runs for a bounded time; prints goals
reached, collisions (from ground truth) and planning latency (cloud stamp -> cmd_vel), and
writes a PNG of the paths. Ctrl-C stops everything cleanly.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from wm_bringup.redis_server import RedisServer

def share_dir() -> Path:
    """config/ and launch/ as installed (share/wm_bringup), else the repo's folders."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory("wm_bringup"))
    except Exception:  # not installed: running from the source tree
        return Path(__file__).resolve().parents[3]


def executable(package: str, name: str) -> str:
    from ament_index_python.packages import get_package_prefix
    return str(Path(get_package_prefix(package)) / "lib" / package / name)


class Processes:
    """Child processes in their own sessions, stopped with SIGINT then SIGKILL."""

    def __init__(self, logdir: Path, env: dict):
        self.logdir, self.env, self.children = logdir, env, []

    def start(self, name: str, cmd: list) -> subprocess.Popen:
        log = open(self.logdir / (name + ".log"), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                             start_new_session=True)
        self.children.append((name, p, log))
        return p

    def dead(self):
        return [(n, p.returncode) for n, p, _ in self.children if p.poll() is not None]

    def stop_all(self, timeout: float = 5.0) -> None:
        for _, p, _ in self.children:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for _, p, log in self.children:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            log.close()


class Monitor:
    """The demo's own ROS node: sends goals, records ground truth and plan status."""

    def __init__(self, robots, world, goal_sequences, collision_radius):
        import rclpy
        from nav_msgs.msg import Odometry
        from rclpy.action import ActionClient
        from rclpy.executors import MultiThreadedExecutor

        from wm_common.ros.qos import SENSOR_QOS, STATUS_QOS
        from wm_msgs.action import NavigateToPose
        from wm_msgs.msg import PlanStatus
        from wm_sim.evaluation import Kpis

        self.rclpy = rclpy
        self.NavigateToPose = NavigateToPose
        self.PlanStatus = PlanStatus
        self.node = rclpy.create_node("demo_monitor")
        self.robots = robots
        self.goal_sequences = goal_sequences
        self.kpis = Kpis(world, footprint_radius=collision_radius)
        self.lock = threading.Lock()
        self.paths = {r: [] for r in robots}
        self.latencies = {r: [] for r in robots}
        self.solve_ms = {r: [] for r in robots}
        self.results = {r: [] for r in robots}
        self.clients = {}
        for r in robots:
            self.node.create_subscription(Odometry, "/%s/ground_truth" % r,
                                          lambda m, r=r: self._on_truth(r, m), SENSOR_QOS)
            self.node.create_subscription(PlanStatus, "/%s/plan_status" % r,
                                          lambda m, r=r: self._on_status(r, m), STATUS_QOS)
            self.clients[r] = ActionClient(self.node, NavigateToPose, "/%s/navigate_to_pose" % r)
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _on_truth(self, r, msg) -> None:
        from wm_common.ros.convert import pose_to_pose2d, stamp_to_sec
        pose = pose_to_pose2d(msg.pose.pose)
        with self.lock:
            self.paths[r].append((pose.x, pose.y))
            self.kpis.update(stamp_to_sec(msg.header.stamp), {r: pose})

    def _on_status(self, r, msg) -> None:
        from wm_common.ros.convert import stamp_to_sec
        if msg.status != self.PlanStatus.STATUS_OK:
            return
        lat = stamp_to_sec(msg.header.stamp) - stamp_to_sec(msg.input_stamp)
        with self.lock:
            self.latencies[r].append(lat * 1e3)
            self.solve_ms[r].append(msg.solve_time_ms)

    def wait_for_servers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for c in self.clients.values():
            if not c.wait_for_server(timeout_sec=max(0.1, deadline - time.monotonic())):
                return False
        return True

    def navigate(self, r, goal_pose, deadline: float) -> dict:
        """Send one goal and wait for its result (blocking; run one thread per robot)."""
        from geometry_msgs.msg import PoseStamped

        from wm_common.ros.convert import pose2d_to_pose
        goal = self.NavigateToPose.Goal()
        goal.pose = PoseStamped()
        goal.pose.header.frame_id = "map"
        goal.pose.header.stamp = self.node.get_clock().now().to_msg()
        goal.pose.pose = pose2d_to_pose(goal_pose)
        with self.lock:
            self.kpis.set_goal(r, goal_pose, self.now())
        t0 = time.monotonic()
        fut = self.clients[r].send_goal_async(goal)
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        handle = fut.result() if fut.done() else None
        if handle is None or not handle.accepted:
            return {"goal": list(goal_pose), "status": "rejected", "time": None}
        res_fut = handle.get_result_async()
        while not res_fut.done() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not res_fut.done():
            handle.cancel_goal_async()
            return {"goal": list(goal_pose), "status": "timeout", "time": None}
        res = res_fut.result().result
        ok = res.error_code == self.NavigateToPose.Result.NONE
        return {"goal": list(goal_pose), "status": "reached" if ok else "failed",
                "error_code": int(res.error_code), "error_msg": res.error_msg,
                "time": time.monotonic() - t0}

    def run_robot(self, r, deadline: float) -> None:
        for g in self.goal_sequences[r]:
            if time.monotonic() >= deadline:
                break
            out = self.navigate(r, g, deadline)
            with self.lock:
                self.results[r].append(out)
            print("  %s: goal (%.1f, %.1f) %s%s" % (
                r, g.x, g.y, out["status"],
                "" if out["time"] is None else " in %.1f s" % out["time"]), flush=True)
            if out["status"] != "reached":
                break

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q)) if len(values) else float("nan")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--robots", type=int, default=2, help="number of robots (1-4)")
    ap.add_argument("--world", default="warehouse_small",
                    choices=["warehouse_small", "warehouse_large", "test_scene"])
    ap.add_argument("--duration", type=float, default=180.0, help="time limit [s]")
    ap.add_argument("--round-trip", action="store_true",
                    help="after its goal, send each robot back to its start")
    ap.add_argument("--out", default="out/demo", help="folder for the PNG, JSON and logs")
    ap.add_argument("--collision-radius", type=float, default=0.3,
                    help="footprint radius used to count collisions from ground truth [m]")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from wm_sim.sim_node import load_world
    world = load_world(args.world)
    n = max(1, min(args.robots, len(world.spawns)))
    robots = ["robot%d" % (i + 1) for i in range(n)]
    spawns = list(world.spawns.values())[:n]
    goals = list(world.goals.values())[:n]
    sequences = {r: [goals[i]] + ([spawns[i]] if args.round_trip else [])
                 for i, r in enumerate(robots)}
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    config = share_dir() / "config"

    env = os.environ.copy()
    # A private DDS domain on localhost: the demo never talks to other runs or robots.
    env.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(101, 200)))
    env["ROS_LOCALHOST_ONLY"] = "1"
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_LOCALHOST_ONLY",
                                           "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    redis = None
    if not env.get("WM_REDIS_URL"):
        redis = RedisServer().start()
        env["WM_REDIS_URL"] = redis.url  # to the children through the environment only
        print("redis-server (embedded default) on %s" % redis.public_url)
    else:
        print("using the Redis configured in WM_REDIS_URL")

    procs = Processes(out / "logs", env)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    import rclpy
    monitor = None
    code = 1
    try:
        flat = [v for p in spawns for v in p]
        procs.start("simulator", [
            executable("wm_sim", "simulator"), "--ros-args",
            "--params-file", str(config / "sim.yaml"),
            "-p", "world:=" + args.world, "-p", "robots:=[%s]" % ",".join(robots),
            "-p", "spawn_poses:=[%s]" % ",".join("%.4f" % v for v in flat)])
        for r in robots:
            for pkg, exe in (("wm_perception", "perception"), ("wm_planner", "planner")):
                procs.start("%s_%s" % (r, exe), [
                    executable(pkg, exe), "--ros-args",
                    "--params-file", str(config / "robot.yaml"), "-r", "__ns:=/" + r])
        print("started simulator and %d x (perception, planner) on ROS_DOMAIN_ID=%s; "
              "logs in %s" % (n, env["ROS_DOMAIN_ID"], out / "logs"))
        rclpy.init()
        monitor = Monitor(robots, world, sequences, args.collision_radius)
        if not monitor.wait_for_servers(60.0) or procs.dead():
            print("nodes did not come up: %s (see %s)" % (procs.dead(), out / "logs"))
            return 1
        print("sending goals (time limit %.0f s)" % args.duration)
        t_start = time.monotonic()
        deadline = t_start + args.duration
        threads = [threading.Thread(target=monitor.run_robot, args=(r, deadline), daemon=True)
                   for r in robots]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads) and not stop.is_set():
            if procs.dead():
                print("a node exited: %s" % procs.dead())
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - t_start
        code = report(monitor, world, robots, sequences, elapsed, out, stop.is_set())
    finally:
        if monitor is not None:
            monitor.close()
        procs.stop_all()
        if rclpy.ok():
            rclpy.shutdown()
        if redis is not None:
            redis.stop()
    return code


def report(monitor, world, robots, sequences, elapsed, out: Path, interrupted: bool) -> int:
    from wm_sim.render import plot_paths
    with monitor.lock:
        kpis = monitor.kpis.summary()
        lat = [v for r in robots for v in monitor.latencies[r]]
        solve = [v for r in robots for v in monitor.solve_ms[r]]
        results = {r: list(monitor.results[r]) for r in robots}
        paths = {r: np.asarray(monitor.paths[r]) for r in robots if monitor.paths[r]}
        collision_points = dict(monitor.kpis.collision_points)
    n_goals = sum(len(sequences[r]) for r in robots)
    reached = sum(1 for r in robots for x in results[r] if x["status"] == "reached")
    collisions = sum(kpis["robots"].get(r, {}).get("collisions", 0) for r in robots)
    summary = {
        "world": world.name, "robots": robots, "elapsed_s": round(elapsed, 1),
        "interrupted": interrupted, "goals": n_goals, "goals_reached": reached,
        "collisions": collisions, "results": results,
        "latency_ms": {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "n": len(lat)},
        "solve_ms": {"p50": percentile(solve, 50), "p99": percentile(solve, 99)},
        "kpis": kpis,
        "machine_note": "measured on the development machine (not a Jetson)",
    }
    png = plot_paths(world, paths, goals={r: sequences[r][0] for r in robots},
                     collisions=collision_points, out_png=str(out / "demo_paths.png"),
                     title="%s: %d/%d goals, %d collisions" % (world.name, reached, n_goals,
                                                               collisions))
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print("")
    print("== demo result (%s, %d robots, %.0f s)" % (world.name, len(robots), elapsed))
    print("goals reached:      %d / %d" % (reached, n_goals))
    print("collisions:         %d" % collisions)
    print("latency cloud->cmd: p50 %.1f ms, p99 %.1f ms (%d cycles; not a Jetson)" % (
        summary["latency_ms"]["p50"], summary["latency_ms"]["p99"], len(lat)))
    print("MPPI solve time:    p50 %.1f ms, p99 %.1f ms" % (
        summary["solve_ms"]["p50"], summary["solve_ms"]["p99"]))
    for r in robots:
        k = kpis["robots"].get(r, {})
        print("  %s: path %.1f m, min clearance %s m" % (
            r, k.get("path_length", 0.0),
            "%.2f" % k["min_clearance"] if k.get("min_clearance") is not None else "n/a"))
    print("paths: %s   summary: %s" % (png, out / "demo_summary.json"))
    return 0 if (reached == n_goals and collisions == 0 and not interrupted) else 2


if __name__ == "__main__":
    sys.exit(main())
