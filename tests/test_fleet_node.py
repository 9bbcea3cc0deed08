"""Two fleet_client nodes over real DDS sharing through a real redis-server: each sees the
other's pose and intended path in map, in RViz markers too; Redis killed and restarted mid-run
(link down -> conservative speed limit, as Nav2's SpeedLimit -> back by itself); garbage from
another client is counted, never fatal; a robot that leaves disappears at once; a parked robot
keeps sharing without new localization poses (AMCL is silent while it stands), and stops once
odometry has carried it too far without one."""
from __future__ import annotations

import contextlib
import os
import time

import pytest
import redis
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped
from nav_msgs.msg import Odometry, Path
from rosutil import CONFIG, wait_for
from visualization_msgs.msg import MarkerArray

from wm_eval.redis_server import RedisServer
from wm_common.geometry import Pose2D
from wm_common.ros.convert import pose2d_to_pose, sec_to_stamp, stamp_to_sec
from wm_common.ros.nav2 import SpeedLimit
from wm_common.ros.qos import SENSOR_QOS, STATUS_QOS
from wm_fleet import schema
from wm_msgs.msg import FleetSnapshot, PlanStatus

ROBOTS = {"r1": Pose2D(2.0, 3.0, 0.0), "r2": Pose2D(5.0, 3.0, 3.14159)}


@contextlib.contextmanager
def redis_url_env(url):
    """WM_REDIS_URL for the children started inside (the secret travels only through the
    environment), restored afterwards."""
    old = os.environ.get("WM_REDIS_URL")
    os.environ["WM_REDIS_URL"] = url
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WM_REDIS_URL")
        else:
            os.environ["WM_REDIS_URL"] = old


class FakeRobot:
    """Odometry (odom == map here), localization and a local plan, like the real nodes."""

    def __init__(self, node, rid, pose=None, v=0.5):
        self.node, self.rid, self.pose, self.v = node, rid, pose or ROBOTS[rid], v
        self.localized = True   # False: the localizer is silent (AMCL while parked)
        ns = "/" + rid
        self.status = node.create_publisher(PlanStatus, ns + "/plan_status", STATUS_QOS)
        self.odom = node.create_publisher(Odometry, ns + "/odom", SENSOR_QOS)
        self.loc = node.create_publisher(PoseWithCovarianceStamped, ns + "/localization_pose",
                                         STATUS_QOS)
        self.plan = node.create_publisher(Path, ns + "/local_plan", STATUS_QOS)

    def tick(self):
        now = self.node.get_clock().now().nanoseconds * 1e-9
        stamp = sec_to_stamp(now)
        o = Odometry()
        o.header.stamp, o.header.frame_id, o.child_frame_id = stamp, "odom", "base_link"
        o.pose.pose = pose2d_to_pose(self.pose)
        o.twist.twist.linear.x = self.v
        self.odom.publish(o)
        self.status.publish(PlanStatus(status=PlanStatus.STATUS_OK))  # driving to a goal
        if self.localized:
            loc = PoseWithCovarianceStamped()
            loc.header.stamp, loc.header.frame_id = stamp, "map"
            loc.pose.pose = pose2d_to_pose(self.pose)
            self.loc.publish(loc)
        path = Path()
        path.header.stamp, path.header.frame_id = stamp, "odom"
        for k in range(1, 11):
            ps = PoseStamped()
            ps.header.stamp = sec_to_stamp(now + 0.1 * k)
            ps.pose = pose2d_to_pose(Pose2D(self.pose.x + 0.05 * k * (1 if self.rid == "r1"
                                                                       else -1), 3.0, 0.0))
            path.poses.append(ps)
        self.plan.publish(path)


@pytest.fixture
def fleet(procs, rclpy_node):
    server = RedisServer().start()
    with redis_url_env(server.url):
        nodes = {rid: procs.start("wm_fleet", "fleet_client", "--params-file",
                                  str(CONFIG / "robot.yaml"), "-r", "__ns:=/" + rid,
                                  "-p", "ttl:=0.5", "-p", "fleet:=test", name=rid)
                 for rid in ROBOTS}
    node = rclpy_node.node
    robots = {rid: FakeRobot(node, rid) for rid in ROBOTS}
    yield server, nodes, robots
    server.stop()


def run(robots, seconds, skip=()):
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        for rid, r in robots.items():
            if rid not in skip:
                r.tick()
        time.sleep(0.05)


def test_two_robots_share_poses_and_paths_and_survive_redis_faults(fleet, rclpy_node, procs):
    server, nodes, robots = fleet
    snaps = rclpy_node.collect(FleetSnapshot, "/r1/fleet/neighbours", STATUS_QOS)
    markers = rclpy_node.collect(MarkerArray, "/r1/fleet/markers", STATUS_QOS)
    limits = rclpy_node.collect(SpeedLimit, "/r1/speed_limit", STATUS_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    assert wait_for(lambda: all(p.poll() is None for p in nodes.values()), 5.0)
    # both nodes up (each imports rclpy and connects: a few seconds on 2 busy cores)
    wait_for(lambda: (run(robots, 0.3) or True) and snaps and snaps[-1].robots, 20.0)
    assert snaps and [r.robot_id for r in snaps[-1].robots] == ["r2"], (
        [procs.log(p)[-500:] for p in nodes.values()],
        [(st.name, [(k.key, k.value) for k in st.values]) for d in diags[-12:]
         for st in d.status])
    r2 = snaps[-1].robots[0]
    assert r2.header.frame_id == "map" and abs(r2.pose.position.x - 5.0) < 1e-6
    assert len(r2.predicted_trajectory) == 10
    assert r2.predicted_trajectory[0].pose.position.x < 5.0   # it drives toward r1
    assert len(r2.footprint.points) == 4
    assert any(m.ns == "fleet" for m in markers[-1].markers)
    assert limits[-1].speed_limit == 0.0                        # link up: no limit
    assert not limits[-1].percentage and limits[-1].header.stamp.sec > 0

    # Redis killed: the link goes down, a conservative limit goes to the safety gate
    server.stop()
    run(robots, 1.5)
    assert limits[-1].speed_limit == pytest.approx(0.3) and not limits[-1].percentage
    assert snaps[-1].robots == []
    assert all(p.poll() is None for p in nodes.values())
    # ... and back on the same address: sharing resumes without a restart
    server = RedisServer(port=server.port, password=server.password).start()
    fleet_server = server
    try:
        assert wait_for(lambda: (run(robots, 0.3) or True) and limits[-1].speed_limit == 0.0
                        and snaps[-1].robots, 15.0)
        # garbage under a robot key from another client: counted, not fatal
        admin = redis.Redis.from_url(server.url)
        prefix, geo, _ = schema.keys("test")
        admin.set(prefix + "r9", b"{garbage")
        admin.geoadd(geo, (2.0 / 111226.29, 3.0 / 111226.29, "r9"))
        run(robots, 1.0)

        def counted():
            for d in diags:
                for st in d.status:
                    if st.name.startswith("/r1/fleet_client"):
                        kv = {k.key: k.value for k in st.values}
                        if int(kv.get("rejected.malformed", 0)) > 0:
                            return True
            return False
        assert wait_for(counted, 3.0)
        assert [r.robot_id for r in snaps[-1].robots] == ["r2"]
        # r2 leaves (Ctrl-C): its entry goes at once, not after the TTL
        procs.stop(nodes["r2"])
        assert admin.get(prefix + "r2") is None
        run(robots, 0.5, skip=("r2",))
        assert snaps[-1].robots == []
        assert nodes["r1"].poll() is None
    finally:
        fleet_server.stop()


def test_face_to_face_deadlock_one_robot_yields_to_its_passing_place(procs, rclpy_node):
    """Two robots stopped face to face with goals: after deadlock_time exactly one (robot
    'r2': equal priority, larger id) is sent to the passing place on its own side, agreed
    through Redis; it is released when the other drives away."""
    node = rclpy_node.node
    server = RedisServer().start()
    with redis_url_env(server.url):
        for rid in ("r1", "r2"):
            procs.start("wm_fleet", "fleet_client", "--params-file", str(CONFIG / "robot.yaml"),
                        "-r", "__ns:=/" + rid, "-p", "fleet:=lane", "-p", "deadlock_time:=1.0",
                        "-p", "passing_places:=15.75,8.6;8.25,3.4", name="dl_" + rid)
    try:
        robots = {"r1": FakeRobot(node, "r1", Pose2D(11.5, 6.5, 0.0), v=0.0),
                  "r2": FakeRobot(node, "r2", Pose2D(12.5, 6.5, 3.14159), v=0.0)}
        yields = {rid: rclpy_node.collect(PoseStamped, "/%s/fleet/yield_goal" % rid,
                                          STATUS_QOS) for rid in robots}
        assert wait_for(lambda: (run(robots, 0.3) or True) and yields["r2"], 25.0)
        goal = yields["r2"][0]
        assert goal.header.frame_id == "map"
        assert (goal.pose.position.x, goal.pose.position.y) == (15.75, 8.6)
        run(robots, 1.0)
        assert yields["r1"] == []                       # exactly one robot yields
        decided = redis.Redis.from_url(server.url).get(
            schema.keys("lane")[0].replace(":robot:", ":yield:") + "r1:r2")
        assert decided == b"r2"
        # r2 has backed out; r1 drives through and away: r2 is released
        robots["r2"].pose = Pose2D(15.75, 8.6, 3.14159)
        robots["r1"].pose, robots["r1"].v = Pose2D(18.5, 6.5, 0.0), 0.5
        assert wait_for(lambda: (run(robots, 0.3) or True) and len(yields["r2"]) >= 2, 10.0)
        assert yields["r2"][-1].header.frame_id == ""   # released
    finally:
        server.stop()


def sharing_state(diags, rid):
    """The latest `sharing` value of robot `rid`'s fleet client in /diagnostics."""
    for d in reversed(diags):
        for st in d.status:
            if st.name.startswith("/%s/fleet_client" % rid):
                kv = {k.key: k.value for k in st.values}
                if "sharing" in kv:
                    return kv["sharing"]
    return None


def test_a_parked_robot_keeps_sharing_without_new_localization_poses(fleet, rclpy_node,
                                                                     procs):
    """AMCL publishes a pose only after the robot moved (update_min_d 0.25 m): parked, r1
    hears none, yet it stays localised while its odometry says it stands. It was dropped
    after localization_timeout (5 s) before; 8 s without a pose it is still shared. Once
    odometry carries it 1.2 m without a pose (localization_max_travel 1.0) it is not."""
    server, nodes, robots = fleet
    snaps = rclpy_node.collect(FleetSnapshot, "/r2/fleet/neighbours", STATUS_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    r1 = robots["r1"]
    r1.v = 0.0

    def r1_seen():
        return bool(snaps) and [r.robot_id for r in snaps[-1].robots] == ["r1"]
    assert wait_for(lambda: (run(robots, 0.3) or True) and r1_seen(), 20.0), (
        [procs.log(p)[-500:] for p in nodes.values()])
    r1.localized = False                      # parked: AMCL goes quiet, odometry does not
    quiet = r1.node.get_clock().now().nanoseconds * 1e-9
    run(robots, 8.0)
    # a snapshot read by r2 now holds r1 only if r1 wrote within the TTL (0.5 s) before,
    # and the entry carries the odometry stamp it was made from: made 8 s into the silence
    assert wait_for(lambda: (run(robots, 0.3) or True) and r1_seen()
                    and stamp_to_sec(snaps[-1].robots[0].header.stamp) > quiet + 7.5, 5.0), \
        sharing_state(diags, "r1")
    assert wait_for(lambda: sharing_state(diags, "r1") == "on", 3.0)
    # odometry carries it 1.2 m with no pose: the localizer missed four updates, not shared
    r1.pose = Pose2D(r1.pose.x + 1.2, r1.pose.y, r1.pose.yaw)
    assert wait_for(lambda: (run(robots, 0.3) or True) and "travelled 1.20 m" in (
        sharing_state(diags, "r1") or ""), 10.0), sharing_state(diags, "r1")
    assert wait_for(lambda: (run(robots, 0.3) or True) and snaps[-1].robots == [], 5.0)
    # ... until the localizer speaks again
    r1.localized = True
    assert wait_for(lambda: (run(robots, 0.3) or True) and r1_seen(), 10.0)
    assert abs(snaps[-1].robots[0].pose.position.x - 3.2) < 1e-6
