"""Closed-loop runs of the real nodes: one scenario, as separate processes over DDS.

Starts a private redis-server (unless WM_REDIS_URL is set), the simulator (owning /clock, in
lockstep with the robots), and per robot a perception and a planner process exactly as on a
robot without the launch library (`<exe> --ros-args --params-file config/robot.yaml
-r __ns:=/<id> -p use_sim_time:=true`). Sends every robot its goal sequence through the
navigate_to_pose action and measures, from ground truth and the simulator's cycle reports:
navigation error at each goal, contacts, success, time against the straight-line optimum,
speed as a fraction of top speed, cloud-to-command latency (wall clock), and time lost after
layout changes. Used by `make demo` (wm_eval.demo) and `make eval` (wm_eval.evaluate).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml

from wm_eval.redis_server import RedisServer
from wm_common.footprint import (DEFAULT_FOOTPRINT, Footprint, contains,
                                 point_polygon_distance)
from wm_eval.paths import share_dir


def executable(package: str, name: str) -> str:
    from ament_index_python.packages import get_package_prefix
    return str(Path(get_package_prefix(package)) / "lib" / package / name)


# One robot's nodes, in start order. The planner's command goes to the safety gate
# (cmd_vel_nav), which alone publishes the base's cmd_vel.
ROBOT_NODES = (("wm_perception", "perception"), ("wm_planner", "planner"),
               ("wm_safety", "collision_monitor"), ("wm_fleet", "fleet_client"))


def robot_node_cmd(pkg: str, exe: str, robot_id: str, config: Path,
                   extra: Sequence[str] = ()) -> List[str]:
    """The command line of one robot node, as robot.launch.py would start it."""
    cmd = [executable(pkg, exe), "--ros-args", "--params-file", str(config / "robot.yaml"),
           "-r", "__ns:=/" + robot_id, "-p", "use_sim_time:=true"]
    if exe == "planner":
        cmd += ["-r", "cmd_vel:=cmd_vel_nav"]
    if exe == "collision_monitor":
        # stamped, so the simulated base logs when each command was issued
        cmd += ["-p", "cmd_vel_stamped:=true"]
    return cmd + list(extra)


def scenario_to_yaml(sc) -> dict:
    """The scenario as the simulator reads it (a file the sim process loads)."""
    events = []
    for e in sc.events:
        if e.kind == "move_obstacle":
            events.append({"t": e.t, "move_obstacle": e.name, "to": list(e.pose)})
        elif e.kind == "add_obstacle":
            b = e.box
            events.append({"t": e.t, "add_obstacle": {
                "name": b.name, "center": [b.cx, b.cy], "size": [b.sx, b.sy], "yaw": b.yaw,
                "height": b.height, "reflectivity": b.reflectivity}})
        else:
            events.append({"t": e.t, "set_payload": {"robot": e.name, "mass": e.mass}})
    return {"name": sc.name, "world": sc.world, "duration": sc.duration, "seed": sc.seed,
            "description": sc.description, "fleet_sharing": sc.fleet_sharing,
            "lidar": {"rings": sc.lidar_rings, "columns": sc.lidar_columns},
            "localization": {"sigma_xy": sc.localization_sigma_xy,
                             "sigma_yaw": sc.localization_sigma_yaw,
                             "correlation_time": sc.localization_correlation_time},
            "robots": [{"id": r.id, "spawn": list(r.spawn), "payload": r.payload,
                        "goals": [list(g) for g in r.goals]} for r in sc.robots],
            "events": events,
            "static_obstacles": [{"name": b.name, "center": [b.cx, b.cy], "size": [b.sx, b.sy],
                                  "yaw": b.yaw, "height": b.height,
                                  "reflectivity": b.reflectivity} for b in sc.static_boxes]}


class Processes:
    """Child processes in their own sessions, stopped with SIGINT then SIGKILL."""

    def __init__(self, logdir: Path, env: dict):
        self.logdir, self.env, self.children = logdir, env, []
        self.expected = set()  # processes a fault drill stops on purpose (by Popen pid)

    def start(self, name: str, cmd: list) -> subprocess.Popen:
        n = sum(1 for c in self.children if c[0] == name)
        log = open(self.logdir / ("%s%s.log" % (name, "_%d" % (n + 1) if n else "")), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                             start_new_session=True)
        self.children.append((name, p, log))
        return p

    def latest(self, name: str) -> subprocess.Popen:
        return [p for n, p, _ in self.children if n == name][-1]

    def signal(self, name: str, sig: int, expect_exit: bool = True) -> None:
        """Send `sig` to the newest process called `name` (a fault drill)."""
        p = self.latest(name)
        if expect_exit:
            self.expected.add(p.pid)
        os.killpg(p.pid, sig)

    def dead(self):
        return [(n, p.returncode) for n, p, _ in self.children
                if p.poll() is not None and p.pid not in self.expected]

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


class DrillContext:
    """What a fault drill may touch during a run: the simulated time, the node processes
    (signal, restart), the runner's ROS node (publish, set parameters) and notes."""

    def __init__(self, monitor, procs: "Processes", config: Path, planner_overrides):
        self.monitor, self.procs, self.config = monitor, procs, config
        self.node = monitor.node
        self.planner_overrides = list(planner_overrides)
        self.sim_t = 0.0
        self.state: Dict[str, object] = {}   # the drill's own bookkeeping
        self.events: List[Tuple[float, str]] = []
        self.finished = False                # a drill sets True to end the run

    def note(self, what: str) -> None:
        self.events.append((self.sim_t, what))

    def restart(self, robot_id: str, pkg: str, exe: str, extra: Sequence[str] = ()):
        extra = list(extra) + (self.planner_overrides if exe == "planner" else [])
        return self.procs.start("%s_%s" % (robot_id, exe),
                                robot_node_cmd(pkg, exe, robot_id, self.config, extra))


class Monitor:
    """The runner's own ROS node: sends goals, records ground truth and the sim's cycles."""

    def __init__(self, scenario, v_max: float):
        import rclpy
        from nav_msgs.msg import Odometry
        from rclpy.action import ActionClient
        from rclpy.executors import SingleThreadedExecutor
        from std_msgs.msg import String

        from wm_common.ros.qos import SENSOR_QOS
        from wm_common.ros.nav2 import NavigateToPose

        self.NavigateToPose = NavigateToPose
        self.scenario = scenario
        self.v_max = v_max
        self.node = rclpy.create_node("wm_runner")
        self.lock = threading.Lock()
        ids = [r.id for r in scenario.robots]
        self.truth: Dict[str, list] = {r: [] for r in ids}   # (t, x, y, yaw, v)
        self.cycles: List[dict] = []
        self.goals: Dict[str, list] = {r: [] for r in ids}
        self.sim_t = 0.0
        self.clients = {}
        for r in ids:
            self.node.create_subscription(Odometry, "/%s/ground_truth" % r,
                                          lambda m, r=r: self._on_truth(r, m), SENSOR_QOS)
            self.clients[r] = ActionClient(self.node, NavigateToPose, "/%s/navigate_to_pose" % r)
        self._String = String
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _on_truth(self, r, msg) -> None:
        from wm_common.ros.convert import pose_to_pose2d, stamp_to_sec
        p = pose_to_pose2d(msg.pose.pose)
        with self.lock:
            self.truth[r].append((stamp_to_sec(msg.header.stamp) - 1.0, p.x, p.y, p.yaw,
                                  msg.twist.twist.linear.x))

    def _on_cycle(self, msg) -> None:
        doc = json.loads(msg.data)
        with self.lock:
            self.cycles.append(doc)
            self.sim_t = doc["t"]

    def observe(self) -> None:
        """Subscribe to the simulator's cycle reports: with `wait_for_observer` the simulator
        holds time until this subscription exists, so no simulated time passes before the
        goals go out."""
        self.node.create_subscription(self._String, "/sim/cycle", self._on_cycle, 50)
        deadline = time.monotonic() + 10.0
        while self.sim_t == 0.0 and not self.cycles and time.monotonic() < deadline:
            time.sleep(0.01)

    def last_pose(self, r):
        with self.lock:
            return self.truth[r][-1] if self.truth[r] else None

    def wait_for_servers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(c.wait_for_server(timeout_sec=max(0.1, deadline - time.monotonic()))
                   for c in self.clients.values())

    def navigate(self, r, goal_pose, stop: threading.Event) -> dict:
        """Send one goal and wait for its result (blocking; one thread per robot)."""
        from geometry_msgs.msg import PoseStamped

        from wm_common.ros.convert import pose2d_to_pose
        goal = self.NavigateToPose.Goal()
        goal.pose = PoseStamped()
        goal.pose.header.frame_id = "map"
        goal.pose.pose = pose2d_to_pose(goal_pose)
        start = self.last_pose(r)
        if start is None:  # no ground truth yet: the robot is where the scenario spawned it
            spawn = next(s.spawn for s in self.scenario.robots if s.id == r)
            start = (0.0, spawn.x, spawn.y)
        rec = {"goal": [round(v, 3) for v in goal_pose], "t_start": self.sim_t,
               "start": [start[1], start[2]]}
        fut = self.clients[r].send_goal_async(goal)
        while not fut.done() and not stop.is_set():
            time.sleep(0.02)
        handle = fut.result() if fut.done() else None
        if handle is None or not handle.accepted:
            rec.update(status="rejected")
            return rec
        res_fut = handle.get_result_async()
        while not res_fut.done() and not stop.is_set():
            time.sleep(0.05)
        if not res_fut.done():
            handle.cancel_goal_async()
            rec.update(status="timeout", t_end=self.sim_t)
            return rec
        from action_msgs.msg import GoalStatus
        response = res_fut.result()
        res = response.result
        end = self.last_pose(r)
        # Humble's nav2_msgs results are empty: the status says whether it arrived
        rec.update(status="reached" if response.status == GoalStatus.STATUS_SUCCEEDED
                   else "failed", error_code=int(getattr(res, "error_code", -1)),
                   error_msg=getattr(res, "error_msg", ""), t_end=self.sim_t)
        if end is not None:
            rec["final"] = [end[1], end[2]]
            rec["error_cm"] = 100.0 * math.hypot(end[1] - goal_pose.x, end[2] - goal_pose.y)
        return rec

    def run_robot(self, spec, stop: threading.Event, keep_going: bool = False) -> None:
        """The robot's goals in order; after a goal that was not reached, the next one
        (keep_going: an evaluation of many goals) or none (a scenario's sequence)."""
        for g in spec.goals:
            if stop.is_set():
                break
            rec = self.navigate(spec.id, g, stop)
            with self.lock:
                self.goals[spec.id].append(rec)
            if rec["status"] != "reached" and (not keep_going or rec["status"] == "timeout"):
                break

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def robot_footprint(robot_yaml: Optional[dict] = None) -> Footprint:
    """The planner's `footprint` polygon from config/robot.yaml (read from the installed/repo
    file when `robot_yaml` is not given); the default body when the file sets none."""
    if robot_yaml is None:
        robot_yaml = yaml.safe_load((share_dir() / "config" / "robot.yaml").read_text())
    p = robot_yaml["/**/planner"]["ros__parameters"]
    return Footprint.from_flat(p.get("footprint") or DEFAULT_FOOTPRINT, spacing=0.02)


def layouts(scenario) -> List[Tuple[float, object]]:
    """The obstacle layout over the run: [(t_from, World)], in time order, starting with the
    scenario's world at -inf; each move_obstacle / add_obstacle event (applied in time order,
    as the simulator does) gives the World valid from its t on. set_payload changes nothing."""
    from wm_sim.world import World
    world = scenario.load_world()
    out = [(-math.inf, world)]
    for ev in sorted(scenario.events, key=lambda e: e.t):
        if ev.kind == "move_obstacle":
            boxes = [dataclasses.replace(b, cx=float(ev.pose.x), cy=float(ev.pose.y),
                                         yaw=float(ev.pose.yaw)) if b.name == ev.name else b
                     for b in world.boxes]
        elif ev.kind == "add_obstacle":
            boxes = list(world.boxes) + [ev.box]
        else:
            continue
        world = World(boxes, world.bounds, world.spawns, world.goals, world.name)
        out.append((float(ev.t), world))
    return out


def footprint_clearance(world, poses, footprint: Footprint) -> np.ndarray:
    """Gap [m] between the footprint polygon at each (x, y, yaw) pose (N, 3) and the nearest
    obstacle of `world`: the smallest signed distance on its boundary (sampled every
    footprint.spacing), or, where a box corner lies inside the body (a box small enough to
    be swallowed whole), minus that corner's depth. Negative: overlap."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 3)
    out = np.empty(poses.shape[0])
    corners = (np.concatenate([b.corners() for b in world.boxes]) if world.boxes
               else np.zeros((0, 2)))
    for i in range(0, poses.shape[0], 256):    # bounded temporaries on long paths
        chunk = poses[i:i + 256]
        pts = footprint.boundary_at(chunk)
        gap = world.signed_distance(pts).min(axis=1)
        if corners.shape[0]:
            c, s = np.cos(chunk[:, 2:3]), np.sin(chunk[:, 2:3])
            dx = corners[None, :, 0] - chunk[:, 0:1]
            dy = corners[None, :, 1] - chunk[:, 1:2]
            body = np.stack([c * dx + s * dy, -s * dx + c * dy], axis=-1)   # (n, C, 2)
            inside = contains(body, footprint.polygon)
            if inside.any():
                depth = np.where(inside, point_polygon_distance(body, footprint.polygon), 0.0)
                gap = np.minimum(gap, np.where(inside.any(axis=1), -depth.max(axis=1),
                                               np.inf))
        out[i:i + 256] = gap
    return out


def min_clearance(scenario, truth, footprint) -> Dict[str, Optional[float]]:
    """robot -> the smallest footprint gap along its true path (samples (t, x, y, yaw, ...)),
    each sample against the layout valid at its time (an event at t counts from t on)."""
    lay = layouts(scenario)
    starts = np.array([t for t, _ in lay])
    out: Dict[str, Optional[float]] = {}
    for r, tr in truth.items():
        if not tr:
            out[r] = None
            continue
        a = np.array([s[:4] for s in tr], dtype=np.float64)
        which = np.searchsorted(starts, a[:, 0], side="right") - 1
        best = math.inf
        for k, (_, world) in enumerate(lay):
            sel = which == k
            if np.any(sel):
                best = min(best, float(np.min(footprint_clearance(world, a[sel, 1:4],
                                                                  footprint))))
        out[r] = best
    return out


def kpis(scenario, truth, cycles, goals, v_max: float,
         footprint: Optional[np.ndarray] = None) -> dict:
    """The scenario's KPIs (definitions in the README's evaluation section).

    footprint: the Footprint polygon for the clearance KPI (default: robot.yaml's).
    """
    moves = sum(len(g) for g in goals.values())
    contacts = {}
    for r in truth:
        flags = [bool(c["contact"].get(r)) for c in cycles]
        contacts[r] = int(sum(1 for a, b in zip([False] + flags[:-1], flags) if b and not a))
    n_contacts = sum(contacts.values())
    reached = [g for gs in goals.values() for g in gs if g["status"] == "reached"]
    n_goals = sum(len(r.goals) for r in scenario.robots)
    errors = [g["error_cm"] for g in reached if "error_cm" in g]
    ratios = []
    for g in reached:
        if g.get("start") is None:
            continue
        d = math.hypot(g["goal"][0] - g["start"][0], g["goal"][1] - g["start"][1])
        if d > 0.5:
            ratios.append((g["t_end"] - g["t_start"]) / (d / v_max))
    speeds = []
    for r, tr in truth.items():
        for g in goals[r]:
            if "t_end" not in g:
                continue
            speeds += [abs(s[4]) for s in tr if g["t_start"] <= s[0] <= g["t_end"]]
    lat = [v for c in cycles for v in c["latency_ms"].values()]
    lost = []
    for ev in scenario.events:
        if ev.kind == "set_payload":
            continue
        for r, tr in truth.items():
            for g in goals[r]:
                if g["t_start"] <= ev.t <= g.get("t_end", -1):
                    slow = [s for s in tr if ev.t <= s[0] <= g["t_end"]
                            and abs(s[4]) < 0.2 * v_max]
                    # truth arrives at the physics rate: samples x their spacing = seconds
                    dt = (tr[-1][0] - tr[0][0]) / max(1, len(tr) - 1)
                    lost.append(len(slow) * dt)
    clearance = min_clearance(scenario, truth,
                              robot_footprint() if footprint is None else footprint)
    known = [v for v in clearance.values() if v is not None]
    sim_t = cycles[-1]["t"] if cycles else 0.0
    wall = (cycles[-1]["wall"] - cycles[0]["wall"]) if len(cycles) > 1 else 0.0

    def pct(v, q):
        return float(np.percentile(v, q)) if len(v) else None
    return {
        "goals": n_goals, "goals_reached": len(reached),
        "success_rate": len(reached) / n_goals if n_goals else None,
        "nav_error_cm_mean": float(np.mean(errors)) if errors else None,
        "nav_error_cm_std": float(np.std(errors)) if errors else None,
        "nav_error_cm_max": float(np.max(errors)) if errors else None,
        "contacts": n_contacts, "contacts_per_robot": contacts,
        "collisions_per_1000_moves": 1000.0 * n_contacts / moves if moves else None,
        "time_vs_straight_line": float(np.mean(ratios)) if ratios else None,
        "mean_speed_fraction": float(np.mean(speeds)) / v_max if speeds else None,
        "latency_ms_p50": pct(lat, 50), "latency_ms_p99": pct(lat, 99), "cycles": len(cycles),
        "seconds_lost_after_layout_change": float(np.sum(lost)) if lost else None,
        "sim_seconds": sim_t, "wall_seconds": wall,
        "real_time_factor": sim_t / wall if wall > 0 else None,
        "min_clearance_m": min(known) if known else None,
        "min_clearance_m_per_robot": clearance,
    }


def contact_points(truth, cycles) -> Dict[str, list]:
    """robot -> (x, y) where each contact episode began (true pose nearest in time)."""
    out = {}
    for r, tr in truth.items():
        if not tr:
            continue
        times = np.array([s[0] for s in tr])
        prev = False
        for c in cycles:
            now = bool(c["contact"].get(r))
            if now and not prev:
                i = int(np.argmin(np.abs(times - c["t"])))
                out.setdefault(r, []).append((tr[i][1], tr[i][2]))
            prev = now
    return out


def run_scenario(scenario, out: Path, engine: str = "mujoco", wall_timeout: float = 600.0,
                 stop: Optional[threading.Event] = None, quiet: bool = False,
                 planner_params: Optional[Dict[str, str]] = None,
                 drill: Optional[Callable[["DrillContext"], None]] = None,
                 node_params: Optional[Dict[str, Dict[str, str]]] = None,
                 keep_going: bool = False) -> dict:
    """Run one scenario closed-loop; returns a summary dict (also written as JSON).

    planner_params: extra `-p name:=value` overrides for every planner (e.g. a fixed seed).
    node_params: the same for any node by executable name ("simulator", "perception",
    "planner", "collision_monitor"), e.g. {"collision_monitor": {"speed_zones": "x.yaml"}}.
    drill: called about every 0.1 s of wall time with a DrillContext, to inject faults
    (wm_eval.drills). keep_going: a robot whose goal ends unreached (aborted with a
    reason) goes on to its next goal.
    """
    import rclpy

    from wm_sim.render import plot_paths
    out = Path(out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    config = share_dir() / "config"
    robot_yaml = yaml.safe_load((config / "robot.yaml").read_text())
    v_max = float(robot_yaml["/**/planner"]["ros__parameters"].get("v_max", 0.8))
    footprint = robot_footprint(robot_yaml)
    scenario_file = out / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(scenario_to_yaml(scenario), sort_keys=False))
    stop = stop or threading.Event()
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))

    env = os.environ.copy()
    # A private DDS domain on localhost: the run never talks to other runs or robots.
    if "WM_RUN_DOMAIN_ID" in env:
        env["ROS_DOMAIN_ID"] = env["WM_RUN_DOMAIN_ID"]
    else:
        env["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(101, 200))
    env["ROS_LOCALHOST_ONLY"] = "1"
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    saved_env = {k: os.environ.get(k) for k in ("ROS_DOMAIN_ID", "ROS_LOCALHOST_ONLY",
                                                  "ROS_AUTOMATIC_DISCOVERY_RANGE")}
    os.environ.update({k: env[k] for k in saved_env})
    redis = None
    if not env.get("WM_REDIS_URL"):
        redis = RedisServer().start()
        env["WM_REDIS_URL"] = redis.url  # to the children through the environment only
        say("redis-server (embedded default) on %s" % redis.public_url)
    procs = Processes(out / "logs", env)
    monitor = None
    ctx = None
    context_started = False
    params = {k: dict(v) for k, v in (node_params or {}).items()}
    params.setdefault("planner", {}).update(planner_params or {})

    def args_for(exe: str) -> List[str]:
        return [a for k, v in sorted(params.get(exe, {}).items())
                for a in ("-p", "%s:=%s" % (k, v))]
    try:
        procs.start("simulator", [
            executable("wm_sim", "simulator"), "--ros-args",
            "--params-file", str(config / "sim.yaml"), "-p", "scenario:=" + str(scenario_file),
            "-p", "engine:=" + engine, "-p", "wait_for_observer:=true",
            "-p", "cmd_vel_stamped:=true"] + args_for("simulator"))
        overrides = args_for("planner")
        for r in scenario.robots:
            for pkg, exe in ROBOT_NODES:
                if exe == "fleet_client" and not scenario.fleet_sharing:
                    continue
                procs.start("%s_%s" % (r.id, exe), robot_node_cmd(
                    pkg, exe, r.id, config, args_for(exe)))
        say("started simulator (%s) and %d x (perception, planner, collision_monitor, "
            "fleet_client) on "
            "ROS_DOMAIN_ID=%s; "
            "logs in %s" % (engine, len(scenario.robots), env["ROS_DOMAIN_ID"], out / "logs"))
        rclpy.init()
        context_started = True
        monitor = Monitor(scenario, v_max)
        if not monitor.wait_for_servers(60.0) or procs.dead():
            raise RuntimeError("nodes did not come up: %s (see %s)" % (procs.dead(),
                                                                       out / "logs"))
        monitor.observe()  # the simulator starts time once it sees this subscriber
        t_wall = time.monotonic()
        ctx = DrillContext(monitor, procs, config, overrides)
        ctx.redis = redis  # the embedded server (None when WM_REDIS_URL came from outside)
        halt = threading.Event()  # ends this run (limits, a dead node, or the caller's stop)
        threads = [threading.Thread(target=monitor.run_robot, args=(spec, halt, keep_going),
                                    daemon=True) for spec in scenario.robots]
        for t in threads:
            t.start()
        last_print = 0.0
        while any(t.is_alive() for t in threads):
            if drill is not None:
                ctx.sim_t = monitor.sim_t
                drill(ctx)
                if ctx.finished:
                    halt.set()
            if procs.dead():
                say("a node exited: %s" % procs.dead())
                halt.set()
            if monitor.sim_t > scenario.duration:
                say("simulated time limit (%.0f s) reached" % scenario.duration)
                halt.set()
            if time.monotonic() - t_wall > wall_timeout:
                say("wall-clock limit (%.0f s) reached" % wall_timeout)
                halt.set()
            if stop.is_set():
                halt.set()
            if halt.is_set():
                for t in threads:
                    t.join(5.0)
                break
            if not quiet and time.monotonic() - last_print > 5.0:
                last_print = time.monotonic()
                done = sum(len(g) for g in monitor.goals.values())
                total = sum(len(r.goals) for r in scenario.robots)
                say("  t_sim %6.1f s  goals %d/%d" % (monitor.sim_t, done, total))
            time.sleep(0.1)
        with monitor.lock:
            truth = {r: list(v) for r, v in monitor.truth.items()}
            cycles = list(monitor.cycles)
            goals = {r: list(v) for r, v in monitor.goals.items()}
    finally:
        if monitor is not None:
            monitor.close()
        procs.stop_all()
        if context_started:
            rclpy.try_shutdown()
        if redis is not None:
            redis.stop()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    summary = {"scenario": scenario.name, "world": scenario.world, "engine": engine,
               "drill_events": [] if ctx is None else ctx.events,
               "rejected_cmd_vel": cycles[-1].get("rejected_cmd_vel", {}) if cycles else {},
               "robots": [r.id for r in scenario.robots], "goals": goals,
               "latencies_ms": [v for c in cycles for v in c["latency_ms"].values()],
               # true paths at 10 Hz (ground truth arrives at the physics rate, 50 Hz)
               "paths": {r: [[round(x, 4) for x in s[:3]] for s in tr[::5]]
                         for r, tr in truth.items()},
               "kpis": kpis(scenario, truth, cycles, goals, v_max, footprint),
               # every command each base received: [t_sim, v, w] (fault drills check them)
               "commands": {r.id: [c for cy in cycles for c in cy.get("cmds", {}).get(r.id, [])]
                            for r in scenario.robots},
               "true_speed": {r: [[round(s[0], 3), round(s[4], 4)] for s in tr[::5]]
                              for r, tr in truth.items()},
               "machine_note": "measured on the development machine, not a Jetson"}
    world = scenario.load_world()
    for ev in scenario.events:  # draw the layout as it ended
        if ev.kind == "add_obstacle":
            world = type(world)(list(world.boxes) + [ev.box], world.bounds, world.spawns,
                                world.goals, world.name)
    paths = {r: np.array([[s[1], s[2]] for s in tr]) for r, tr in truth.items() if tr}
    k = summary["kpis"]
    summary["png"] = plot_paths(
        world, paths, goals={r.id: r.goals[-1] for r in scenario.robots if r.goals},
        collisions=contact_points(truth, cycles),
        out_png=str(out / "paths.png"),
        title="%s: %d/%d goals, %d contacts" % (scenario.name, k["goals_reached"], k["goals"],
                                                k["contacts"]))
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
