"""lifecycle_manager: brings one robot's nodes up in order, reports why one failed, and brings
them down cleanly (the role of Nav2's lifecycle_manager, for the wm nodes started with
autostart:=false).

    ros2 run wm_bringup lifecycle_manager --ros-args -r __ns:=/robot1 \\
        -p node_names:="[perception, planner, collision_monitor, fleet_client]"

* Nav2's interface (nav2_msgs where installed, else wm_msgs' stand-in, see
  wm_common.ros.nav2): `~/manage_nodes` (ManageLifecycleNodes: STARTUP and RESUME bring
  everything up, PAUSE deactivates, RESET and SHUTDOWN bring everything down to unconfigured:
  unlike Nav2's SHUTDOWN nothing is finalized, so a later STARTUP works) and `~/is_active`
  (std_srvs/Trigger: success while every node is up), so nav2_simple_commander's
  lifecycleStartup/lifecycleShutdown and Nav2's tools drive it like Nav2's manager.
* At start (autostart true) and on `~/startup` (std_srvs/Trigger): configure all, then
  activate all, in node_names order (wm_bringup.lifecycle_sequence). A failed transition
  is answered with the node's own reason: its last error line on /rosout during the
  transition (e.g. "configure failed: world model artifact ...: checksum mismatch"), in
  the service response, the log and /diagnostics; what came up is brought down again.
* On `~/shutdown`, SIGINT or SIGTERM: deactivate and clean up in reverse order.
* Every check_period it asks each node's state; a node that is no longer active (crashed,
  or deactivated by hand) is an ERROR on /diagnostics. It does not restart anything: the
  safety gate stops the robot without a planner, and systemd restarts the launch.

The lifecycle services are called (and /rosout is heard) by a second, private node spun by
its own executor thread, so a service callback of this node can wait for them without
dead-locking a single-threaded executor.
"""
from __future__ import annotations

import signal
import threading
import time
from typing import Dict, List, Optional, Tuple

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Log
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from wm_bringup.lifecycle_sequence import LifecycleSequence
from wm_common.ros.diagnostics import DiagnosticsReporter
from wm_common.ros.nav2 import ManageLifecycleNodes
from wm_bringup.params import MANAGER_PARAMS
from wm_common.ros.params import declare_params

TRANSITION_IDS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "cleanup": Transition.TRANSITION_CLEANUP,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
}
STATE_LABELS = {
    State.PRIMARY_STATE_UNCONFIGURED: "unconfigured",
    State.PRIMARY_STATE_INACTIVE: "inactive",
    State.PRIMARY_STATE_ACTIVE: "active",
    State.PRIMARY_STATE_FINALIZED: "finalized",
}


def logger_name(full_node_name: str) -> str:
    """rclpy's logger name of a node: '/robot1/planner' -> 'robot1.planner'."""
    return full_node_name.strip("/").replace("/", ".")


class RosTransport:
    """LifecycleSequence's transport over lifecycle_msgs services (see the module doc)."""

    def __init__(self, client_node: Node, reasons, service_wait: float, timeout: float):
        self.node = client_node
        self.reasons = reasons          # ReasonLog
        self.service_wait = float(service_wait)
        self.timeout = float(timeout)
        self._clients: Dict[str, Tuple] = {}

    def _pair(self, node: str):
        if node not in self._clients:
            self._clients[node] = (
                self.node.create_client(GetState, node + "/get_state"),
                self.node.create_client(ChangeState, node + "/change_state"))
        return self._clients[node]

    def wait_for_services(self, nodes: List[str]) -> List[str]:
        """The nodes whose lifecycle services did not appear within service_wait."""
        deadline = time.monotonic() + self.service_wait
        missing = []
        for node in nodes:
            get, change = self._pair(node)
            left = max(0.0, deadline - time.monotonic())
            if not (get.wait_for_service(timeout_sec=left)
                    and change.wait_for_service(timeout_sec=max(0.0, deadline
                                                                - time.monotonic()))):
                missing.append(node)
        return missing

    def _call(self, client, request, timeout: float):
        if not client.service_is_ready():
            return None
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            return None
        return future.result()

    def state(self, node: str) -> Optional[str]:
        response = self._call(self._pair(node)[0], GetState.Request(), min(self.timeout, 5.0))
        if response is None:
            return None
        return STATE_LABELS.get(response.current_state.id, response.current_state.label)

    def transition(self, node: str, name: str) -> Tuple[bool, str]:
        request = ChangeState.Request()
        request.transition.id = TRANSITION_IDS[name]
        since = time.monotonic()
        response = self._call(self._pair(node)[1], request, self.timeout)
        if response is None:
            return False, "no answer within %.1f s" % self.timeout
        if response.success:
            return True, ""
        return False, self.reasons.since(node, since)


class ReasonLog:
    """The last error lines each node sent to /rosout, to say why a transition failed."""

    def __init__(self):
        self._lock = threading.Lock()
        self._lines: Dict[str, List[Tuple[float, str]]] = {}

    def add(self, logger: str, text: str) -> None:
        with self._lock:
            lines = self._lines.setdefault(logger, [])
            lines.append((time.monotonic(), text))
            del lines[:-5]

    def since(self, node: str, t0: float, wait: float = 1.0) -> str:
        """The node's error lines logged after t0 (waiting up to `wait` s for /rosout, which
        can arrive after the service's answer)."""
        deadline = time.monotonic() + wait
        name = logger_name(node)
        while True:
            with self._lock:
                lines = [text for t, text in self._lines.get(name, []) if t >= t0 - 0.5]
            if lines or time.monotonic() >= deadline:
                return "; ".join(lines) if lines else "the node logged no error"
            time.sleep(0.05)


class LifecycleManager(Node):
    def __init__(self, **kwargs):
        super().__init__("lifecycle_manager", **kwargs)
        p = self.p = declare_params(self, MANAGER_PARAMS)
        ns = self.get_namespace().rstrip("/")
        self.nodes = [n if n.startswith("/") else "%s/%s" % (ns, n) for n in p["node_names"]]
        self.reasons = ReasonLog()
        self.diag = DiagnosticsReporter(self, "lifecycle_manager")
        self.diag.set_value("nodes", ", ".join(self.nodes))
        # the private node that calls the lifecycle services and hears /rosout (see the
        # module docstring): both must be served while a ~/startup call is being answered
        self.client_node = rclpy.create_node(self.get_name() + "_client",
                                             namespace=self.get_namespace(),
                                             context=self.context)
        rosout_qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.VOLATILE)
        self.client_node.create_subscription(Log, "/rosout", self._on_rosout, rosout_qos)
        self.client_executor = SingleThreadedExecutor(context=self.context)
        self.client_executor.add_node(self.client_node)
        self.client_thread = threading.Thread(target=self._spin_clients, daemon=True)
        self.client_thread.start()
        self.transport = RosTransport(self.client_node, self.reasons, p["service_wait"],
                                      p["transition_timeout"])
        self.sequence = LifecycleSequence(self.nodes, self.transport,
                                          log=self.get_logger().info)
        self._busy = threading.Lock()
        self.up = False            # the last startup succeeded and no shutdown since
        self.failure = ""
        self.create_service(Trigger, "~/startup", self._on_startup)
        self.create_service(Trigger, "~/shutdown", self._on_shutdown)
        self.create_service(ManageLifecycleNodes, "~/manage_nodes", self._on_manage_nodes)
        self.create_service(Trigger, "~/is_active", self._on_is_active)
        self._check_stop = threading.Event()
        self.check_thread = threading.Thread(target=self._check_loop, daemon=True)
        self.check_thread.start()
        self.diag.set_level(DiagnosticStatus.WARN, "nodes not started")

    def _spin_clients(self) -> None:
        try:
            self.client_executor.spin()
        except (ExternalShutdownException, RuntimeError):
            pass   # the context is shutting down

    def _on_rosout(self, msg: Log) -> None:
        if msg.level >= Log.ERROR:
            self.reasons.add(msg.name, msg.msg)

    # ---------------------------------------------------------------- up and down
    def startup(self) -> Tuple[bool, str]:
        with self._busy:
            missing = self.transport.wait_for_services(self.nodes)
            if missing:
                ok, reason = False, "not running (no lifecycle services within %.0f s): %s" % (
                    self.p["service_wait"], ", ".join(missing))
                self.sequence.shutdown()
            else:
                ok, reason = self.sequence.startup()
            self.up, self.failure = ok, reason
        if ok:
            self.diag.set_level(DiagnosticStatus.OK, "all nodes active")
        else:
            self.diag.count("startup_failures")
            self.diag.set_level(DiagnosticStatus.ERROR, "startup failed: " + reason)
            self.get_logger().error("startup failed: %s" % reason)
        return ok, reason

    def shutdown(self, to: str = "unconfigured") -> Tuple[bool, List[str]]:
        with self._busy:
            self.up = False
            ok, problems = self.sequence.shutdown(to)
        what = "nodes paused" if to == "inactive" else "nodes brought down"
        self.diag.set_level(DiagnosticStatus.WARN if ok else DiagnosticStatus.ERROR,
                            what + ("" if ok else ": " + "; ".join(problems)))
        for problem in problems:
            self.get_logger().warning("shutdown: %s" % problem)
        return ok, problems

    def _on_startup(self, request, response):
        response.success, response.message = self.startup()
        if response.success:
            response.message = "all nodes active: " + ", ".join(self.nodes)
        return response

    def _on_shutdown(self, request, response):
        ok, problems = self.shutdown()
        response.success = ok
        response.message = "; ".join(problems) if problems else "all nodes unconfigured"
        return response

    def _on_manage_nodes(self, request, response):
        """Nav2's ManageLifecycleNodes commands."""
        cmd = ManageLifecycleNodes.Request
        if request.command in (cmd.STARTUP, cmd.RESUME):
            response.success = self.startup()[0]
        elif request.command == cmd.PAUSE:
            response.success = self.shutdown("inactive")[0]
        elif request.command in (cmd.RESET, cmd.SHUTDOWN):
            response.success = self.shutdown()[0]
        else:
            self.diag.reject("manage_nodes_command", "unknown command %d" % request.command)
            response.success = False
        return response

    def _on_is_active(self, request, response):
        response.success = self.up
        response.message = ("all nodes active: " + ", ".join(self.nodes) if self.up else
                            "not active" + (": " + self.failure if self.failure else ""))
        return response

    def _check_loop(self) -> None:
        while not self._check_stop.wait(self.p["check_period"]):
            if not self.up or not self._busy.acquire(blocking=False):
                continue
            try:
                bad = self.sequence.not_active()
            finally:
                self._busy.release()
            if bad:
                what = ", ".join("%s %s" % (n, s or "not answering") for n, s in bad)
                self.diag.set_level(DiagnosticStatus.ERROR, "not active: " + what)
                self.get_logger().error("not active: %s" % what, throttle_duration_sec=5.0)
            else:
                self.diag.set_level(DiagnosticStatus.OK, "all nodes active")

    def destroy_node(self):
        self._check_stop.set()
        self.check_thread.join(timeout=10.0)
        self.client_executor.shutdown()
        self.client_thread.join(timeout=5.0)
        self.client_node.destroy_node()
        return super().destroy_node()


def main(args=None) -> int:
    # our own signal handling: the nodes are brought down over DDS *before* the context
    # goes, which rclpy's default SIGINT handler would shut down at once
    from rclpy.signals import SignalHandlerOptions
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    node = LifecycleManager()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    code = 0
    try:
        if node.p["autostart"]:
            ok, _ = node.startup()
            code = 0 if ok else 1
        stop.wait()
        node.get_logger().info("stopping: bringing the nodes down")
        node.shutdown()
    finally:
        executor.shutdown()
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
