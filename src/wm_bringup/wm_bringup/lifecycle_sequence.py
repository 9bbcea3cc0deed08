"""The order in which one robot's lifecycle nodes come up and go down (no rclpy).

Up: every node is configured in the given order, then every node is activated in the same
order (perception before the planner before the safety gate, so no node activates before
the ones it listens to can answer). The first failure stops the sequence, everything that
came up is brought down again in reverse order, and the failure is reported with the
node's own reason (its error log line, captured by the transport).

Down: reverse order, deactivate what is active, then clean up what is inactive; a node that
is already gone (crashed, or stopped by the same Ctrl-C) is reported, not waited for.

The transport is what talks to the nodes (lifecycle_msgs services over DDS in
wm_bringup.lifecycle_manager); it answers `state(node)` with a label ('unconfigured',
'inactive', 'active', 'finalized') or None when the node does not answer, and
`transition(node, name)` with (ok, reason).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

UP = ("configure", "activate")


class LifecycleSequence:
    def __init__(self, nodes: Sequence[str], transport, log: Callable[[str], None] = print):
        if not nodes:
            raise ValueError("a lifecycle manager needs at least one node")
        if len(set(nodes)) != len(nodes):
            raise ValueError("node names must be unique: %s" % list(nodes))
        self.nodes = list(nodes)
        self.transport = transport
        self.log = log

    def startup(self) -> Tuple[bool, str]:
        """(True, '') when every node is active; else (False, reason) and all brought down."""
        for name, before in (("configure", "unconfigured"), ("activate", "inactive")):
            for node in self.nodes:
                state = self.transport.state(node)
                if state is None:
                    return self._abort("%s: not running (no lifecycle services)" % node)
                if state != before:
                    if (name, state) in (("configure", "inactive"), ("configure", "active"),
                                         ("activate", "active")):
                        continue   # already there (e.g. a manager restarted)
                    return self._abort("%s: is %s, cannot %s" % (node, state, name))
                self.log("%s: %s" % (node, name))
                ok, reason = self.transport.transition(node, name)
                if not ok:
                    reason = reason or "no reason given"
                    if reason.startswith(name + " failed: "):   # the node's own wording
                        reason = reason[len(name + " failed: "):]
                    return self._abort("%s: %s failed: %s" % (node, name, reason))
        self.log("all %d nodes active: %s" % (len(self.nodes), ", ".join(self.nodes)))
        return True, ""

    def shutdown(self, to: str = "unconfigured") -> Tuple[bool, List[str]]:
        """Bring every node down to `to` ("unconfigured", or "inactive": a pause), in
        reverse order; (all ok, problems)."""
        if to not in ("unconfigured", "inactive"):
            raise ValueError("shutdown to unconfigured or inactive, not %r" % to)
        steps = (("deactivate", "active"),) if to == "inactive" else \
            (("deactivate", "active"), ("cleanup", "inactive"))
        problems = []
        for node in reversed(self.nodes):
            state = self.transport.state(node)
            if state is None:
                problems.append("%s: not answering (already gone?)" % node)
                continue
            for name, when in steps:
                if state != when:
                    continue
                self.log("%s: %s" % (node, name))
                ok, reason = self.transport.transition(node, name)
                if not ok:
                    problems.append("%s: %s failed: %s" % (node, name, reason))
                    break
                state = "inactive" if name == "deactivate" else "unconfigured"
        return not problems, problems

    def not_active(self) -> List[Tuple[str, Optional[str]]]:
        """The nodes that are not active now, with their state (None: not answering)."""
        out = []
        for node in self.nodes:
            state = self.transport.state(node)
            if state != "active":
                out.append((node, state))
        return out

    def _abort(self, reason: str) -> Tuple[bool, str]:
        self.log("startup failed: %s; bringing the others down" % reason)
        self.shutdown()
        return False, reason
