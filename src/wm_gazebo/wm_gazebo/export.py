"""Gazebo assets generated from the wm_sim worlds and the robot's dimensions.

Target: Gazebo Harmonic (gz-sim 8, SDFormat 14, files written as SDF 1.9) or newer, used
through ros_gz (ros_gz_sim, ros_gz_bridge). One source of truth for every file Gazebo and
ROS read, so they cannot drift apart:

- `world_sdf(world, name)`: an SDF world of static box models, one per `wm_sim.world.Box`
  (same centre, size, height, yaw), a ground plane, a sun and the gz-sim systems a
  simulation with a GPU LiDAR needs (Physics, Sensors with ogre2, SceneBroadcaster,
  UserCommands, the last one for spawning). Nothing robot-specific: robots are spawned.
- `robot_sdf(robot_name)`: the robot model (chassis 0.7 x 0.55 x 0.3 m, two wheels with
  `wm_sim.dynamics` radius and track, two ball casters, a payload deck, `lidar_link` at the
  perception `sensor_extrinsic`), the DiffDrive and JointStatePublisher systems and a 16-ring
  gpu_lidar publishing a point cloud.
- `robot_urdf()`: the same links and joints for robot_state_publisher.
- `bridge_yaml(robot_name)`: the ros_gz_bridge config of one robot's contract topics.
- `main()` (console script `export_gazebo`): rewrites the checked-in files, or `--check`s them.

Topic names. gz-transport has no namespaces per model: a relative gz topic ("cmd_vel") in a
plugin resolves to the global "/cmd_vel", so two robots would share it. The gz topics are
therefore scoped by the robot's name, as gz-sim's own defaults are ("/model/<name>/cmd_vel"),
and generated per robot; the ROS side is relative ("odom", "points", ...) and gets the
robot's namespace from the bridge node's namespace. The checked-in files are for robot1. A
second robot gets its own model and bridge config with
`export_gazebo --robot robot2 --out DIR` (DIR/models/wm_robot/model.sdf and
DIR/config/gz_bridge.yaml, with /model/robot2/... gz topics).

Plain Python (no rclpy), Python 3.8 compatible.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

from wm_sim.dynamics import DiffDriveParams
from wm_sim.world import Box, World, test_scene, warehouse

SDF_VERSION = "1.9"
DEFAULT_ROBOT = "robot1"
MODEL_NAME = "wm_robot"

# --- robot dimensions (metres, kilograms) -----------------------------------------------------
# base_link is on the floor between the wheels (REP-105 ground projection of the rotation
# centre); the perception z limits and the LiDAR extrinsic are heights above it.
_DYN = DiffDriveParams()
WHEEL_RADIUS = _DYN.wheel_radius          # 0.1 m, as wm_sim.dynamics
WHEEL_SEPARATION = _DYN.track             # 0.5 m, as wm_sim.dynamics
WHEEL_WIDTH = 0.05
WHEEL_MASS = 2.0
CHASSIS_SIZE = (0.7, 0.55, 0.3)
GROUND_CLEARANCE = 0.05
CHASSIS_MASS = 40.0
CASTER_RADIUS = 0.05                      # touches the floor: centre at z = radius
CASTER_X = 0.28
CASTER_MASS = 0.5
PAYLOAD_SIZE = (0.6, 0.45, 0.02)          # a deck on the chassis, below the LiDAR's view
DEFAULT_PAYLOAD_MASS = 5.0
# LiDAR pose in base_link [x, y, z, yaw]: config/robot.yaml perception.sensor_extrinsic.
LIDAR_MOUNT = (0.0, 0.0, 0.4, 0.0)
LIDAR_RADIUS = 0.04
LIDAR_LENGTH = 0.05
LIDAR_MASS = 0.6
LIDAR_RINGS = 16
LIDAR_COLUMNS = 1024
LIDAR_VFOV_DEG = 16.6                     # +- from the horizontal
LIDAR_MIN_RANGE = 0.3
LIDAR_MAX_RANGE = 20.0
LIDAR_RATE = 10.0
LIDAR_SENSOR_NAME = "lidar"
LIDAR_FRAME = "lidar_link"
ODOM_FRAME = "odom"
BASE_FRAME = "base_link"
ODOM_RATE = 50.0

# Plugin file and class names of gz-sim 8 (Harmonic); gz-sim 9 (Ionic) keeps them.
PLUGINS = {
    "Physics": "gz-sim-physics-system",
    "Sensors": "gz-sim-sensors-system",
    "SceneBroadcaster": "gz-sim-scene-broadcaster-system",
    "UserCommands": "gz-sim-user-commands-system",
    "DiffDrive": "gz-sim-diff-drive-system",
    "JointStatePublisher": "gz-sim-joint-state-publisher-system",
}

# The worlds checked in under worlds/ (file stem -> factory).
WORLDS = {
    "warehouse_small": lambda: warehouse("small"),
    "test_scene": test_scene,
}

BRIDGE_DIRECTIONS = ("GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL")


# --- a tiny XML writer (ElementTree.indent is Python 3.9+) ------------------------------------
class _El:
    def __init__(self, tag: str, text: Optional[str] = None, **attrs: str):
        self.tag = tag
        self.text = text
        self.attrs = attrs
        self.children: List["_El"] = []

    def sub(self, tag: str, text: Optional[str] = None, **attrs: str) -> "_El":
        child = _El(tag, text, **attrs)
        self.children.append(child)
        return child

    def comment(self, text: str) -> None:
        if "--" in text:
            raise ValueError("'--' is not allowed in an XML comment")
        self.children.append(_El("!--", text))

    def lines(self, depth: int = 0) -> List[str]:
        pad = "  " * depth
        if self.tag == "!--":
            return ["%s<!-- %s -->" % (pad, self.text)]
        attrs = "".join(" %s=%s" % (k, quoteattr(v)) for k, v in self.attrs.items())
        if not self.children:
            if self.text is None:
                return ["%s<%s%s/>" % (pad, self.tag, attrs)]
            return ["%s<%s%s>%s</%s>" % (pad, self.tag, attrs, escape(self.text), self.tag)]
        out = ["%s<%s%s>" % (pad, self.tag, attrs)]
        for c in self.children:
            out.extend(c.lines(depth + 1))
        out.append("%s</%s>" % (pad, self.tag))
        return out


def _document(root: _El, header: str) -> str:
    if "--" in header:
        raise ValueError("'--' is not allowed in an XML comment")
    return "\n".join(['<?xml version="1.0"?>', "<!-- %s -->" % header] + root.lines()) + "\n"


def _num(v: float) -> str:
    """Shortest stable text of a float (9 significant digits, no '-0')."""
    v = float(v)
    if abs(v) < 1e-12:
        return "0"
    return "%.9g" % v


def _vec(values: Sequence[float]) -> str:
    return " ".join(_num(v) for v in values)


_GENERATED = ("Generated by wm_gazebo.export (export_gazebo) from %s; "
              "do not edit, regenerate.")


# --- worlds ----------------------------------------------------------------------------------
def _box_color(name: str) -> Tuple[float, float, float]:
    if name.startswith("wall"):
        return (0.7, 0.7, 0.68)
    if name.startswith("shelf"):
        return (0.2, 0.35, 0.65)
    if name.startswith("pallet"):
        return (0.6, 0.45, 0.25)
    if name.startswith("pack_station"):
        return (0.25, 0.55, 0.3)
    return (0.5, 0.5, 0.5)


def _material(parent: _El, rgb: Tuple[float, float, float]) -> None:
    m = parent.sub("material")
    m.sub("ambient", _vec(rgb + (1.0,)))
    m.sub("diffuse", _vec(rgb + (1.0,)))
    m.sub("specular", _vec((0.1, 0.1, 0.1, 1.0)))


def box_model_names(world: World) -> List[str]:
    """The model name of each box, in order: its own name, or box_<index> if unnamed (SDF
    model names must be unique within a world)."""
    names: List[str] = []
    for i, b in enumerate(world.boxes):
        n = b.name or "box_%d" % i
        if n in names:
            n = "%s_%d" % (n, i)
        names.append(n)
    return names


def _box_model(world_el: _El, box: Box, name: str) -> None:
    m = world_el.sub("model", name=name)
    m.sub("static", "true")
    # SDF box geometry is centred on its frame: lift by half the height to stand on z=0.
    m.sub("pose", _vec((box.cx, box.cy, 0.5 * box.height, 0.0, 0.0, box.yaw)))
    link = m.sub("link", name="link")
    size = _vec((box.sx, box.sy, box.height))
    col = link.sub("collision", name="collision")
    col.sub("geometry").sub("box").sub("size", size)
    vis = link.sub("visual", name="visual")
    vis.sub("geometry").sub("box").sub("size", size)
    _material(vis, _box_color(name))
    # GPU LiDAR intensity (wm_sim reflectivity in [0, 1]).
    vis.sub("laser_retro", _num(box.reflectivity))


def world_sdf(world: World, name: Optional[str] = None) -> str:
    """SDF 1.9 world of `world`'s boxes as static models, plus ground, sun and the systems."""
    name = name or world.name or "world"
    sdf = _El("sdf", version=SDF_VERSION)
    w = sdf.sub("world", name=name)
    physics = w.sub("physics", name="1ms", type="ignored")
    physics.sub("max_step_size", "0.001")
    physics.sub("real_time_factor", "1.0")
    w.sub("plugin", filename=PLUGINS["Physics"], name="gz::sim::systems::Physics")
    sensors = w.sub("plugin", filename=PLUGINS["Sensors"], name="gz::sim::systems::Sensors")
    sensors.sub("render_engine", "ogre2")   # gpu_lidar needs a rendering engine
    w.sub("plugin", filename=PLUGINS["SceneBroadcaster"],
          name="gz::sim::systems::SceneBroadcaster")
    w.sub("plugin", filename=PLUGINS["UserCommands"], name="gz::sim::systems::UserCommands")
    w.sub("gravity", "0 0 -9.8")
    scene = w.sub("scene")
    scene.sub("ambient", "0.6 0.6 0.6 1")
    scene.sub("background", "0.8 0.8 0.8 1")
    scene.sub("shadows", "true")
    sun = w.sub("light", type="directional", name="sun")
    sun.sub("cast_shadows", "true")
    sun.sub("pose", "0 0 10 0 0 0")
    sun.sub("diffuse", "0.8 0.8 0.8 1")
    sun.sub("specular", "0.2 0.2 0.2 1")
    att = sun.sub("attenuation")
    att.sub("range", "1000")
    att.sub("constant", "0.9")
    att.sub("linear", "0.01")
    att.sub("quadratic", "0.001")
    sun.sub("direction", "-0.5 0.1 -0.9")
    # Ground plane covering the world's bounds with a margin.
    xmin, ymin, xmax, ymax = world.bounds
    margin = 10.0
    ground = w.sub("model", name="ground_plane")
    ground.sub("static", "true")
    ground.sub("pose", _vec((0.5 * (xmin + xmax), 0.5 * (ymin + ymax), 0, 0, 0, 0)))
    glink = ground.sub("link", name="link")
    plane_size = _vec((xmax - xmin + 2 * margin, ymax - ymin + 2 * margin))
    gcol = glink.sub("collision", name="collision")
    gplane = gcol.sub("geometry").sub("plane")
    gplane.sub("normal", "0 0 1")
    gplane.sub("size", plane_size)
    gvis = glink.sub("visual", name="visual")
    vplane = gvis.sub("geometry").sub("plane")
    vplane.sub("normal", "0 0 1")
    vplane.sub("size", plane_size)
    _material(gvis, (0.85, 0.85, 0.82))
    w.comment("%d obstacles of wm_sim world '%s'" % (len(world.boxes), world.name))
    for box, model_name in zip(world.boxes, box_model_names(world)):
        _box_model(w, box, model_name)
    return _document(sdf, _GENERATED % ("wm_sim world '%s'" % world.name))


# --- robot -----------------------------------------------------------------------------------
class Link(NamedTuple):
    """A robot link. `xyz` is its origin in base_link (= the model frame, every other link
    hangs off base_link with a fixed or wheel joint there); geometry is at `geom_xyz`/
    `geom_rpy` in the link; inertia is diagonal about `com` (link frame)."""

    name: str
    xyz: Tuple[float, float, float]
    mass: float
    inertia: Tuple[float, float, float]
    com: Tuple[float, float, float]
    shape: str                          # box | cylinder | sphere
    dims: Tuple[float, ...]             # box (x, y, z); cylinder (radius, length); sphere (r,)
    geom_xyz: Tuple[float, float, float]
    geom_rpy: Tuple[float, float, float]
    rgb: Tuple[float, float, float]
    mu: Optional[float]                 # Coulomb friction of the collision (None: default)


class Joint(NamedTuple):
    name: str
    kind: str                           # wheel (continuous about axis) | fixed
    parent: str
    child: str
    axis: Tuple[float, float, float] = (0.0, 0.0, 0.0)


def _box_inertia(m: float, x: float, y: float, z: float) -> Tuple[float, float, float]:
    return (m * (y * y + z * z) / 12.0, m * (x * x + z * z) / 12.0, m * (x * x + y * y) / 12.0)


def robot_links(payload_mass: float = DEFAULT_PAYLOAD_MASS) -> Tuple[List[Link], List[Joint]]:
    """Links and joints shared by the SDF model and the URDF."""
    if not payload_mass > 0.0:
        raise ValueError("payload_mass must be positive (gz needs a mass on every link)")
    cx, cy, cz = CHASSIS_SIZE
    chassis_z = GROUND_CLEARANCE + 0.5 * cz
    r, wdt = WHEEL_RADIUS, WHEEL_WIDTH
    # Wheel cylinders turned so their axis is +y (the joint axis); link frames stay aligned.
    wheel_i = (WHEEL_MASS * (3 * r * r + wdt * wdt) / 12.0, 0.5 * WHEEL_MASS * r * r,
               WHEEL_MASS * (3 * r * r + wdt * wdt) / 12.0)
    caster_i = (0.4 * CASTER_MASS * CASTER_RADIUS ** 2,) * 3
    px, py, pz = PAYLOAD_SIZE
    lidar_i = (LIDAR_MASS * (3 * LIDAR_RADIUS ** 2 + LIDAR_LENGTH ** 2) / 12.0,
               LIDAR_MASS * (3 * LIDAR_RADIUS ** 2 + LIDAR_LENGTH ** 2) / 12.0,
               0.5 * LIDAR_MASS * LIDAR_RADIUS ** 2)
    zero = (0.0, 0.0, 0.0)
    turn = (-0.5 * math.pi, 0.0, 0.0)
    links = [
        Link(BASE_FRAME, zero, CHASSIS_MASS, _box_inertia(CHASSIS_MASS, cx, cy, cz),
             (0.0, 0.0, chassis_z), "box", CHASSIS_SIZE, (0.0, 0.0, chassis_z), zero,
             (0.85, 0.55, 0.1), None),
        Link("left_wheel", (0.0, 0.5 * WHEEL_SEPARATION, r), WHEEL_MASS, wheel_i, zero,
             "cylinder", (r, wdt), zero, turn, (0.1, 0.1, 0.1), 1.0),
        Link("right_wheel", (0.0, -0.5 * WHEEL_SEPARATION, r), WHEEL_MASS, wheel_i, zero,
             "cylinder", (r, wdt), zero, turn, (0.1, 0.1, 0.1), 1.0),
        Link("caster_front", (CASTER_X, 0.0, CASTER_RADIUS), CASTER_MASS, caster_i, zero,
             "sphere", (CASTER_RADIUS,), zero, zero, (0.3, 0.3, 0.3), 0.0),
        Link("caster_rear", (-CASTER_X, 0.0, CASTER_RADIUS), CASTER_MASS, caster_i, zero,
             "sphere", (CASTER_RADIUS,), zero, zero, (0.3, 0.3, 0.3), 0.0),
        Link("payload", (0.0, 0.0, GROUND_CLEARANCE + cz + 0.5 * pz), payload_mass,
             _box_inertia(payload_mass, px, py, pz), zero, "box", PAYLOAD_SIZE, zero, zero,
             (0.45, 0.45, 0.5), None),
        Link(LIDAR_FRAME, (LIDAR_MOUNT[0], LIDAR_MOUNT[1], LIDAR_MOUNT[2]), LIDAR_MASS, lidar_i,
             zero, "cylinder", (LIDAR_RADIUS, LIDAR_LENGTH), zero, zero, (0.15, 0.15, 0.15),
             None),
    ]
    joints = [
        Joint("left_wheel_joint", "wheel", BASE_FRAME, "left_wheel", (0.0, 1.0, 0.0)),
        Joint("right_wheel_joint", "wheel", BASE_FRAME, "right_wheel", (0.0, 1.0, 0.0)),
        Joint("caster_front_joint", "fixed", BASE_FRAME, "caster_front"),
        Joint("caster_rear_joint", "fixed", BASE_FRAME, "caster_rear"),
        Joint("payload_joint", "fixed", BASE_FRAME, "payload"),
        Joint("lidar_joint", "fixed", BASE_FRAME, LIDAR_FRAME),
    ]
    return links, joints


def link_yaw(link: Link) -> float:
    """Yaw of a link in base_link (only the LiDAR mount has one)."""
    return LIDAR_MOUNT[3] if link.name == LIDAR_FRAME else 0.0


def gz_topics(robot_name: str = DEFAULT_ROBOT) -> Dict[str, str]:
    """The gz topics of one robot's model, scoped by its name (see the module docstring).
    `lidar` is the sensor's <topic> (LaserScan); gz-sensors publishes the cloud on
    `<topic>/points`."""
    base = "/model/%s" % robot_name
    return {
        "cmd_vel": base + "/cmd_vel",
        "odometry": base + "/odometry",
        "tf": base + "/tf",
        "joint_state": base + "/joint_state",
        "lidar": base + "/lidar",
        "points": base + "/lidar/points",
        "clock": "/clock",
    }


def _sdf_geometry(parent: _El, link: Link) -> None:
    g = parent.sub("geometry")
    if link.shape == "box":
        g.sub("box").sub("size", _vec(link.dims))
    elif link.shape == "cylinder":
        c = g.sub("cylinder")
        c.sub("radius", _num(link.dims[0]))
        c.sub("length", _num(link.dims[1]))
    else:
        g.sub("sphere").sub("radius", _num(link.dims[0]))


def _lidar_sensor(link_el: _El, topic: str) -> None:
    s = link_el.sub("sensor", name=LIDAR_SENSOR_NAME, type="gpu_lidar")
    s.sub("pose", "0 0 0 0 0 0")
    s.sub("topic", topic)
    s.sub("gz_frame_id", LIDAR_FRAME)      # frame_id of the clouds (Harmonic+)
    s.sub("update_rate", _num(LIDAR_RATE))
    s.sub("always_on", "true")
    s.sub("visualize", "false")
    lidar = s.sub("lidar")
    scan = lidar.sub("scan")
    h = scan.sub("horizontal")
    h.sub("samples", str(LIDAR_COLUMNS))
    h.sub("resolution", "1")
    # A full turn without a duplicated column at +-pi.
    h.sub("min_angle", _num(-math.pi))
    h.sub("max_angle", _num(math.pi - 2.0 * math.pi / LIDAR_COLUMNS))
    v = scan.sub("vertical")
    v.sub("samples", str(LIDAR_RINGS))
    v.sub("resolution", "1")
    v.sub("min_angle", _num(-math.radians(LIDAR_VFOV_DEG)))
    v.sub("max_angle", _num(math.radians(LIDAR_VFOV_DEG)))
    rng = lidar.sub("range")
    rng.sub("min", _num(LIDAR_MIN_RANGE))
    rng.sub("max", _num(LIDAR_MAX_RANGE))
    rng.sub("resolution", "0.01")
    noise = lidar.sub("noise")
    noise.sub("type", "gaussian")
    noise.sub("mean", "0")
    noise.sub("stddev", "0.01")


def robot_sdf(robot_name: str = DEFAULT_ROBOT,
              payload_mass: float = DEFAULT_PAYLOAD_MASS) -> str:
    """SDF 1.9 model of the robot; gz topics scoped as /model/<robot_name>/..."""
    links, joints = robot_links(payload_mass)
    topics = gz_topics(robot_name)
    sdf = _El("sdf", version=SDF_VERSION)
    m = sdf.sub("model", name=MODEL_NAME)
    m.comment("gz topics of %s (/model/%s/...); for another robot generate its own model "
              "with export_gazebo (see wm_gazebo.export)" % (robot_name, robot_name))
    for link in links:
        le = m.sub("link", name=link.name)
        le.sub("pose", _vec(link.xyz + (0.0, 0.0, link_yaw(link))))
        inertial = le.sub("inertial")
        inertial.sub("pose", _vec(link.com + (0.0, 0.0, 0.0)))
        inertial.sub("mass", _num(link.mass))
        ie = inertial.sub("inertia")
        ie.sub("ixx", _num(link.inertia[0]))
        ie.sub("ixy", "0")
        ie.sub("ixz", "0")
        ie.sub("iyy", _num(link.inertia[1]))
        ie.sub("iyz", "0")
        ie.sub("izz", _num(link.inertia[2]))
        geom_pose = _vec(link.geom_xyz + link.geom_rpy)
        col = le.sub("collision", name="collision")
        col.sub("pose", geom_pose)
        _sdf_geometry(col, link)
        if link.mu is not None:
            ode = col.sub("surface").sub("friction").sub("ode")
            ode.sub("mu", _num(link.mu))
            ode.sub("mu2", _num(link.mu))
        vis = le.sub("visual", name="visual")
        vis.sub("pose", geom_pose)
        _sdf_geometry(vis, link)
        _material(vis, link.rgb)
        if link.name == LIDAR_FRAME:
            _lidar_sensor(le, topics["lidar"])
    for j in joints:
        je = m.sub("joint", name=j.name, type="revolute" if j.kind == "wheel" else "fixed")
        je.sub("parent", j.parent)
        je.sub("child", j.child)
        if j.kind == "wheel":
            axis = je.sub("axis")
            axis.sub("xyz", _vec(j.axis))
            limit = axis.sub("limit")           # unbounded: a continuous wheel
            limit.sub("lower", "-1.79769e+308")
            limit.sub("upper", "1.79769e+308")
    dd = m.sub("plugin", filename=PLUGINS["DiffDrive"], name="gz::sim::systems::DiffDrive")
    dd.sub("left_joint", "left_wheel_joint")
    dd.sub("right_joint", "right_wheel_joint")
    dd.sub("wheel_separation", _num(WHEEL_SEPARATION))
    dd.sub("wheel_radius", _num(WHEEL_RADIUS))
    dd.sub("odom_publish_frequency", _num(ODOM_RATE))
    dd.sub("topic", topics["cmd_vel"])
    dd.sub("odom_topic", topics["odometry"])
    dd.sub("tf_topic", topics["tf"])
    dd.sub("frame_id", ODOM_FRAME)
    dd.sub("child_frame_id", BASE_FRAME)
    # Limits of the wheels as in wm_sim.dynamics (max wheel speed and acceleration).
    v_max = _DYN.max_wheel_speed * WHEEL_RADIUS
    a_max = _DYN.max_wheel_accel * WHEEL_RADIUS
    dd.sub("min_linear_velocity", _num(-v_max))
    dd.sub("max_linear_velocity", _num(v_max))
    dd.sub("min_angular_velocity", _num(-2.0 * v_max / WHEEL_SEPARATION))
    dd.sub("max_angular_velocity", _num(2.0 * v_max / WHEEL_SEPARATION))
    dd.sub("min_linear_acceleration", _num(-a_max))
    dd.sub("max_linear_acceleration", _num(a_max))
    dd.sub("min_angular_acceleration", _num(-2.0 * a_max / WHEEL_SEPARATION))
    dd.sub("max_angular_acceleration", _num(2.0 * a_max / WHEEL_SEPARATION))
    jsp = m.sub("plugin", filename=PLUGINS["JointStatePublisher"],
                name="gz::sim::systems::JointStatePublisher")
    jsp.sub("topic", topics["joint_state"])
    for j in joints:
        if j.kind == "wheel":
            jsp.sub("joint_name", j.name)
    return _document(sdf, _GENERATED % "the robot's dimensions")


def model_config() -> str:
    root = _El("model")
    root.sub("name", MODEL_NAME)
    root.sub("version", "1.0")
    root.sub("sdf", "model.sdf", version=SDF_VERSION)
    author = root.sub("author")
    author.sub("name", "wm-nav maintainers")
    author.sub("email", "maintainers@wm-nav.dev")
    root.sub("description", "Differential-drive warehouse robot with a 16-ring GPU LiDAR "
                            "(wm navigation stack).")
    return _document(root, _GENERATED % "the robot's dimensions")


def _urdf_geometry(parent: _El, link: Link) -> None:
    g = parent.sub("geometry")
    if link.shape == "box":
        g.sub("box", size=_vec(link.dims))
    elif link.shape == "cylinder":
        g.sub("cylinder", radius=_num(link.dims[0]), length=_num(link.dims[1]))
    else:
        g.sub("sphere", radius=_num(link.dims[0]))


def robot_urdf(payload_mass: float = DEFAULT_PAYLOAD_MASS) -> str:
    """URDF of the same links and joints, for robot_state_publisher."""
    links, joints = robot_links(payload_mass)
    by_name = {link.name: link for link in links}
    robot = _El("robot", name=MODEL_NAME)
    for link in links:
        le = robot.sub("link", name=link.name)
        if link.name != BASE_FRAME:  # KDL warns about an inertia on the root link
            inertial = le.sub("inertial")
            inertial.sub("origin", xyz=_vec(link.com), rpy="0 0 0")
            inertial.sub("mass", value=_num(link.mass))
            inertial.sub("inertia", ixx=_num(link.inertia[0]), ixy="0", ixz="0",
                         iyy=_num(link.inertia[1]), iyz="0", izz=_num(link.inertia[2]))
        vis = le.sub("visual")
        vis.sub("origin", xyz=_vec(link.geom_xyz), rpy=_vec(link.geom_rpy))
        _urdf_geometry(vis, link)
        vis.sub("material", name=link.name + "_material").sub(
            "color", rgba=_vec(link.rgb + (1.0,)))
        col = le.sub("collision")
        col.sub("origin", xyz=_vec(link.geom_xyz), rpy=_vec(link.geom_rpy))
        _urdf_geometry(col, link)
    for j in joints:
        child = by_name[j.child]
        je = robot.sub("joint", name=j.name,
                       type="continuous" if j.kind == "wheel" else "fixed")
        je.sub("parent", link=j.parent)
        je.sub("child", link=j.child)
        je.sub("origin", xyz=_vec(child.xyz), rpy=_vec((0.0, 0.0, link_yaw(child))))
        if j.kind == "wheel":
            je.sub("axis", xyz=_vec(j.axis))
    return _document(robot, _GENERATED % "the robot's dimensions")


# --- ros_gz_bridge ---------------------------------------------------------------------------
def bridge_entries(robot_name: str = DEFAULT_ROBOT) -> List[Dict[str, str]]:
    """One robot's bridge: the contract topics it needs from (or gives to) Gazebo.

    ROS names are relative (the bridge runs in the robot's namespace) except /clock
    (global by contract) and /tf (where robot_state_publisher and every tf2 listener of the
    robot's nodes are, so odom -> base_link joins base_link -> lidar_link in one tree)."""
    t = gz_topics(robot_name)

    def entry(ros, gz, ros_type, gz_type, direction):
        return {"ros_topic_name": ros, "gz_topic_name": gz, "ros_type_name": ros_type,
                "gz_type_name": gz_type, "direction": direction}

    return [
        entry("/clock", t["clock"], "rosgraph_msgs/msg/Clock", "gz.msgs.Clock", "GZ_TO_ROS"),
        entry("points", t["points"], "sensor_msgs/msg/PointCloud2", "gz.msgs.PointCloudPacked",
              "GZ_TO_ROS"),
        entry("odom", t["odometry"], "nav_msgs/msg/Odometry", "gz.msgs.Odometry", "GZ_TO_ROS"),
        entry("cmd_vel", t["cmd_vel"], "geometry_msgs/msg/Twist", "gz.msgs.Twist", "ROS_TO_GZ"),
        entry("/tf", t["tf"], "tf2_msgs/msg/TFMessage", "gz.msgs.Pose_V", "GZ_TO_ROS"),
        entry("joint_states", t["joint_state"], "sensor_msgs/msg/JointState", "gz.msgs.Model",
              "GZ_TO_ROS"),
    ]


def bridge_yaml(robot_name: str = DEFAULT_ROBOT) -> str:
    lines = [
        "# " + _GENERATED % ("the robot model's topics"),
        "# ros_gz_bridge parameter_bridge config of %s: run it in the robot's namespace "
        "(-r __ns:=/%s)," % (robot_name, robot_name),
        "# so relative ros_topic_name values become /%s/<name>. gz_topic_name values are the"
        % robot_name,
        "# topics models/wm_robot/model.sdf publishes (/model/%s/...). A second robot:"
        % robot_name,
        "#   ros2 run wm_gazebo export_gazebo --robot robot2 --out DIR",
        "# writes DIR/models/wm_robot/model.sdf and DIR/config/gz_bridge.yaml with "
        "/model/robot2/... topics.",
    ]
    for e in bridge_entries(robot_name):
        first = True
        for key in ("ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name",
                    "direction"):
            lines.append("%s%s: %s" % ("- " if first else "  ", key, e[key]))
            first = False
    return "\n".join(lines) + "\n"


# --- the checked-in files --------------------------------------------------------------------
def generated_files(robot_name: str = DEFAULT_ROBOT) -> Dict[str, str]:
    """Relative path (in the package) -> content of every generated file."""
    files = {"worlds/%s.sdf" % stem: world_sdf(factory(), stem)
             for stem, factory in WORLDS.items()}
    files["models/%s/model.sdf" % MODEL_NAME] = robot_sdf(robot_name)
    files["models/%s/model.config" % MODEL_NAME] = model_config()
    files["urdf/%s.urdf" % MODEL_NAME] = robot_urdf()
    files["config/gz_bridge.yaml"] = bridge_yaml(robot_name)
    return files


def package_source_dir() -> Optional[str]:
    """src/wm_gazebo when this module runs from the source tree (or a colcon symlink
    install), else None."""
    d = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return d if os.path.isfile(os.path.join(d, "package.xml")) else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="export_gazebo",
        description="Regenerate the Gazebo worlds, robot model, URDF and bridge config.")
    ap.add_argument("--out", help="package folder to write into (default: the source tree "
                                  "of wm_gazebo)")
    ap.add_argument("--robot", default=DEFAULT_ROBOT,
                    help="robot name the gz topics are scoped by (default %(default)s)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a file differs from what would be written")
    args = ap.parse_args(argv)
    out = args.out or package_source_dir()
    if out is None:
        ap.error("cannot find the wm_gazebo source tree; pass --out")
    if args.robot != DEFAULT_ROBOT and not args.out:
        ap.error("the checked-in files are for %s; pass --out for another robot"
                 % DEFAULT_ROBOT)
    drift = []
    for rel, text in sorted(generated_files(args.robot).items()):
        path = os.path.join(out, rel)
        old = None
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                old = f.read()
        if old == text:
            continue
        drift.append(rel)
        if not args.check:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    verb = "differ" if args.check else "written"
    print("%s: %s" % (verb, ", ".join(drift) if drift else "none (up to date)"))
    return 1 if (args.check and drift) else 0


if __name__ == "__main__":
    sys.exit(main())
