"""Namespaced nodes started with the shipped YAML (as `ros2 run ... --ros-args --params-file
config/robot.yaml -r __ns:=/robot7`) read its non-default values, visible through the
parameter service, and come up active through their lifecycle (autostart)."""
from __future__ import annotations

import yaml
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from rcl_interfaces.srv import GetParameters
from rclpy.parameter import parameter_value_to_python
from rosutil import CONFIG, call

from wm_common.params import defaults
from wm_perception.params import PERCEPTION_PARAMS
from wm_planner.params import PLANNER_PARAMS

NS = "/robot7"


def non_default(node_name, specs):
    doc = yaml.safe_load((CONFIG / "robot.yaml").read_text())
    shipped = doc["/**/" + node_name]["ros__parameters"]
    d = defaults(specs)
    return {k: v for k, v in shipped.items()
            if not isinstance(v, dict) and k in d and v != d[k]}


def test_namespaced_nodes_read_shipped_yaml(procs, rclpy_node):
    for pkg, exe in (("wm_perception", "perception"), ("wm_planner", "planner")):
        procs.start(pkg, exe, "--params-file", str(CONFIG / "robot.yaml"),
                    "-r", "__ns:=" + NS, name=exe + "_params")
    node = rclpy_node.node
    for name, specs in (("perception", PERCEPTION_PARAMS), ("planner", PLANNER_PARAMS)):
        expected = non_default(name, specs)
        assert len(expected) >= 2, "the test needs non-default values in robot.yaml"
        req = GetParameters.Request(names=sorted(expected))
        res = call(node, GetParameters, "%s/%s/get_parameters" % (NS, name), req)
        got = {k: parameter_value_to_python(v) for k, v in zip(req.names, res.values)}
        for k, v in expected.items():
            assert got[k] == v, "%s.%s: %r != shipped %r" % (name, k, got[k], v)
        # nested YAML keys arrive as dotted parameters
        if name == "planner":
            res = call(node, GetParameters, NS + "/planner/get_parameters",
                       GetParameters.Request(names=["obstacle.inflation_radius"]))
            doc = yaml.safe_load((CONFIG / "robot.yaml").read_text())
            shipped = doc["/**/planner"]["ros__parameters"]["obstacle"]["inflation_radius"]
            assert parameter_value_to_python(res.values[0]) == shipped
        state = call(node, GetState, "%s/%s/get_state" % (NS, name), GetState.Request())
        assert state.current_state.id == State.PRIMARY_STATE_ACTIVE
