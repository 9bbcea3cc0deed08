"""Helpers for tests that run the real nodes as separate processes over DDS."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "ros2_ws" / "install"
CONFIG = REPO / "config"


def executable(package: str, name: str) -> str:
    """Path of a node executable as `ros2 run <package> <name>` would find it."""
    path = INSTALL / package / "lib" / package / name
    if not path.exists():
        raise FileNotFoundError("%s not built: run make test (colcon build)" % path)
    return str(path)


class ProcessGroup:
    def __init__(self, logdir: Path):
        self.logdir = Path(logdir)
        self.procs = []

    def start(self, package: str, exe: str, *ros_args: str, name: str = "") -> subprocess.Popen:
        return self.run([executable(package, exe), "--ros-args", *ros_args], name or exe)

    def run(self, cmd, name: str) -> subprocess.Popen:
        """Any command (e.g. `ros2 launch ...`) in its own session, logged to <name>.log."""
        log = open(self.logdir / ("%s.log" % name), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
                             start_new_session=True)
        p.log_path = self.logdir / ("%s.log" % name)
        p.log_file = log
        self.procs.append(p)
        return p

    def log(self, p) -> str:
        p.log_file.flush()
        return Path(p.log_path).read_text(errors="replace")

    def stop(self, p, timeout: float = 5.0) -> int:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        p.log_file.close()
        return p.returncode

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            if not p.log_file.closed:
                self.stop(p)


class SpinningNode:
    """A plain rclpy node in the test process with its own context and executor thread."""

    def __init__(self, name: str):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # executor shut down with the context
            pass

    def collect(self, msg_type, topic: str, qos=10):
        """Subscribe and return a list that fills with received messages."""
        got = []
        self.node.create_subscription(msg_type, topic, got.append, qos)
        return got

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def service_client(node, srv_type, name: str):
    """One client per (node, service), kept: a new client's first request can go unanswered
    when the server has matched the request topic but not yet the client's reply reader
    (wait_for_service only sees the former), so tests do not make a new one per call."""
    clients = node.__dict__.setdefault("_test_clients", {})
    key = (srv_type, name)
    if key not in clients:
        clients[key] = node.create_client(srv_type, name)
    return clients[key]


def call(node, srv_type, name: str, request, timeout: float = 20.0,
         resend_after: float = 0.0):
    """Call a service of another process and return its response (asserts it answered).
    For a query (no side effect), `resend_after` > 0 sends the request again after that many
    seconds without an answer (see service_client)."""
    client = service_client(node, srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout), "no service " + name
    deadline = time.monotonic() + timeout
    futs, sent = [client.call_async(request)], time.monotonic()
    while time.monotonic() < deadline:
        done = next((f for f in futs if f.done()), None)
        if done is not None:
            return done.result()
        time.sleep(0.02)
        if resend_after > 0 and time.monotonic() - sent > resend_after:
            futs.append(client.call_async(request))
            sent = time.monotonic()
    done = next((f for f in futs if f.done()), None)
    assert done is not None, "no answer from %s (%d requests)" % (name, len(futs))
    return done.result()


def wait_for(predicate, timeout: float, period: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())


def corrupt_artifact(tmp_path: Path) -> Path:
    """A copy of the shipped world model with one bit of weights.npz flipped (its checksum
    no longer matches): what a bad copy or a tampered file looks like to the loader."""
    import shutil

    bad = Path(tmp_path) / "worldmodel-1.0.0"
    shutil.copytree(REPO / "src" / "wm_world_model" / "models" / "worldmodel-1.0.0", bad)
    data = bytearray((bad / "weights.npz").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bad / "weights.npz").write_bytes(bytes(data))
    return bad


def start_sim_robot(procs, ns: str = "/robot1", world: str = "test_scene"):
    """The simulator with one robot (named like `ns`), its perception and its planner, on
    simulated time: (sim, perception, planner) processes."""
    sim = procs.start("wm_sim", "simulator", "--params-file", str(CONFIG / "sim.yaml"),
                      "-p", "world:=" + world, "-p", "robots:=[%s]" % ns.strip("/"),
                      name="simulator")
    # the simulator owns /clock (lockstep): the robot's nodes run on simulated time
    per = procs.start("wm_perception", "perception", "--params-file",
                      str(CONFIG / "robot.yaml"), "-r", "__ns:=" + ns,
                      "-p", "use_sim_time:=true", name="perception")
    pla = procs.start("wm_planner", "planner", "--params-file", str(CONFIG / "robot.yaml"),
                      "-r", "__ns:=" + ns, "-p", "use_sim_time:=true", name="planner")
    return sim, per, pla
