#!/usr/bin/env python3
"""Checks that a robot install (the Docker image, or a Jetson set up by hand) has what the
navigation stack needs, one line per item, and exits 1 when anything required is missing.

    jetson/ros_entrypoint.sh python3 jetson/check_install.py

Run by jetson/Dockerfile at the end of the build (so a missing piece fails the build, not the
robot) and by hand after a host install (jetson/README.md). Required:
  * the ROS 2 packages the robot's nodes import or launch (launch_ros, tf2_ros, the messages),
  * the workspace's packages (every src/*/package.xml) and the shipped world-model artifact,
  * the pip packages of jetson/requirements-jetson.txt at exactly the pinned versions,
  * torch built with CUDA (NVIDIA's Jetson wheel) and the tensorrt Python bindings.
Optional (reported, never fatal): rosbag2_storage_mcap (`ros2 bag record -s mcap`).
Python 3.8 (JetPack 5); only the standard library and ament_index_python.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from typing import List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "requirements-jetson.txt")

# ROS 2 packages: imported by src/ robot code, used by launch/robot.launch.py, or the `ros2
# launch` command itself (tests/test_jetson_files.py checks this list against the imports).
ROS_PACKAGES = (
    "rclpy", "launch", "launch_ros", "ros2launch", "ament_index_python",
    "builtin_interfaces", "std_msgs", "std_srvs", "rcl_interfaces", "lifecycle_msgs",
    "action_msgs", "geometry_msgs", "nav_msgs", "sensor_msgs", "visualization_msgs",
    "diagnostic_msgs", "tf2_ros", "tf2_msgs", "nav2_msgs", "rmw_fastrtps_cpp",
)
OPTIONAL_ROS_PACKAGES = ("rosbag2_storage_mcap",)


def workspace_packages(src: str = os.path.join(os.path.dirname(HERE), "src")) -> List[str]:
    """The packages of this checkout's src/ (each folder with a package.xml): all are built."""
    return sorted(d for d in os.listdir(src) if os.path.isfile(os.path.join(src, d, "package.xml")))


SHIPPED_ARTIFACT = "worldmodel-1.0.0"
# distribution name (requirements file) -> module to import
MODULES = {"numpy": "numpy", "scipy": "scipy", "PyYAML": "yaml", "redis": "redis",
           "cryptography": "cryptography", "prometheus_client": "prometheus_client",
           "mcap": "mcap", "zstandard": "zstandard", "lz4": "lz4", "casadi": "casadi"}


def pinned_requirements(path: str = REQUIREMENTS) -> List[Tuple[str, str]]:
    """[(distribution, version)] of the `name==version` lines of a requirements file."""
    pins = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
            if not m:
                raise ValueError("%s: not a name==version pin: %r" % (path, line))
            pins.append((m.group(1), m.group(2)))
    return pins


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-workspace", action="store_true",
                    help="skip the wm_* packages (before the workspace is built)")
    a = ap.parse_args(argv)
    failures = []

    def report(ok: bool, what: str, detail: str = "", required: bool = True,
               bad: str = "MISSING") -> None:
        tag = "ok" if ok else (bad if required else "absent (optional)")
        print("%-9s %s%s" % (tag, what, (": " + detail) if detail else ""))
        if required and not ok:
            failures.append(what)

    print("python %s" % sys.version.split()[0])
    if sys.version_info[:2] != (3, 8):
        print("note      JetPack 5 ships Python 3.8; this is %d.%d" % sys.version_info[:2])

    try:
        from ament_index_python.packages import (PackageNotFoundError, get_package_prefix,
                                                 get_package_share_directory)
    except ImportError as e:
        report(False, "ament_index_python", "%s (ROS 2 not sourced?)" % e)
        return 1

    def ros_package(name: str, required: bool = True) -> None:
        try:
            report(True, "ros package " + name, get_package_prefix(name), required)
        except PackageNotFoundError:
            report(False, "ros package " + name, "not found on AMENT_PREFIX_PATH", required)

    for name in ROS_PACKAGES:
        ros_package(name)
    for name in OPTIONAL_ROS_PACKAGES:
        ros_package(name, required=False)
    if not a.no_workspace:
        for name in workspace_packages():
            ros_package(name)
        try:
            onnx = os.path.join(get_package_share_directory("wm_world_model"), "models",
                                SHIPPED_ARTIFACT, "model.onnx")
            report(os.path.isfile(onnx), "world-model artifact " + SHIPPED_ARTIFACT, onnx)
        except PackageNotFoundError:
            report(False, "world-model artifact " + SHIPPED_ARTIFACT, "wm_world_model missing")

    try:
        from importlib.metadata import PackageNotFoundError as DistNotFound
        from importlib.metadata import version as dist_version
    except ImportError:  # pragma: no cover - Python < 3.8
        report(False, "importlib.metadata", "Python 3.8 or newer is needed")
        return 1
    for dist, wanted in pinned_requirements():
        try:
            have = dist_version(dist)
        except DistNotFound:
            report(False, "pip %s==%s" % (dist, wanted), "not installed")
            continue
        if have != wanted:
            report(False, "pip %s==%s" % (dist, wanted), "installed %s" % have, bad="WRONG")
            continue
        try:
            importlib.import_module(MODULES.get(dist, dist))
            report(True, "pip %s==%s" % (dist, wanted))
        except Exception as e:  # noqa: BLE001 - any import failure is the finding
            report(False, "pip %s==%s" % (dist, wanted), "import fails: %s" % e)

    try:
        import torch

        cuda = torch.version.cuda
        report(cuda is not None, "torch %s" % torch.__version__,
               "CUDA %s" % cuda if cuda else "a CPU-only build: install NVIDIA's JetPack wheel",
               bad="WRONG")
    except Exception as e:  # noqa: BLE001
        report(False, "torch", "import fails: %s" % e)
    try:
        import tensorrt

        report(True, "tensorrt %s" % tensorrt.__version__)
    except Exception as e:  # noqa: BLE001
        report(False, "tensorrt", "import fails: %s (JetPack's python3-libnvinfer)" % e)

    if failures:
        print("FAILED: %d missing or wrong: %s" % (len(failures), ", ".join(failures)))
        return 1
    print("all required pieces present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
