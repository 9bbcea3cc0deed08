"""wm_bringup's lifecycle_manager over real DDS: perception, planner and safety gate started with
autostart:=false come up in order, go down in reverse order on ~/shutdown and on SIGINT, and a
planner with a corrupt world model fails start-up with its own reason while the nodes that
had come up are brought down again."""
from __future__ import annotations

import re
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from rosutil import CONFIG, call, corrupt_artifact, wait_for
from std_srvs.srv import Trigger
from wm_common.ros.nav2 import ManageLifecycleNodes

NODES = ["perception", "planner", "collision_monitor"]
PKG = {"perception": "wm_perception", "planner": "wm_planner",
       "collision_monitor": "wm_safety"}


def start_robot(procs, ns, planner_args=()):
    for n in NODES:
        extra = list(planner_args) if n == "planner" else []
        procs.start(PKG[n], n, "--params-file", str(CONFIG / "robot.yaml"), "-r",
                    "__ns:=" + ns, "-p", "autostart:=false", *extra, name="%s_%s" % (ns[1:], n))
    return procs.start("wm_bringup", "lifecycle_manager", "-r", "__ns:=" + ns,
                       "-p", "node_names:=[%s]" % ", ".join(NODES),
                       "-p", "transition_timeout:=60.0", name="%s_manager" % ns[1:])


def states(node, ns):
    return {n: call(node, GetState, "%s/%s/get_state" % (ns, n),
                    GetState.Request()).current_state.id for n in NODES}


def order(log, verb):
    return re.findall(r"\]: /\w+/(\w+): %s$" % verb, log, re.M)


def test_brings_the_robot_up_in_order_and_down_in_reverse(procs, rclpy_node):
    ns = "/lm1"
    manager = start_robot(procs, ns)
    node = rclpy_node.node
    assert wait_for(lambda: "all 3 nodes active" in procs.log(manager), 90.0), procs.log(manager)
    assert set(states(node, ns).values()) == {State.PRIMARY_STATE_ACTIVE}
    log = procs.log(manager)
    assert order(log, "configure") == NODES and order(log, "activate") == NODES
    # configure all before activating any
    assert log.index("collision_monitor: configure") < log.index("perception: activate")

    res = call(node, Trigger, ns + "/lifecycle_manager/shutdown", Trigger.Request())
    assert res.success, res.message
    assert set(states(node, ns).values()) == {State.PRIMARY_STATE_UNCONFIGURED}
    log = procs.log(manager)
    assert order(log, "deactivate") == NODES[::-1] and order(log, "cleanup") == NODES[::-1]

    res = call(node, Trigger, ns + "/lifecycle_manager/startup", Trigger.Request(),
               timeout=90.0)
    assert res.success and "all nodes active" in res.message, res.message
    assert set(states(node, ns).values()) == {State.PRIMARY_STATE_ACTIVE}

    # Nav2's interface (nav2_lifecycle_manager's types where nav2_msgs is installed)
    cmd = ManageLifecycleNodes.Request
    assert call(node, Trigger, ns + "/lifecycle_manager/is_active", Trigger.Request()).success
    res = call(node, ManageLifecycleNodes, ns + "/lifecycle_manager/manage_nodes",
               cmd(command=cmd.PAUSE), timeout=90.0)
    assert res.success
    assert set(states(node, ns).values()) == {State.PRIMARY_STATE_INACTIVE}
    assert not call(node, Trigger, ns + "/lifecycle_manager/is_active",
                    Trigger.Request()).success
    res = call(node, ManageLifecycleNodes, ns + "/lifecycle_manager/manage_nodes",
               cmd(command=cmd.RESUME), timeout=90.0)
    assert res.success
    assert set(states(node, ns).values()) == {State.PRIMARY_STATE_ACTIVE}
    assert call(node, Trigger, ns + "/lifecycle_manager/is_active", Trigger.Request()).success

    # SIGINT (what launch and systemd send): the manager brings the nodes down, then exits 0
    assert procs.stop(manager, timeout=30.0) == 0, procs.log(manager)
    assert set(states(node, ns).values()) == {State.PRIMARY_STATE_UNCONFIGURED}


def test_a_failed_configure_is_reported_with_its_reason(procs, rclpy_node, tmp_path):
    bad = corrupt_artifact(tmp_path)
    ns = "/lm2"
    manager = start_robot(procs, ns, ["-p", "world_model_artifact:=%s" % bad])
    node = rclpy_node.node
    # the ERROR line comes once the others are down again
    assert wait_for(lambda: "[ERROR]" in procs.log(manager), 90.0), procs.log(manager)
    log = procs.log(manager)
    # the planner's own reason, read from /rosout, not just "configure failed"
    assert re.search(r"/planner: configure failed: [^:]*worldmodel-1.0.0: checksum mismatch "
                     r"for weights\.npz", log), log
    # perception had been configured first: it is brought down again; the gate never came up
    assert order(log, "configure") == ["perception", "planner"]
    assert order(log, "cleanup") == ["perception"]
    assert set(states(node, ns).values()) == {State.PRIMARY_STATE_UNCONFIGURED}
    # the service says the same
    res = call(node, Trigger, ns + "/lifecycle_manager/startup", Trigger.Request(),
               timeout=90.0)
    assert not res.success and "checksum mismatch" in res.message, res.message
    assert manager.poll() is None   # still up, reporting
