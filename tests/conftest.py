"""Shared fixtures for the system tests: DDS isolation and node processes.

Every pytest run picks its own ROS_DOMAIN_ID and keeps discovery on localhost, so two runs
side by side (or a demo next to a test run) never see each other's topics.
"""
from __future__ import annotations

import os
import random

import pytest

if "WM_TEST_DOMAIN_SET" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
    os.environ["WM_TEST_DOMAIN_SET"] = "1"
os.environ["ROS_LOCALHOST_ONLY"] = "1"           # Humble
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # Iron and newer
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")


@pytest.fixture(scope="module")
def rclpy_node(request):
    """An rclpy node in the test process, spun by a background executor thread."""
    from rosutil import SpinningNode
    node = SpinningNode("test_" + request.module.__name__.replace(".", "_"))
    yield node
    node.close()


@pytest.fixture
def procs(tmp_path):
    """Start node processes; all are stopped (SIGINT, then SIGKILL) at teardown."""
    from rosutil import ProcessGroup
    group = ProcessGroup(tmp_path)
    yield group
    group.stop_all()
