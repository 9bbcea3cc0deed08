"""Rejection counters and health published as diagnostic_msgs/DiagnosticArray on /diagnostics.

Every node counts what it rejected (by reason) and reports whether its inputs are fresh, so
an operator sees in rqt_robot_monitor (or `ros2 topic echo /diagnostics`) why a robot stopped.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Dict

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.logging import LoggingSeverity


class DiagnosticsReporter:
    """Counters plus a free-form state dict, published periodically by a timer of the node."""

    def __init__(self, node, name: str, hardware_id: str = "", period_s: float = 1.0):
        self._node = node
        self._name = name
        self._hardware_id = hardware_id or node.get_namespace().strip("/") or "robot"
        self._lock = threading.Lock()
        self.rejected = Counter()
        self.counters = Counter()
        self.values: Dict[str, str] = {}
        self._level = DiagnosticStatus.OK
        self._message = "starting"
        self._last_log = {}
        self._pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._timer = node.create_timer(period_s, self.publish)

    def reject(self, reason: str, detail: str = "", what: str = "input",
               log_period: float = 2.0) -> int:
        """Count one rejected input, log it (throttled per reason, so one flood does not hide
        another) and report WARN; returns the running count for that reason."""
        now = time.monotonic()
        with self._lock:
            self.rejected[reason] += 1
            n = self.rejected[reason]
            self._level = DiagnosticStatus.WARN
            self._message = "rejected %s: %s" % (what, reason)
            log = now - self._last_log.get(reason, -1e9) >= log_period
            if log:
                self._last_log[reason] = now
        if log:
            self._node.get_logger().log("rejected %s: %s (%d so far): %s" % (
                what, reason, n, detail), LoggingSeverity.WARN)
        return n

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counters[key] += n

    def set_value(self, key: str, value) -> None:
        with self._lock:
            self.values[key] = str(value)

    def set_level(self, level: int, message: str) -> None:
        with self._lock:
            self._level = level
            self._message = message

    def snapshot(self) -> Dict[str, str]:
        with self._lock:
            kv = {"rejected." + k: str(v) for k, v in sorted(self.rejected.items())}
            kv.update({k: str(v) for k, v in sorted(self.counters.items())})
            kv.update(self.values)
            return kv

    def publish(self) -> None:
        status = DiagnosticStatus()
        status.name = "%s: %s" % (self._node.get_fully_qualified_name(), self._name)
        status.hardware_id = self._hardware_id
        with self._lock:
            status.level = self._level
            status.message = self._message
        status.values = [KeyValue(key=k, value=v) for k, v in self.snapshot().items()]
        msg = DiagnosticArray()
        msg.header.stamp = self._node.get_clock().now().to_msg()
        msg.status = [status]
        self._pub.publish(msg)

    def destroy(self) -> None:
        self._node.destroy_timer(self._timer)
        self._node.destroy_publisher(self._pub)
