"""Structural checks of the Gazebo assets (src/wm_gazebo) and launch/sim.launch.py.

Gazebo cannot run here, so these check the files by construction: they parse, the checked-in
files are exactly what wm_gazebo.export generates from the wm_sim worlds and the robot's
dimensions (a drift fails), the robot matches wm_sim.dynamics and config/robot.yaml, the
SDF and the URDF describe the same robot, and the ros_gz_bridge config bridges exactly the
contract topics to gz topics the model really publishes.
"""
from __future__ import annotations

import ast
import math
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "src" / "wm_gazebo"
try:  # installed by colcon (make setup); before the first rebuild, from the source tree
    import wm_gazebo.export  # noqa: F401
except ImportError:
    sys.path.insert(0, str(PKG))

from wm_gazebo import export  # noqa: E402
from wm_sim.dynamics import DiffDriveParams  # noqa: E402
from wm_sim.world import test_scene, warehouse  # noqa: E402

MODEL_SDF = PKG / "models" / "wm_robot" / "model.sdf"
MODEL_CONFIG = PKG / "models" / "wm_robot" / "model.config"
URDF = PKG / "urdf" / "wm_robot.urdf"
BRIDGE = PKG / "config" / "gz_bridge.yaml"
WORLDS = {"warehouse_small": lambda: warehouse("small"), "test_scene": test_scene}
# One robot's contract topics that Gazebo provides or consumes (ROS names, relative to the
# robot's namespace; /clock and /tf are global), with their types and directions.
CONTRACT = {
    "clock": ("rosgraph_msgs/msg/Clock", "gz.msgs.Clock", "GZ_TO_ROS"),
    "points": ("sensor_msgs/msg/PointCloud2", "gz.msgs.PointCloudPacked", "GZ_TO_ROS"),
    "odom": ("nav_msgs/msg/Odometry", "gz.msgs.Odometry", "GZ_TO_ROS"),
    "cmd_vel": ("geometry_msgs/msg/Twist", "gz.msgs.Twist", "ROS_TO_GZ"),
    "tf": ("tf2_msgs/msg/TFMessage", "gz.msgs.Pose_V", "GZ_TO_ROS"),
    "joint_states": ("sensor_msgs/msg/JointState", "gz.msgs.Model", "GZ_TO_ROS"),
}
GLOBAL_ROS_TOPICS = {"clock", "tf"}
TOL = 1e-6


def floats(text):
    return [float(v) for v in text.split()]


def parse(path):
    return ET.parse(str(path)).getroot()


def model():
    root = parse(MODEL_SDF)
    assert root.tag == "sdf" and root.get("version") == "1.9"
    models = root.findall("model")
    assert len(models) == 1
    return models[0]


def plugin(parent, name):
    found = [p for p in parent.findall("plugin") if p.get("name") == name]
    assert len(found) == 1, "expected one plugin %s" % name
    return found[0]


def sdf_links(m):
    return {link.get("name"): link for link in m.findall("link")}


def sdf_joints(m):
    return {j.get("name"): j for j in m.findall("joint")}


# --- every file parses; the checked-in files are the generated ones ------------------------
@pytest.mark.parametrize("path", sorted(PKG.glob("**/*.sdf")) + [URDF, MODEL_CONFIG],
                         ids=lambda p: str(p.relative_to(PKG)))
def test_xml_parses(path):
    parse(path)


def test_checked_in_files_match_the_generator():
    files = export.generated_files()
    assert set(files) == {
        "worlds/warehouse_small.sdf", "worlds/test_scene.sdf", "models/wm_robot/model.sdf",
        "models/wm_robot/model.config", "urdf/wm_robot.urdf", "config/gz_bridge.yaml"}
    for rel, text in files.items():
        assert (PKG / rel).read_text() == text, (
            "%s drifted from wm_gazebo.export; run export_gazebo" % rel)
    assert export.main(["--check", "--out", str(PKG)]) == 0


def test_generator_check_detects_drift(tmp_path):
    assert export.main(["--out", str(tmp_path)]) == 0
    assert export.main(["--check", "--out", str(tmp_path)]) == 0
    world = tmp_path / "worlds" / "test_scene.sdf"
    world.write_text(world.read_text().replace("<size>0.6 1.6 1.5</size>",
                                               "<size>0.6 1.7 1.5</size>"))
    assert export.main(["--check", "--out", str(tmp_path)]) == 1


# --- worlds --------------------------------------------------------------------------------
@pytest.mark.parametrize("stem", sorted(WORLDS))
def test_world_has_one_model_per_box(stem):
    world = WORLDS[stem]()
    path = PKG / "worlds" / (stem + ".sdf")
    assert path.read_text() == export.world_sdf(world, stem), "regenerate: export_gazebo"
    root = parse(path)
    assert root.tag == "sdf" and root.get("version") == "1.9"
    (w,) = root.findall("world")
    assert w.get("name") == stem
    models = {m.get("name"): m for m in w.findall("model")}
    assert len(models) == len(w.findall("model")), "model names must be unique"
    assert "ground_plane" in models
    assert models["ground_plane"].find("link/collision/geometry/plane") is not None
    assert [m.get("name") for m in w.findall("model")][1:] == export.box_model_names(world)
    assert len(models) == len(world.boxes) + 1
    for box, name in zip(world.boxes, export.box_model_names(world)):
        m = models[name]
        assert m.findtext("static") == "true"
        x, y, z, roll, pitch, yaw = floats(m.findtext("pose"))
        assert abs(x - box.cx) < TOL and abs(y - box.cy) < TOL
        assert abs(z - 0.5 * box.height) < TOL, "box must stand on the floor"
        assert roll == 0.0 and pitch == 0.0
        assert abs(math.remainder(yaw - box.yaw, 2 * math.pi)) < TOL
        for geom in ("collision", "visual"):
            size = floats(m.findtext("link/%s/geometry/box/size" % geom))
            assert size == pytest.approx([box.sx, box.sy, box.height], abs=TOL)
    # systems: physics, sensors rendering with ogre2 (gpu_lidar), scene broadcaster,
    # user commands (spawning)
    plugins = {p.get("name"): p for p in w.findall("plugin")}
    assert plugins["gz::sim::systems::Physics"].get("filename") == "gz-sim-physics-system"
    sensors = plugins["gz::sim::systems::Sensors"]
    assert sensors.get("filename") == "gz-sim-sensors-system"
    assert sensors.findtext("render_engine") == "ogre2"
    assert (plugins["gz::sim::systems::SceneBroadcaster"].get("filename")
            == "gz-sim-scene-broadcaster-system")
    assert (plugins["gz::sim::systems::UserCommands"].get("filename")
            == "gz-sim-user-commands-system")
    lights = w.findall("light")
    assert [lt.get("name") for lt in lights] == ["sun"]
    assert lights[0].get("type") == "directional"
    # nothing robot-specific in a world
    assert not w.findall(".//sensor") and not w.findall(".//joint")


# --- robot model ---------------------------------------------------------------------------
def test_robot_links_and_joints():
    m = model()
    links = sdf_links(m)
    assert set(links) == {"base_link", "left_wheel", "right_wheel", "caster_front",
                          "caster_rear", "payload", "lidar_link"}
    assert m.find("link").get("name") == "base_link", "base_link is the canonical link"
    chassis = floats(links["base_link"].findtext("collision/geometry/box/size"))
    assert chassis == pytest.approx([0.7, 0.55, 0.3])
    joints = sdf_joints(m)
    dyn = DiffDriveParams()
    for side, sign in (("left", 1.0), ("right", -1.0)):
        j = joints["%s_wheel_joint" % side]
        assert j.get("type") == "revolute"
        assert j.findtext("parent") == "base_link" and j.findtext("child") == side + "_wheel"
        assert floats(j.findtext("axis/xyz")) == [0.0, 1.0, 0.0]
        wheel = links[side + "_wheel"]
        x, y, z = floats(wheel.findtext("pose"))[:3]
        assert abs(y - sign * 0.5 * dyn.track) < TOL and abs(z - dyn.wheel_radius) < TOL
        assert float(wheel.findtext("collision/geometry/cylinder/radius")) == dyn.wheel_radius
    for name in ("caster_front", "caster_rear"):
        caster = links[name]
        r = float(caster.findtext("collision/geometry/sphere/radius"))
        assert abs(floats(caster.findtext("pose"))[2] - r) < TOL, "casters touch the floor"
        assert float(caster.findtext("collision/surface/friction/ode/mu")) == 0.0
    for name in ("caster_front_joint", "caster_rear_joint", "payload_joint", "lidar_joint"):
        assert joints[name].get("type") == "fixed"
        assert joints[name].findtext("parent") == "base_link"
    for link in links.values():
        assert float(link.findtext("inertial/mass")) > 0.0


def test_diff_drive_plugin():
    m = model()
    dd = plugin(m, "gz::sim::systems::DiffDrive")
    assert dd.get("filename") == "gz-sim-diff-drive-system"
    dyn = DiffDriveParams()
    assert float(dd.findtext("wheel_separation")) == dyn.track
    assert float(dd.findtext("wheel_radius")) == dyn.wheel_radius
    assert dd.findtext("left_joint") == "left_wheel_joint"
    assert dd.findtext("right_joint") == "right_wheel_joint"
    assert dd.findtext("frame_id") == "odom"
    assert dd.findtext("child_frame_id") == "base_link"
    for key in ("topic", "odom_topic", "tf_topic"):
        assert dd.findtext(key).startswith("/model/robot1/"), "scoped by the robot's name"
    assert float(dd.findtext("max_linear_velocity")) >= 0.8  # the planner's v_max
    jsp = plugin(m, "gz::sim::systems::JointStatePublisher")
    assert jsp.get("filename") == "gz-sim-joint-state-publisher-system"
    assert [e.text for e in jsp.findall("joint_name")] == ["left_wheel_joint",
                                                           "right_wheel_joint"]


def test_gpu_lidar():
    m = model()
    link = sdf_links(m)["lidar_link"]
    assert floats(link.findtext("pose")) == pytest.approx([0, 0, 0.4, 0, 0, 0])
    sensors = m.findall(".//sensor")
    assert len(sensors) == 1 and sensors[0] in list(link)
    s = sensors[0]
    assert s.get("type") == "gpu_lidar"
    assert s.findtext("gz_frame_id") == "lidar_link"
    assert float(s.findtext("update_rate")) == 10.0
    assert s.findtext("always_on") == "true"
    h = s.find("lidar/scan/horizontal")
    v = s.find("lidar/scan/vertical")
    assert int(h.findtext("samples")) == 1024
    span = float(h.findtext("max_angle")) - float(h.findtext("min_angle"))
    assert span == pytest.approx(2 * math.pi * 1023 / 1024), "full turn, no doubled column"
    assert int(v.findtext("samples")) == 16
    assert float(v.findtext("min_angle")) == pytest.approx(-math.radians(16.6), abs=1e-8)
    assert float(v.findtext("max_angle")) == pytest.approx(math.radians(16.6), abs=1e-8)
    assert float(s.findtext("lidar/range/min")) == 0.3
    assert float(s.findtext("lidar/range/max")) == 20.0
    assert s.findtext("topic").startswith("/model/robot1/")


def test_model_config_references_model_sdf():
    root = parse(MODEL_CONFIG)
    assert root.tag == "model"
    sdf = root.find("sdf")
    assert sdf.text == "model.sdf" and sdf.get("version") == "1.9"
    assert (MODEL_CONFIG.parent / sdf.text).exists()


# --- URDF ----------------------------------------------------------------------------------
def test_urdf_matches_sdf():
    robot = parse(URDF)
    assert robot.tag == "robot"
    m = model()
    s_links = sdf_links(m)
    s_joints = sdf_joints(m)
    u_links = {link.get("name") for link in robot.findall("link")}
    u_joints = {j.get("name"): j for j in robot.findall("joint")}
    assert u_links == set(s_links)
    assert set(u_joints) == set(s_joints)
    for name, uj in u_joints.items():
        sj = s_joints[name]
        expected_type = "continuous" if sj.get("type") == "revolute" else sj.get("type")
        assert uj.get("type") == expected_type
        assert uj.find("parent").get("link") == sj.findtext("parent")
        child = uj.find("child").get("link")
        assert child == sj.findtext("child")
        origin = uj.find("origin")
        # every link hangs off base_link at the model origin: joint origin == link pose
        pose = floats(s_links[child].findtext("pose"))
        assert floats(origin.get("xyz")) + floats(origin.get("rpy")) == pytest.approx(pose)
        if expected_type == "continuous":
            assert floats(uj.find("axis").get("xyz")) == floats(sj.findtext("axis/xyz"))
    for link in robot.findall("link"):
        if link.get("name") == "base_link":
            assert link.find("inertial") is None  # KDL: no inertia on the root link
            continue
        u_mass = float(link.find("inertial/mass").get("value"))
        assert u_mass == float(s_links[link.get("name")].findtext("inertial/mass"))
        for geom in ("visual", "collision"):
            u_geom = link.find(geom + "/geometry")[0]
            s_geom = s_links[link.get("name")].find(geom + "/geometry")[0]
            assert u_geom.tag == s_geom.tag


def test_urdf_lidar_offset_is_the_perception_extrinsic():
    cfg = yaml.safe_load((REPO / "config" / "robot.yaml").read_text())
    ext = cfg["/**/perception"]["ros__parameters"]["sensor_extrinsic"]
    (joint,) = [j for j in parse(URDF).findall("joint")
                if j.find("child").get("link") == "lidar_link"]
    assert joint.find("parent").get("link") == "base_link"
    x, y, z = floats(joint.find("origin").get("xyz"))
    yaw = floats(joint.find("origin").get("rpy"))[2]
    assert [x, y, z, yaw] == pytest.approx(ext, abs=TOL)


# --- ros_gz_bridge -------------------------------------------------------------------------
def sdf_gz_topics():
    """gz topics the robot model publishes or subscribes, plus the server's /clock."""
    m = model()
    dd = plugin(m, "gz::sim::systems::DiffDrive")
    jsp = plugin(m, "gz::sim::systems::JointStatePublisher")
    lidar_topic = m.find(".//sensor").findtext("topic")
    return {
        "gz.msgs.Twist": {dd.findtext("topic")},
        "gz.msgs.Odometry": {dd.findtext("odom_topic")},
        "gz.msgs.Pose_V": {dd.findtext("tf_topic")},
        "gz.msgs.Model": {jsp.findtext("topic")},
        # gz-sensors: LaserScan on <topic>, PointCloudPacked on <topic>/points
        "gz.msgs.PointCloudPacked": {lidar_topic + "/points"},
        "gz.msgs.Clock": {"/clock"},
    }


def bridge():
    entries = yaml.safe_load(BRIDGE.read_text())
    assert isinstance(entries, list) and entries
    return entries


def test_bridge_entries_are_valid():
    for e in bridge():
        assert set(e) == {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name",
                          "direction"}
        assert e["direction"] in ("GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL")
        assert re.fullmatch(r"\w+/msg/\w+", e["ros_type_name"])
        assert re.fullmatch(r"gz\.msgs\.\w+", e["gz_type_name"])
        assert e["gz_topic_name"].startswith("/")


def test_bridge_covers_exactly_the_contract_topics():
    seen = {}
    for e in bridge():
        ros = e["ros_topic_name"]
        name = ros.lstrip("/")
        assert ros.startswith("/") == (name in GLOBAL_ROS_TOPICS), (
            "%s: per-robot topics are relative (the bridge runs in the robot's namespace)"
            % ros)
        assert name not in seen
        seen[name] = (e["ros_type_name"], e["gz_type_name"], e["direction"])
    assert seen == CONTRACT


def test_bridge_gz_topics_exist_in_the_sdf():
    published = sdf_gz_topics()
    for e in bridge():
        assert e["gz_topic_name"] in published.get(e["gz_type_name"], set()), (
            "%s (%s) is not a topic of the model" % (e["gz_topic_name"], e["gz_type_name"]))


def test_another_robot_gets_its_own_topics():
    sdf = export.robot_sdf("robot2")
    assert "/model/robot1/" not in sdf and "/model/robot2/cmd_vel" in sdf
    entries = yaml.safe_load(export.bridge_yaml("robot2"))
    assert {e["ros_topic_name"] for e in entries} == {e["ros_topic_name"] for e in bridge()}
    assert all(e["gz_topic_name"].startswith("/model/robot2/") for e in entries
               if e["gz_topic_name"] != "/clock")


# --- package and launch file ---------------------------------------------------------------
def test_package_manifest_and_setup():
    root = parse(PKG / "package.xml")
    assert root.get("format") == "3"
    assert root.findtext("name") == "wm_gazebo"
    assert root.find("maintainer").get("email") == "maintainers@wm-nav.dev"
    assert root.findtext("license") == "Apache-2.0"
    deps = {e.text for e in root.findall("exec_depend")}
    assert {"ros_gz_sim", "ros_gz_bridge", "robot_state_publisher"} <= deps
    # sim.launch.py lives in wm_bringup, which depends on wm_gazebo (not the other way round)
    assert "wm_bringup" not in deps
    # a development-tool dependency of wm_bringup (sim.launch.py): robots never install Gazebo
    bringup = parse(REPO / "src" / "wm_bringup" / "package.xml")
    assert "wm_gazebo" in {e.text for e in bringup.findall("test_depend")}
    assert "wm_gazebo" not in {e.text for e in bringup.findall("exec_depend")}
    assert root.findtext("export/build_type") == "ament_python"
    assert (PKG / "resource" / "wm_gazebo").exists()
    setup_py = (PKG / "setup.py").read_text()
    for folder in ("worlds", "models", "config", "urdf"):
        assert "data_tree('%s', 'share/' + package_name + '/%s')" % (folder, folder) in setup_py
    assert "'export_gazebo = wm_gazebo.export:main'" in setup_py
    assert "install_scripts=$base/lib/wm_gazebo" in (PKG / "setup.cfg").read_text()


def test_sim_launch_wiring():
    src = (REPO / "launch" / "sim.launch.py").read_text()
    tree = ast.parse(src)
    declared = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", None)
                == "DeclareLaunchArgument"):
            declared.add(node.args[0].value)
    assert {"world", "namespace", "x", "y", "yaw", "rviz"} <= declared
    # the bridge gets config/gz_bridge.yaml, the spawn gets the model, rsp the URDF
    for needle in ('"config_file": bridge_config', '"-file", model_file',
                   '"gz_sim.launch.py"', '"robot.launch.py"', '"gz_args"'):
        assert needle in src
    # arguments passed to robot.launch.py are ones it declares
    robot_src = (REPO / "launch" / "robot.launch.py").read_text()
    for arg in ("namespace", "use_sim_time", "rviz"):
        assert 'DeclareLaunchArgument("%s"' % arg in robot_src
    assert '"use_sim_time": "true"' in src
    # the default world exists
    default_world = re.search(r'DeclareLaunchArgument\("world", default_value="(\w+)"', src)
    assert (PKG / "worlds" / (default_world.group(1) + ".sdf")).exists()
