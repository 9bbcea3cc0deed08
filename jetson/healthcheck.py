#!/usr/bin/env python3
"""Health probe of one robot's navigation nodes: each lifecycle node must answer get_state with
'active'.

    jetson/ros_entrypoint.sh python3 jetson/healthcheck.py --namespace robot1

The Docker image's HEALTHCHECK (namespace from $WM_ROBOT_ID); also usable from monitoring on a
host install. Exit 0 when every node is active; 1 with one line per node that is not (no
get_state service, no answer within --timeout, or its state, e.g. 'unconfigured' when configure
failed); 2 on a usage error. It asks over DDS, so it needs the robot's ROS_DOMAIN_ID and
discovery settings (the same environment as the nodes). Python 3.8 / Humble rclpy.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# The LifecycleNode names of launch/robot.launch.py (tests/test_jetson_files.py keeps them equal).
NODES = ("perception", "planner", "fleet_client", "collision_monitor", "monitor")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--namespace", default=os.environ.get("WM_NAMESPACE",
                                                          os.environ.get("WM_ROBOT_ID", "")),
                    help="the robot's namespace (default: $WM_NAMESPACE, else $WM_ROBOT_ID)")
    ap.add_argument("--nodes", default=",".join(NODES), help="comma-separated node names")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds for discovery and all answers (default 10)")
    a = ap.parse_args(argv)
    ns = a.namespace.strip("/")
    nodes = [n.strip() for n in a.nodes.split(",") if n.strip()]
    if not ns:
        ap.error("no namespace: pass --namespace or set WM_ROBOT_ID")
    if not nodes:
        ap.error("no node names")

    import rclpy
    from lifecycle_msgs.srv import GetState

    rclpy.init(args=[])
    node = rclpy.create_node("wm_healthcheck_%d" % os.getpid(), start_parameter_services=False)
    try:
        deadline = time.monotonic() + a.timeout
        pending = {n: node.create_client(GetState, "/%s/%s/get_state" % (ns, n)) for n in nodes}
        futures = {}
        # Ask each node as soon as its service is discovered; stop at the deadline.
        while time.monotonic() < deadline:
            for n, client in list(pending.items()):
                if client.service_is_ready():
                    futures[n] = client.call_async(GetState.Request())
                    del pending[n]
            if not pending and all(f.done() for f in futures.values()):
                break
            rclpy.spin_once(node, timeout_sec=0.05)
        problems = []
        for n in nodes:
            f = futures.get(n)
            if f is None:
                problems.append("/%s/%s: no get_state service within %.0f s (not running?)"
                                % (ns, n, a.timeout))
            elif not f.done() or f.result() is None:
                problems.append("/%s/%s: no answer within %.0f s" % (ns, n, a.timeout))
            elif f.result().current_state.label != "active":
                problems.append("/%s/%s: %s" % (ns, n, f.result().current_state.label))
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    if problems:
        print("unhealthy:\n  " + "\n  ".join(problems))
        return 1
    print("healthy: /%s %s active" % (ns, ", ".join(nodes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
