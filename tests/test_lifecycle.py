"""Managed-node behaviour over real DDS: deactivating the planner stops the robot, cleanup and
configure work again, a bad parameter makes configure fail with the node still alive, and
autostart:=false leaves the node unconfigured for a lifecycle manager."""
from __future__ import annotations

from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rosutil import CONFIG, call, corrupt_artifact, service_client, wait_for

from wm_common.ros.qos import CMD_VEL_QOS

NS = "/lctest"


def state(node, name):
    service_client(node, ChangeState, "%s/%s/change_state" % (NS, name))  # matched early
    return call(node, GetState, "%s/%s/get_state" % (NS, name), GetState.Request(),
                resend_after=2.0).current_state.id


def transition(node, name, tid):
    req = ChangeState.Request()
    req.transition.id = tid
    return call(node, ChangeState, "%s/%s/change_state" % (NS, name), req).success


def test_planner_lifecycle_transitions(procs, rclpy_node):
    proc = procs.start("wm_planner", "planner", "--params-file", str(CONFIG / "robot.yaml"),
                       "-r", "__ns:=" + NS, name="planner_lc")
    node = rclpy_node.node
    cmds = rclpy_node.collect(Twist, NS + "/cmd_vel", CMD_VEL_QOS)
    assert wait_for(lambda: state(node, "planner") == State.PRIMARY_STATE_ACTIVE, 20.0)

    # deactivate: the planner sends a stop on its way down
    n = len(cmds)
    assert transition(node, "planner", Transition.TRANSITION_DEACTIVATE)
    assert state(node, "planner") == State.PRIMARY_STATE_INACTIVE
    assert wait_for(lambda: len(cmds) > n, 5.0), procs.log(proc)
    assert cmds[-1].linear.x == 0.0 and cmds[-1].angular.z == 0.0

    # cleanup, then a bad parameter: configure fails, the node stays up and unconfigured
    assert transition(node, "planner", Transition.TRANSITION_CLEANUP)
    assert state(node, "planner") == State.PRIMARY_STATE_UNCONFIGURED
    bad = Parameter(name="use_tf", value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                        string_value="bogus"))
    res = call(node, SetParameters, NS + "/planner/set_parameters",
               SetParameters.Request(parameters=[bad]))
    assert res.results[0].successful
    assert not transition(node, "planner", Transition.TRANSITION_CONFIGURE)
    assert state(node, "planner") == State.PRIMARY_STATE_UNCONFIGURED
    assert "configure failed: use_tf must be" in procs.log(proc)
    assert proc.poll() is None

    # fix it: configure and activate again
    good = Parameter(name="use_tf", value=ParameterValue(type=ParameterType.PARAMETER_STRING,
                                                         string_value="auto"))
    call(node, SetParameters, NS + "/planner/set_parameters",
         SetParameters.Request(parameters=[good]))
    assert transition(node, "planner", Transition.TRANSITION_CONFIGURE)
    assert transition(node, "planner", Transition.TRANSITION_ACTIVATE)
    assert state(node, "planner") == State.PRIMARY_STATE_ACTIVE


def test_autostart_false_waits_for_a_manager(procs, rclpy_node):
    procs.start("wm_perception", "perception", "--params-file", str(CONFIG / "robot.yaml"),
                "-r", "__ns:=" + NS, "-p", "autostart:=false", name="perception_lc")
    node = rclpy_node.node
    assert wait_for(lambda: state(node, "perception") == State.PRIMARY_STATE_UNCONFIGURED, 20.0)
    assert transition(node, "perception", Transition.TRANSITION_CONFIGURE)
    assert transition(node, "perception", Transition.TRANSITION_ACTIVATE)
    assert state(node, "perception") == State.PRIMARY_STATE_ACTIVE


def test_corrupt_world_model_fails_configure_with_the_reason(procs, rclpy_node, tmp_path):
    """A world-model artifact whose weights were modified is refused at configure (checksum):
    with autostart the planner logs the reason and exits non-zero (so launch / systemd see the
    failure) without ever sending a command to the wheels."""
    bad = corrupt_artifact(tmp_path)
    proc = procs.start("wm_planner", "planner", "--params-file", str(CONFIG / "robot.yaml"),
                       "-r", "__ns:=" + NS, "-p", "world_model_artifact:=%s" % bad,
                       name="planner_badmodel")
    cmds = rclpy_node.collect(Twist, NS + "/cmd_vel", CMD_VEL_QOS)
    assert wait_for(lambda: proc.poll() is not None, 30.0), procs.log(proc)
    assert proc.returncode == 1
    assert "checksum mismatch for weights.npz" in procs.log(proc)
    assert "configure failed" in procs.log(proc)
    assert len(cmds) == 0
