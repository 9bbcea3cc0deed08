"""MuJoCo physics backend of the simulator: the `Engine` interface on a headless MuJoCo model.

The model is generated from a `World` (every Box becomes a static box geom standing on a
friction floor plane) plus N differential-drive robots. Each robot is a free-floating chassis
(base_link at floor level under the wheel axle) with

  * a 0.7 x 0.55 x 0.3 m chassis box (40 kg) and four frictionless sphere casters (two front,
    two back) that carry the weight the wheels do not;
  * two driven wheels (radius / track from DiffDriveParams; ellipsoids, so each touches the
    floor in one point) on damped hinge joints with rotor armature, each on a preloaded
    vertical suspension spring (WHEEL_PRELOAD ~150 N + the wheel's weight on the floor,
    whatever the payload); wheel-floor friction is the floor's `floor_friction`;
  * a payload slab on top of the chassis, a welded child body whose mass changes at run time;
  * one torque-limited `motor` actuator per wheel. Every physics step a per-wheel PI speed
    controller, computed here in Python (vectorised over all wheels), turns the wheel speed
    targets derived from the commanded (v, w) into a torque, clipped to +-`WHEEL_TORQUE_MAX`.

The simulator never writes the chassis state: lag (the PI loop against the robot's inertia),
load-dependent acceleration (torque limit / total mass) and slip (the torque or the
centripetal demand exceeding wheel friction) all come out of the MuJoCo solver. With the
defaults (8 N m, r = 0.1 m, mu = 0.8): about 3 m/s^2 empty, 1.0 m/s^2 with 100 kg, 0.8 m/s^2
with 150 kg; a 1.5 m/s -> (1.5 m/s, 3 rad/s) turn holds empty, slides ~7 cm with 100 kg and
~0.4 m with 150 kg (lateral grip 2 * mu * ~170 N); on mu <= ~0.35 an empty robot spins its
wheels under full torque.

Payload mass at run time: `set_payload` writes `model.body_mass` and `model.body_inertia` of
the payload body (a solid slab's inertia scaled with the mass) and then calls
`mujoco.mj_setConst` on a scratch MjData to refresh the derived constants (subtree masses,
the invweight0 terms the contact solver uses for its regularisation); the simulation state in
`self.data` is not touched. The CRB algorithm reads body_mass every step, so the next
mj_step already feels the new load.

LiDAR: one `mujoco.mj_multiRay` call per scan from the sensor mount (chassis pose incl.
pitch/roll, then LidarSpec.mount). The robot's own geoms are excluded with `bodyexclude`
= its chassis body (chassis box + casters) and, for its wheel and payload geoms (other
bodies), by moving them into geom group 5 for the duration of the cast while the ray
geomgroup mask disables group 5; the floor and everything else sit in group 0. Spare
obstacle geoms live in group 5 (and without collision bits) until `add_obstacle` uses them.
Output format, ring/azimuth conventions, noise, dropouts and intensity are those of
`wm_sim.lidar.Lidar.scan`, with a seeded numpy Generator per robot.

Layout changes: every obstacle is a mocap body holding one box geom, so `move_obstacle`
writes `data.mocap_pos/mocap_quat` (collisions and rays use it from the next mj_kinematics /
mj_step on). `add_obstacle` fills one of `spare_obstacles` pre-allocated hidden mocap boxes
(parked 1 km below the floor, without contact bits, ray-invisible): size, bounding sphere /
boxes (geom_rbound, geom_aabb, bvh_aabb), pose, contact bits (geom and body level) and group
are set at run time. When all spares are used `ObstacleCapacityError` is raised; build the
engine with a larger `spare_obstacles`. `self.world` is replaced by a new World in both cases.

Plain Python + numpy + mujoco, no rclpy; Python 3.8 syntax.
"""
from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import mujoco
import numpy as np

from wm_common.geometry import Pose2D, wrap_angle
from .dynamics import DiffDriveParams
from .engine import Engine
from .lidar import LidarSpec, sensor_returns
from .world import Box, World

# --- robot geometry and drive numbers (SI) ---------------------------------------------------
CHASSIS_SIZE = (0.7, 0.55, 0.3)     # full sizes; bottom CHASSIS_CLEARANCE above the floor
CHASSIS_CLEARANCE = 0.05
CHASSIS_MASS = 40.0
WHEEL_MASS = 2.0
WHEEL_WIDTH = 0.05
WHEEL_DAMPING = 0.05                # N m s / rad, bearing + gearbox viscous loss
WHEEL_ARMATURE = 0.02               # kg m^2, reflected rotor inertia
WHEEL_TORQUE_MAX = 8.0              # N m at the wheel (actuator forcerange)
# Drive wheel suspension: the wheels' normal load is set by a preloaded spring (as on AMRs
# whose casters carry the rest), so traction is physical and does not depend on how the
# solver would split the weight among six statically indeterminate floor contacts.
WHEEL_PRELOAD = 150.0               # N pressing each wheel down (+ the wheel's weight)
SUSPENSION_STIFFNESS = 6000.0       # N/m
SUSPENSION_DAMPING = 300.0          # N s/m
SUSPENSION_TRAVEL = 0.03            # m either way
CASTER_RADIUS = 0.04
CASTER_MASS = 0.25
CASTER_XY = ((0.28, 0.18), (0.28, -0.18), (-0.28, 0.18), (-0.28, -0.18))
PAYLOAD_SIZE = (0.6, 0.5, 0.06)     # the slab the payload mass is spread over
ROBOT_REFLECTIVITY = 0.6            # as world.robot_box
PI_KP = 4.0                         # N m per rad/s of wheel speed error
PI_KI = 20.0                        # N m per rad of integrated error

_HIDDEN_GROUP = 5                   # geom group the rays never see
_PARK_Z = -1000.0                   # where spare obstacle geoms wait
_MIN_BODY_MASS = 1e-6               # body_mass of an empty payload slab


class ObstacleCapacityError(RuntimeError):
    """add_obstacle was called more often than the engine has spare obstacle geoms."""


def _yaw_quat(yaw: float) -> Tuple[float, float, float, float]:
    return (math.cos(0.5 * yaw), 0.0, 0.0, math.sin(0.5 * yaw))


def _fmt(*vals: float) -> str:
    return " ".join("%.9g" % float(v) for v in vals)


def _slab_inertia(mass: float, size: Sequence[float]) -> np.ndarray:
    sx, sy, sz = size
    return mass / 12.0 * np.array([sy * sy + sz * sz, sx * sx + sz * sz, sx * sx + sy * sy])


class MujocoEngine(Engine):
    """N differential-drive robots simulated by MuJoCo in a box World (see module doc)."""

    def __init__(self, world: World, spawns: Mapping[str, Pose2D],
                 lidar: Optional[LidarSpec] = None, params: Optional[DiffDriveParams] = None,
                 payloads: Optional[Mapping[str, float]] = None, seed: int = 0,
                 floor_friction: float = 0.8, timestep: float = 0.002,
                 spare_obstacles: int = 4):
        if not timestep > 0.0:
            raise ValueError("timestep must be positive")
        if spare_obstacles < 0:
            raise ValueError("spare_obstacles must be >= 0")
        self.world = world
        self.robot_ids: List[str] = list(spawns)
        self.params = params or DiffDriveParams()
        self.lidar_spec = lidar or LidarSpec()
        self.floor_friction = float(floor_friction)
        self.timestep = float(timestep)
        self.spare_obstacles = int(spare_obstacles)
        payloads = dict(payloads or {})
        self._payload = {rid: float(payloads.get(rid, self.params.payload_mass))
                         for rid in self.robot_ids}
        for m in self._payload.values():
            if m < 0.0 or not math.isfinite(m):
                raise ValueError("payload mass must be finite and >= 0")

        xml = self._mjcf(world.boxes, spawns)
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self._index(world.boxes)
        for rid in self.robot_ids:
            self._write_payload(rid, self._payload[rid])
        mujoco.mj_setConst(self.model, mujoco.MjData(self.model))
        mujoco.mj_forward(self.model, self.data)

        n = len(self.robot_ids)
        self._target = np.zeros(2 * n)         # wheel speed set-points, rad/s, [l0, r0, l1..]
        self._integ = np.zeros(2 * n)          # PI integral state, rad
        self._cmd: Dict[str, Tuple[float, float]] = {rid: (0.0, 0.0) for rid in self.robot_ids}
        self._rngs = {rid: np.random.default_rng(seed + 17 * i)
                      for i, rid in enumerate(self.robot_ids)}
        self._init_lidar()

    # --- model construction ------------------------------------------------------------------
    def _mjcf(self, boxes: Sequence[Box], spawns: Mapping[str, Pose2D]) -> str:
        p = self.params
        r, half_track = p.wheel_radius, 0.5 * p.track
        cx, cy, cz = CHASSIS_SIZE
        ff = self.floor_friction
        out = [
            '<mujoco model="wm_warehouse">',
            '<compiler angle="radian" autolimits="true"/>',
            '<option timestep="%s" integrator="implicitfast" cone="elliptic" impratio="5"/>'
            % _fmt(self.timestep),
            '<size memory="8M"/>',
            # Contact bits: robot parts (contype 1, conaffinity 5) touch the floor (1/1), each
            # other and obstacles (4/0); obstacles never collide with the floor or each other.
            '<default><geom contype="1" conaffinity="5" condim="3" solref="0.005 1"/></default>',
            '<worldbody>',
            # Floor: priority 1 so the wheel-floor contact uses floor_friction exactly.
            '<geom name="floor" type="plane" size="0 0 1" priority="1" friction="%s" '
            'contype="1" conaffinity="1"/>'
            % _fmt(ff, 0.005, 0.0001),
        ]
        # Every obstacle is a mocap body with one box geom at its origin: moving it is a
        # write to data.mocap_pos/quat, and its bounding volumes stay one-geom simple.
        for i, b in enumerate(boxes):
            out.append('<body name="obs_%d" mocap="true" pos="%s" quat="%s"><geom name="obs_%d" '
                       'type="box" size="%s" contype="4" conaffinity="0" '
                       'friction="0.6 0.005 0.0001"/></body>'
                       % (i, _fmt(b.cx, b.cy, 0.5 * b.height), _fmt(*_yaw_quat(b.yaw)), i,
                          _fmt(0.5 * b.sx, 0.5 * b.sy, 0.5 * b.height)))
        for k in range(self.spare_obstacles):
            out.append('<body name="spare_%d" mocap="true" pos="0 0 %s"><geom name="spare_%d" '
                       'type="box" size="0.1 0.1 0.1" contype="0" conaffinity="0" group="%d" '
                       'friction="0.6 0.005 0.0001"/></body>'
                       % (k, _fmt(_PARK_Z - 10.0 * k), k, _HIDDEN_GROUP))
        psx, psy, psz = PAYLOAD_SIZE
        for rid in self.robot_ids:
            s = spawns[rid]
            q = _fmt(*_yaw_quat(s.yaw))
            out += [
                '<body name="%s/base" pos="%s" quat="%s">' % (rid, _fmt(s.x, s.y, 0.0), q),
                '<freejoint name="%s/root"/>' % rid,
                '<geom name="%s/chassis" type="box" size="%s" pos="%s" mass="%s"/>'
                % (rid, _fmt(cx / 2, cy / 2, cz / 2), _fmt(0, 0, CHASSIS_CLEARANCE + cz / 2),
                   _fmt(CHASSIS_MASS)),
            ]
            for j, (x, y) in enumerate(CASTER_XY):
                # Frictionless (condim 1), priority 2 so the floor's friction is not used.
                out.append('<geom name="%s/caster_%d" type="sphere" size="%s" pos="%s" '
                           'mass="%s" condim="1" priority="2" friction="0 0 0"/>'
                           % (rid, j, _fmt(CASTER_RADIUS), _fmt(x, y, CASTER_RADIUS),
                              _fmt(CASTER_MASS)))
            for side, y in (("left", half_track), ("right", -half_track)):
                out += [
                    '<body name="%s/wheel_%s" pos="%s">' % (rid, side, _fmt(0, y, r)),
                    # Suspension: a preloaded vertical spring presses the wheel on the floor
                    # (springref below 0: at q = 0 it pushes down with WHEEL_PRELOAD).
                    '<joint name="%s/susp_%s" type="slide" axis="0 0 1" stiffness="%s" '
                    'springref="%s" damping="%s" range="%s"/>'
                    % (rid, side, _fmt(SUSPENSION_STIFFNESS),
                       _fmt(-WHEEL_PRELOAD / SUSPENSION_STIFFNESS), _fmt(SUSPENSION_DAMPING),
                       _fmt(-SUSPENSION_TRAVEL, SUSPENSION_TRAVEL)),
                    '<joint name="%s/wheel_%s" type="hinge" axis="0 1 0" damping="%s" '
                    'armature="%s"/>' % (rid, side, _fmt(WHEEL_DAMPING), _fmt(WHEEL_ARMATURE)),
                    '<geom name="%s/wheel_%s" type="ellipsoid" size="%s" '
                    'mass="%s" friction="0.1 0.005 0.0001"/>'
                    % (rid, side, _fmt(r, WHEEL_WIDTH / 2, r), _fmt(WHEEL_MASS)),
                    '</body>',
                ]
            out += [
                '<body name="%s/payload" pos="%s">'
                % (rid, _fmt(0, 0, CHASSIS_CLEARANCE + cz)),
                '<inertial pos="%s" mass="1" diaginertia="%s"/>'
                % (_fmt(0, 0, psz / 2), _fmt(*_slab_inertia(1.0, PAYLOAD_SIZE))),
                '<geom name="%s/payload" type="box" size="%s" pos="%s" mass="0"/>'
                % (rid, _fmt(psx / 2, psy / 2, psz / 2), _fmt(0, 0, psz / 2)),
                '</body>',
                '</body>',
            ]
        out += ['</worldbody>', '<actuator>']
        for rid in self.robot_ids:
            for side in ("left", "right"):
                out.append('<motor name="%s/wheel_%s" joint="%s/wheel_%s" gear="1" '
                           'ctrlrange="%s" forcerange="%s"/>'
                           % (rid, side, rid, side, _fmt(-WHEEL_TORQUE_MAX, WHEEL_TORQUE_MAX),
                              _fmt(-WHEEL_TORQUE_MAX, WHEEL_TORQUE_MAX)))
        out += ['</actuator>', '</mujoco>']
        return "\n".join(out)

    def _id(self, objtype, name: str) -> int:
        i = mujoco.mj_name2id(self.model, objtype, name)
        if i < 0:
            raise KeyError(name)
        return i

    def _index(self, boxes: Sequence[Box]) -> None:
        m = self.model
        G, B, J, A = (mujoco.mjtObj.mjOBJ_GEOM, mujoco.mjtObj.mjOBJ_BODY,
                      mujoco.mjtObj.mjOBJ_JOINT, mujoco.mjtObj.mjOBJ_ACTUATOR)
        self._floor_geom = self._id(G, "floor")
        # Obstacles: parallel lists, entry i is world.boxes[i] and its geom.
        self._obs_boxes: List[Box] = list(boxes)
        self._obs_geoms: List[int] = [self._id(G, "obs_%d" % i) for i in range(len(boxes))]
        self._spare_geoms: List[int] = [self._id(G, "spare_%d" % k)
                                        for k in range(self.spare_obstacles)]
        self._spares_used = 0
        self._geom_refl = np.full(m.ngeom, ROBOT_REFLECTIVITY, dtype=np.float32)
        self._geom_refl[self._floor_geom] = self.lidar_spec.floor_reflectivity
        for b, g in zip(boxes, self._obs_geoms):
            self._geom_refl[g] = b.reflectivity
        # Name of what a geom belongs to (for contacts()).
        self._geom_owner: Dict[int, str] = {g: b.name for b, g in zip(boxes, self._obs_geoms)}
        self._geom_owner[self._floor_geom] = "floor"
        self._base_body: Dict[str, int] = {}
        self._free_qpos: Dict[str, int] = {}
        self._free_dof: Dict[str, int] = {}
        self._body_geoms: Dict[str, List[int]] = {}    # chassis + payload: contact surfaces
        self._ray_hide: Dict[str, np.ndarray] = {}     # own geoms not on the base body
        self._payload_body: Dict[str, int] = {}
        self._geom_robot = np.full(m.ngeom, -1, dtype=np.int64)
        wheel_qpos, wheel_dof, act = [], [], []
        for i, rid in enumerate(self.robot_ids):
            base = self._id(B, "%s/base" % rid)
            self._base_body[rid] = base
            root = self._id(J, "%s/root" % rid)
            self._free_qpos[rid] = int(m.jnt_qposadr[root])
            self._free_dof[rid] = int(m.jnt_dofadr[root])
            self._payload_body[rid] = self._id(B, "%s/payload" % rid)
            chassis = self._id(G, "%s/chassis" % rid)
            payload = self._id(G, "%s/payload" % rid)
            self._body_geoms[rid] = [chassis, payload]
            wheels = [self._id(G, "%s/wheel_%s" % (rid, s)) for s in ("left", "right")]
            self._ray_hide[rid] = np.array(wheels + [payload], dtype=np.int64)
            for side in ("left", "right"):
                j = self._id(J, "%s/wheel_%s" % (rid, side))
                wheel_qpos.append(int(m.jnt_qposadr[j]))
                wheel_dof.append(int(m.jnt_dofadr[j]))
                act.append(self._id(A, "%s/wheel_%s" % (rid, side)))
            for g in range(m.ngeom):
                if m.body_rootid[m.geom_bodyid[g]] == base:
                    self._geom_robot[g] = i
                    self._geom_owner[g] = rid
        self._wheel_qpos = np.array(wheel_qpos, dtype=np.int64)
        self._wheel_dof = np.array(wheel_dof, dtype=np.int64)
        if act != list(range(2 * len(self.robot_ids))):
            raise RuntimeError("unexpected actuator order")  # ctrl is written as one slice

    def _write_payload(self, rid: str, mass: float) -> None:
        b = self._payload_body[rid]
        mm = max(float(mass), _MIN_BODY_MASS)
        self.model.body_mass[b] = mm
        self.model.body_inertia[b] = _slab_inertia(mm, PAYLOAD_SIZE)

    # --- LiDAR set-up ------------------------------------------------------------------------
    def _init_lidar(self) -> None:
        s = self.lidar_spec
        el, az = s.elevations(), s.azimuths()
        ce, se = np.cos(el)[:, None], np.sin(el)[:, None]
        ux = (ce * np.cos(az)[None, :])
        uy = (ce * np.sin(az)[None, :])
        uz = np.broadcast_to(se, ux.shape)
        self._ray_dirs = np.ascontiguousarray(np.stack([ux, uy, uz], axis=-1).reshape(-1, 3))
        self._ux, self._uy = ux.astype(np.float32), uy.astype(np.float32)
        self._uz = np.ascontiguousarray(uz, dtype=np.float32)
        period_ns = 1e9 / s.scan_rate_hz
        t = np.round(np.arange(s.columns) * period_ns / s.columns).astype(np.uint32)
        self._t_cols = np.ascontiguousarray(np.broadcast_to(t[None, :], (s.rings, s.columns)))
        self._ring = np.ascontiguousarray(np.broadcast_to(
            np.arange(s.rings, dtype=np.uint16)[:, None], (s.rings, s.columns)))
        nray = s.rings * s.columns
        self._ray_geomid = np.zeros(nray, dtype=np.int32)
        self._ray_dist = np.zeros(nray, dtype=np.float64)
        self._ray_normal = np.zeros(nray * 3, dtype=np.float64)
        self._geomgroup = np.ones(6, dtype=np.uint8)
        self._geomgroup[_HIDDEN_GROUP] = 0

    # --- Engine: time and commands -----------------------------------------------------------
    @property
    def time(self) -> float:
        return float(self.data.time)

    def set_command(self, robot_id: str, v: float, w: float) -> None:
        i = self.robot_ids.index(robot_id)
        v = float(v) if math.isfinite(v) else 0.0
        w = float(w) if math.isfinite(w) else 0.0
        self._cmd[robot_id] = (v, w)
        p = self.params
        half = 0.5 * p.track * w
        tl, tr = (v - half) / p.wheel_radius, (v + half) / p.wheel_radius
        k = max(abs(tl), abs(tr))
        if k > p.max_wheel_speed:  # keep the curvature, as DiffDriveRobot does
            tl, tr = tl * p.max_wheel_speed / k, tr * p.max_wheel_speed / k
        self._target[2 * i] = tl
        self._target[2 * i + 1] = tr

    def step(self, dt: float) -> None:
        if dt < 0.0 or not math.isfinite(dt):
            raise ValueError("dt must be a finite non-negative number")
        n = int(math.ceil(dt / self.timestep - 1e-9))
        m, d = self.model, self.data
        h = m.opt.timestep
        dof = self._wheel_dof
        target, integ = self._target, self._integ
        ctrl = d.ctrl
        tmax = WHEEL_TORQUE_MAX
        step = mujoco.mj_step
        for _ in range(n):
            err = target - d.qvel[dof]
            u = PI_KP * err + PI_KI * integ
            # Anti-windup by conditional integration: freeze the integral of a wheel whose
            # torque is saturated in the direction the error pushes.
            integ += np.where((np.abs(u) >= tmax) & (u * err > 0.0), 0.0, err * h)
            np.clip(PI_KP * err + PI_KI * integ, -tmax, tmax, out=ctrl)
            step(m, d)

    def reset_robot(self, robot_id: str, pose: Pose2D) -> None:
        """Put a robot at rest at `pose` (data generation after a crash); wheel angles keep
        counting, so odometry sees no jump in the encoders."""
        i = self.robot_ids.index(robot_id)
        a, b = self._free_qpos[robot_id], self._free_dof[robot_id]
        q = self.data.qpos
        q[a], q[a + 1] = float(pose.x), float(pose.y)
        q[a + 3:a + 7] = _yaw_quat(float(pose.yaw))
        self.data.qvel[b:b + 6] = 0.0
        self.data.qvel[self._wheel_dof[2 * i:2 * i + 2]] = 0.0
        self._integ[2 * i:2 * i + 2] = 0.0
        self.set_command(robot_id, 0.0, 0.0)
        mujoco.mj_forward(self.model, self.data)

    # --- Engine: state -----------------------------------------------------------------------
    def pose(self, robot_id: str) -> Pose2D:
        a = self._free_qpos[robot_id]
        q = self.data.qpos
        w, x, y, z = q[a + 3], q[a + 4], q[a + 5], q[a + 6]
        yaw = math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
        return Pose2D(float(q[a]), float(q[a + 1]), float(wrap_angle(yaw)))

    def body_velocity(self, robot_id: str) -> Tuple[float, float]:
        # Free joint: qvel[0:3] is the world-frame velocity of the body origin (base_link),
        # qvel[3:6] the angular velocity in the body frame.
        a = self._free_qpos[robot_id]
        q = self.data.qpos
        w, x, y, z = q[a + 3], q[a + 4], q[a + 5], q[a + 6]
        fx, fy, fz = 1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y + w * z), 2.0 * (x * z - w * y)
        b = self._free_dof[robot_id]
        qv = self.data.qvel
        v = fx * qv[b] + fy * qv[b + 1] + fz * qv[b + 2]
        return (float(v), float(qv[b + 5]))

    def wheel_angles(self, robot_id: str) -> Tuple[float, float]:
        i = self.robot_ids.index(robot_id)
        q = self.data.qpos
        return (float(q[self._wheel_qpos[2 * i]]), float(q[self._wheel_qpos[2 * i + 1]]))

    def wheel_speeds(self, robot_id: str) -> Tuple[float, float]:
        """(left, right) true wheel speeds, rad/s."""
        i = self.robot_ids.index(robot_id)
        v = self.data.qvel
        return (float(v[self._wheel_dof[2 * i]]), float(v[self._wheel_dof[2 * i + 1]]))

    def set_payload(self, robot_id: str, mass_kg: float) -> None:
        mass_kg = float(mass_kg)
        if mass_kg < 0.0 or not math.isfinite(mass_kg):
            raise ValueError("payload mass must be finite and >= 0")
        self._write_payload(robot_id, mass_kg)
        self._payload[robot_id] = mass_kg
        # Derived constants (subtree masses, invweight0) from a scratch MjData, so the
        # simulation state in self.data stays exactly as it is.
        mujoco.mj_setConst(self.model, mujoco.MjData(self.model))

    def payload(self, robot_id: str) -> float:
        return self._payload[robot_id]

    # --- Engine: LiDAR -----------------------------------------------------------------------
    def _cast(self, robot_id: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(range m, reflectivity, |cos incidence|), float32 (rings, columns); inf = none."""
        m, d, s = self.model, self.data, self.lidar_spec
        mujoco.mj_kinematics(m, d)  # geom poses from the current qpos and layout
        base = self._base_body[robot_id]
        R = d.xmat[base].reshape(3, 3)
        mx, my, mz, myaw = s.mount
        c, sn = math.cos(myaw), math.sin(myaw)
        R_mount = np.array([[c, -sn, 0.0], [sn, c, 0.0], [0.0, 0.0, 1.0]])
        R_s = R @ R_mount
        origin = d.xpos[base] + R @ np.array([mx, my, mz])
        vec = self._ray_dirs @ R_s.T
        hide = self._ray_hide[robot_id]
        m.geom_group[hide] = _HIDDEN_GROUP
        try:
            mujoco.mj_multiRay(m, d, origin, vec.reshape(-1), self._geomgroup, 1, base,
                               self._ray_geomid, self._ray_dist, self._ray_normal,
                               vec.shape[0], float(s.max_range) + 1.0)
        finally:
            m.geom_group[hide] = 0
        shape = (s.rings, s.columns)
        gid = self._ray_geomid
        hit = (gid >= 0) & (self._ray_dist >= 0.0)
        rng = np.where(hit, self._ray_dist, np.inf).reshape(shape).astype(np.float32)
        refl = np.where(hit, self._geom_refl[np.maximum(gid, 0)], 0.0).reshape(shape)
        nrm = self._ray_normal.reshape(-1, 3)
        cos_inc = np.abs(np.einsum("ij,ij->i", nrm, vec))
        cos_inc = np.where(hit, cos_inc, 0.0).reshape(shape)
        return rng, refl.astype(np.float32), cos_inc.astype(np.float32)

    def ranges(self, robot_id: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Noise-free geometry of robot_id's scan, as Lidar.ranges: (range m, reflectivity,
        cos of incidence), float32 (rings, columns), range inf where nothing is hit."""
        return self._cast(robot_id)

    def scan(self, robot_id: str) -> Dict[str, np.ndarray]:
        rng_true, refl, cos_inc = self._cast(robot_id)
        return sensor_returns(self.lidar_spec, rng_true, refl, cos_inc, self._rngs[robot_id],
                              (self._ux, self._uy, self._uz), self._t_cols, self._ring)

    # --- Engine: layout changes --------------------------------------------------------------
    def _place(self, g: int, box: Box) -> None:
        m, d = self.model, self.data
        hx, hy, hz = 0.5 * box.sx, 0.5 * box.sy, 0.5 * box.height
        b = m.geom_bodyid[g]
        if tuple(m.geom_size[g]) != (hx, hy, hz):
            # Resize (spares): the geom and its bounding sphere / boxes, all in the body frame.
            m.geom_size[g] = (hx, hy, hz)
            m.geom_rbound[g] = math.sqrt(hx * hx + hy * hy + hz * hz)
            m.geom_aabb[g] = (0.0, 0.0, 0.0, hx, hy, hz)
            for k in range(m.body_bvhadr[b], m.body_bvhadr[b] + m.body_bvhnum[b]):
                m.bvh_aabb[k] = (0.0, 0.0, 0.0, hx, hy, hz)
        mid = m.body_mocapid[b]
        d.mocap_pos[mid] = (box.cx, box.cy, hz)
        d.mocap_quat[mid] = _yaw_quat(box.yaw)
        self._geom_refl[g] = box.reflectivity
        self._geom_owner[g] = box.name

    def move_obstacle(self, name: str, pose: Pose2D) -> None:
        idx = [i for i, b in enumerate(self._obs_boxes) if b.name == name]
        if not idx:
            raise KeyError("no obstacle named %r" % name)
        for i in idx:
            b = self._obs_boxes[i]
            nb = Box(float(pose.x), float(pose.y), b.sx, b.sy, float(pose.yaw), b.height,
                     b.name, b.reflectivity)
            self._obs_boxes[i] = nb
            self._place(self._obs_geoms[i], nb)
        self._replace_world()

    def add_obstacle(self, box: Box) -> None:
        if self._spares_used >= len(self._spare_geoms):
            raise ObstacleCapacityError(
                "all %d spare obstacle geoms are in use; construct MujocoEngine with a larger "
                "spare_obstacles to add more boxes at run time" % len(self._spare_geoms))
        g = self._spare_geoms[self._spares_used]
        self._spares_used += 1
        self._place(g, box)
        m = self.model
        m.geom_contype[g] = 4
        m.geom_conaffinity[g] = 0
        m.geom_group[g] = 0
        # The broadphase filters on the body-level OR of the geom bits, precomputed at compile.
        b = m.geom_bodyid[g]
        m.body_contype[b] = 4
        m.body_conaffinity[b] = 0
        self._obs_boxes.append(box)
        self._obs_geoms.append(g)
        self._replace_world()

    @property
    def spare_obstacles_left(self) -> int:
        return len(self._spare_geoms) - self._spares_used

    def _replace_world(self) -> None:
        w = self.world
        self.world = World(list(self._obs_boxes), w.bounds, w.spawns, w.goals, w.name)
        mujoco.mj_kinematics(self.model, self.data)

    # --- Engine: contacts --------------------------------------------------------------------
    def contacts(self) -> List[Tuple[str, str]]:
        """Active contacts of robot bodies (chassis or payload) with anything but the floor
        and the robot's own wheels/casters: sorted unique (robot_id, other_name) pairs, the
        other being an obstacle's Box.name or another robot's id."""
        d = self.data
        n = d.ncon
        out = set()
        if n == 0:
            return []
        geom = d.contact.geom[:n] if d.contact.geom.ndim == 2 else np.stack(
            [d.contact.geom1[:n], d.contact.geom2[:n]], axis=1)
        for g1, g2 in geom.tolist():
            for a, b in ((g1, g2), (g2, g1)):
                ra = self._geom_robot[a]
                if ra < 0:
                    continue
                rid = self.robot_ids[ra]
                if a not in self._body_geoms[rid] or b == self._floor_geom:
                    continue
                if self._geom_robot[b] == ra:
                    continue
                out.add((rid, self._geom_owner.get(b, "geom_%d" % b)))
        return sorted(out)

    def in_contact(self, robot_id: str) -> bool:
        return any(rid == robot_id for rid, _ in self.contacts())
