"""The shipped YAML files only set parameters the nodes declare, within their ranges."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from wm_common.params import check_value, flatten
from wm_perception.params import PERCEPTION_PARAMS
from wm_planner.params import PLANNER_PARAMS
from wm_safety.params import SAFETY_PARAMS
from wm_fleet.params import FLEET_PARAMS
from wm_monitor.params import MONITOR_PARAMS
from wm_sim.params import SIM_PARAMS
from wm_bringup.params import MANAGER_PARAMS

CONFIG = Path(__file__).resolve().parent.parent / "config"
SPECS = {"perception": PERCEPTION_PARAMS, "planner": PLANNER_PARAMS, "simulator": SIM_PARAMS,
         "collision_monitor": SAFETY_PARAMS, "fleet_client": FLEET_PARAMS,
         "lifecycle_manager": MANAGER_PARAMS, "monitor": MONITOR_PARAMS}
# Declared by rclpy itself or by the lifecycle base class for every node.
COMMON = {"use_sim_time", "autostart"}


def yaml_files():
    # config/defaults/: every parameter at its documented default (scripts/param_tables.py)
    return sorted(CONFIG.glob("*.yaml")) + sorted(CONFIG.glob("defaults/*.yaml"))


def test_there_are_config_files():
    names = {p.name for p in yaml_files()}
    assert {"robot.yaml", "sim.yaml"} <= names


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: p.name)
def test_yaml_matches_declared_parameters(path):
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict) and doc
    for key, body in doc.items():
        # keyed so they apply under any namespace
        assert key.startswith("/**/"), "%s: key %r must start with /**/" % (path.name, key)
        node = key[len("/**/"):]
        assert node in SPECS, "%s: unknown node %r" % (path.name, node)
        params = flatten(body["ros__parameters"])
        specs = {p.name: p for p in SPECS[node]}
        for name, value in params.items():
            if name in COMMON:
                continue
            assert name in specs, "%s: %s has no parameter %r" % (path.name, node, name)
            problem = check_value(specs[name], value)
            assert problem is None, "%s: %s.%s=%r: %s" % (path.name, node, name, value, problem)


def test_check_value_catches_bad_values():
    spec = {p.name: p for p in PLANNER_PARAMS}
    assert check_value(spec["v_max"], 99.0) is not None
    assert check_value(spec["num_samples"], 1.5) is not None
    assert check_value(spec["cmd_vel_stamped"], "yes") is not None
    assert check_value(spec["v_max"], 0.5) is None


def test_an_integer_for_a_double_is_refused_as_rclpy_would():
    """rclpy refuses `payload_mass: 10` for a double parameter at start-up
    (InvalidParameterTypeException): the YAML check must refuse it first."""
    specs = {p.name: p for p in PLANNER_PARAMS}
    assert check_value(specs["payload_mass"], 10.0) is None
    assert "floating-point" in check_value(specs["payload_mass"], 10)
    assert "floating-point" in check_value(specs["footprint"],
                                           [0.3, 0.2, 0.3, -0.2, -0.3, -0.2, -0.3, 0])
    # a footprint is a polygon of any number of vertices, not a fixed-size vector
    assert check_value(specs["footprint"], [0.4, 0.0, 0.2, 0.3, -0.3, 0.3, -0.3, -0.3,
                                           0.2, -0.3]) is None
    assert check_value(specs["num_samples"], 512) is None
    assert check_value(specs["num_samples"], 512.0) == "expected an integer"
