"""The perception node over real DDS: a real driver's cloud becomes a voxel grid and a distance
field; malformed clouds are rejected, counted in /diagnostics, and the node keeps running."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import OccupancyGrid, Odometry
from rosutil import CONFIG, wait_for
from sensor_msgs.msg import PointCloud2, PointField

from wm_common.point_layouts import OUSTER, pack_points
from wm_common.ros.convert import distance_field_to_grid
from wm_common.ros.qos import FIELD_QOS, SENSOR_QOS
from wm_msgs.msg import DistanceField, VoxelGrid

NS = "/pertest"


def ouster_msg(stamp, frame, x, y, z):
    """An organized Ouster PointCloud2 of (rings, cols) x, y, z arrays."""
    rings, cols = x.shape
    msg = PointCloud2()
    msg.header.stamp, msg.header.frame_id = stamp, frame
    msg.height, msg.width = rings, cols
    msg.fields = [PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
                  for f in OUSTER.fields]
    msg.point_step, msg.row_step = OUSTER.point_step, OUSTER.point_step * cols
    msg.is_bigendian = False
    msg.data = pack_points(OUSTER, {"x": x.ravel(), "y": y.ravel(), "z": z.ravel()})
    msg.is_dense = False
    return msg


def wall_cloud(stamp, frame="lidar_link"):
    """An organized 16 x 64 Ouster cloud of a wall 2 m ahead of the sensor, with holes."""
    rings, cols = 16, 64
    elev = np.radians(np.linspace(-15, 15, rings))[:, None]
    az = np.radians(np.linspace(-30, 30, cols))[None, :]
    r = 2.0 / np.cos(az)
    x = (r * np.cos(elev) * np.cos(az)).astype(np.float32)
    y = (r * np.cos(elev) * np.sin(az) * np.ones_like(elev)).astype(np.float32)
    z = (r * np.sin(elev) * np.ones_like(az)).astype(np.float32)
    x[0, :5] = np.nan  # no returns, as a driver reports them
    return ouster_msg(stamp, frame, x, y, z)


def odom(stamp):
    o = Odometry()
    o.header.stamp, o.header.frame_id, o.child_frame_id = stamp, "odom", "base_link"
    o.pose.pose.position.x = 1.0
    o.pose.pose.orientation.w = 1.0
    return o


def garbage_clouds(stamp):
    good = wall_cloud(stamp)
    out = []
    m = wall_cloud(stamp)
    m.fields = [f for f in m.fields if f.name != "z"]
    out.append(("missing_field", m))
    m = wall_cloud(stamp)
    m.data = bytes(m.data)[:100]
    out.append(("size_mismatch", m))
    m = wall_cloud(stamp)
    m.row_step = good.point_step * good.width - 1
    out.append(("row_step", m))
    m = wall_cloud(stamp)
    m.fields[0].datatype = 42
    out.append(("bad_datatype", m))
    m = wall_cloud(stamp, frame="some_camera")
    out.append(("unknown_frame", m))
    return out


def test_perception_node_pipeline_and_bad_input(procs, rclpy_node):
    proc = procs.start("wm_perception", "perception", "--params-file",
                       str(CONFIG / "robot.yaml"), "-r", "__ns:=" + NS, name="perception")
    node = rclpy_node.node
    fields = rclpy_node.collect(DistanceField, NS + "/distance_field", FIELD_QOS)
    grids = rclpy_node.collect(VoxelGrid, NS + "/voxel_grid")
    occupancy = rclpy_node.collect(OccupancyGrid, NS + "/occupancy")
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    cloud_pub = node.create_publisher(PointCloud2, NS + "/points", SENSOR_QOS)
    odom_pub = node.create_publisher(Odometry, NS + "/odom", SENSOR_QOS)
    assert wait_for(lambda: cloud_pub.get_subscription_count() > 0, 20.0), procs.log(proc)

    def send(cloud_factory):
        stamp = node.get_clock().now().to_msg()
        odom_pub.publish(odom(stamp))
        cloud_pub.publish(cloud_factory(stamp))

    for _ in range(30):
        if fields:
            break
        send(wall_cloud)
        wait_for(lambda: bool(fields), 0.2)
    assert fields, procs.log(proc)
    f = fields[-1]
    assert f.header.frame_id == "odom"
    grid = distance_field_to_grid(f)
    # robot at x=1 in odom, wall 2 m ahead of it: occupied near x=3, free at the robot
    assert grid.sample(np.array([[3.0, 0.0]]))[0] < 0.15
    assert 1.7 < grid.sample(np.array([[1.0, 0.0]]))[0] < 2.3
    assert grids and len(grids[-1].indices) > 0 and grids[-1].header.frame_id == "odom"
    # the obstacle layer for RViz / Nav2 costmaps, published every marker_every (5) clouds
    for _ in range(30):
        if occupancy:
            break
        send(wall_cloud)
        wait_for(lambda: bool(occupancy), 0.2)
    occ = occupancy[-1]
    data = np.asarray(occ.data, dtype=np.int8).reshape(occ.info.height, occ.info.width)
    def cell(x, y):
        return (int((y - occ.info.origin.position.y) / occ.info.resolution),
                int((x - occ.info.origin.position.x) / occ.info.resolution))
    (iy, ix0), (_, ix1) = cell(2.85, 0.0), cell(3.15, 0.0)
    assert data[iy, ix0:ix1 + 1].max() == 100  # the wall at x = 3
    assert data[cell(1.5, 0.0)] == 0           # free space between robot and wall

    n_fields = len(fields)

    def counters():
        for d in reversed(diags):
            for st in d.status:
                if NS + "/perception" in st.name:
                    return {k.key: k.value for k in st.values}
        return {}

    reasons = [r for r, _ in garbage_clouds(node.get_clock().now().to_msg())]
    for reason in reasons:
        # best-effort transport may drop a message: resend until this reason is counted
        for _ in range(10):
            send(lambda s, r=reason: dict(garbage_clouds(s))[r])
            if wait_for(lambda r=reason: int(counters().get("rejected." + r, "0")) >= 1, 1.5):
                break
        assert int(counters().get("rejected." + reason, "0")) >= 1, (
            reason, counters(), procs.log(proc))
    assert proc.poll() is None, "perception died on bad input: %s" % procs.log(proc)
    assert len(fields) == n_fields, "a bad cloud produced a distance field"
    # and a good cloud afterwards still works
    for _ in range(20):
        send(wall_cloud)
        if wait_for(lambda: len(fields) > n_fields, 0.2):
            break
    assert len(fields) > n_fields
    # a cloud already in the base frame (a filter chain's output) needs no transform, tf2
    # or not: the same wall, 2 m ahead of the base (at x = 1 in odom); one in the odom frame
    # (an accumulating filter's output) is placed by odometry: the same points are then a
    # wall at odom x = 2, 1 m ahead of the base
    for frame, wall_x, free_x in (("base_link", 3.0, 2.0), ("odom", 2.0, 3.0)):
        n_fields = len(fields)
        for _ in range(20):
            send(lambda s, f=frame: wall_cloud(s, frame=f))
            if wait_for(lambda n=n_fields: len(fields) > n, 0.2):
                break
        assert len(fields) > n_fields, (frame, counters(), procs.log(proc))
        d = distance_field_to_grid(fields[-1]).sample(np.array([[wall_x, 0.0], [free_x, 0.0]]))
        assert d[0] < 0.15 and d[1] > 0.5, (frame, d)


def dark_cloud(stamp, value):
    """The wall cloud's layout with every beam "no return": zeros (ouster-ros) or NaN."""
    msg = wall_cloud(stamp)
    n = msg.height * msg.width
    v = np.full(n, value, dtype=np.float32)
    msg.data = pack_points(OUSTER, {"x": v, "y": v, "z": v})
    return msg


def start_blind_check(procs, rclpy_node, ns):
    """A perception node in `ns` that learns its sensor's returns from 3 clouds, with the
    test's publishers and the outputs it collects."""
    proc = procs.start("wm_perception", "perception", "--params-file",
                       str(CONFIG / "robot.yaml"), "-r", "__ns:=" + ns,
                       "-p", "blind_learn_clouds:=3", name="perception" + ns.replace("/", "_"))
    node = rclpy_node.node
    fields = rclpy_node.collect(DistanceField, ns + "/distance_field", FIELD_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    cloud_pub = node.create_publisher(PointCloud2, ns + "/points", SENSOR_QOS)
    odom_pub = node.create_publisher(Odometry, ns + "/odom", SENSOR_QOS)
    assert wait_for(lambda: cloud_pub.get_subscription_count() > 0, 20.0), procs.log(proc)
    return proc, node, fields, diags, cloud_pub, odom_pub


def test_a_blind_lidar_gives_no_distance_field_and_says_why(procs, rclpy_node):
    """Fresh organized clouds without a single return (all zeros, as ouster-ros publishes
    no-returns; all NaN) are not an empty warehouse: after blind_time perception publishes no
    distance field (the planner stops on its field_timeout), /diagnostics is ERROR "LiDAR
    blind", and the first cloud with returns brings the field back."""
    ns = NS + "_blind"
    proc, node, fields, diags, cloud_pub, odom_pub = start_blind_check(procs, rclpy_node, ns)

    def send(factory):
        stamp = node.get_clock().now().to_msg()
        odom_pub.publish(odom(stamp))
        cloud_pub.publish(factory(stamp))
        wait_for(lambda: False, 0.1)          # a 10 Hz sensor

    def status():
        for d in reversed(diags):
            for st in d.status:
                if ns + "/perception" in st.name:
                    return st.level, st.message, {k.key: k.value for k in st.values}
        return None, "", {}

    for _ in range(50):                       # learn the normal share of returns
        send(wall_cloud)
        if len(fields) >= 5:
            break
    assert len(fields) >= 5, procs.log(proc)
    def blind_clouds():
        return int(status()[2].get("blind_clouds", "0"))

    for value in (0.0, float("nan")):
        before = blind_clouds()
        dark = lambda s, v=value: dark_cloud(s, v)  # noqa: E731
        for _ in range(30):                   # up to 3 s of darkness
            send(dark)
            if blind_clouds() > before:       # counted only while blind
                break
        assert wait_for(lambda b=before: blind_clouds() > b, 3.0), (status(), procs.log(proc))
        level, message, values = status()
        assert level == DiagnosticStatus.ERROR and "LiDAR blind" in message
        assert values["valid_returns"] == "0.0 %"
        n = len(fields)
        for _ in range(10):                   # blind: no more fields
            send(dark)
        assert len(fields) == n, "a blind sensor produced a distance field"
        for _ in range(30):                   # returns come back: fields again
            send(wall_cloud)
            if len(fields) > n:
                break
        assert len(fields) > n, procs.log(proc)
        grid = distance_field_to_grid(fields[-1])
        assert grid.sample(np.array([[3.0, 0.0]]))[0] < 0.15    # the wall again
    assert int(status()[2].get("blind_clouds", "0")) >= 20
    assert proc.poll() is None


def room_cloud(stamp, radius=3.0, covered=(), frame="lidar_link"):
    """An organized 16 x 256 cloud, all round, of a round room `radius` metres about the
    sensor; beams with azimuth in a `covered` (lo, hi) degree range return nothing (zeros, as
    ouster-ros reports no-returns): a sensor with a dirty or covered half."""
    rings, cols = 16, 256
    elev = np.radians(np.linspace(-15, 15, rings))[:, None]
    az = np.pi - 2 * np.pi * np.arange(cols)[None, :] / cols
    x = (radius * np.cos(az) * np.ones_like(elev)).astype(np.float32)
    y = (radius * np.sin(az) * np.ones_like(elev)).astype(np.float32)
    z = (radius * np.tan(elev) * np.ones_like(az)).astype(np.float32)
    for lo, hi in covered:
        deg = np.degrees(np.arctan2(np.sin(az), np.cos(az))) * np.ones_like(elev)
        dark = (deg >= lo) & (deg < hi)
        x[dark] = y[dark] = z[dark] = 0.0
    return ouster_msg(stamp, frame, x, y, z)


def perception_status(diags, ns):
    for d in reversed(diags):
        for st in d.status:
            if ns + "/perception" in st.name:
                return st.level, st.message, {k.key: k.value for k in st.values}
    return None, "", {}


def test_a_half_covered_lidar_walls_off_what_it_cannot_see(procs, rclpy_node):
    """A LiDAR whose 0..90 degree quarter goes dark (the rest returns as before) is not blind
    as a whole, but that quarter is: perception walls it off at blind_sector_range, so the
    field there reads an obstacle (before: 3 m of free room), and /diagnostics is WARN naming
    the sectors. Returns back: the room is free again."""
    ns = NS + "_sectors"
    proc, node, fields, diags, cloud_pub, odom_pub = start_blind_check(procs, rclpy_node, ns)
    rng = float(yaml.safe_load((CONFIG / "robot.yaml").read_text())["/**/perception"][
        "ros__parameters"].get("blind_sector_range", 0.9))
    probe = np.array([[1.0 + rng * np.cos(np.radians(45)), rng * np.sin(np.radians(45))],
                      [1.0 - rng, 0.0]])      # in the dark quarter; behind (always seen)

    def send(**kw):
        stamp = node.get_clock().now().to_msg()
        odom_pub.publish(odom(stamp))
        cloud_pub.publish(room_cloud(stamp, **kw))
        wait_for(lambda: False, 0.1)

    for _ in range(50):
        send()
        if len(fields) >= 5:
            break
    assert len(fields) >= 5, procs.log(proc)
    free = distance_field_to_grid(fields[-1]).sample(probe)
    assert free[0] > 1.0 and free[1] > 1.0, free

    def walled():
        return float(distance_field_to_grid(fields[-1]).sample(probe)[0]) < 0.15

    for _ in range(40):
        send(covered=[(0.0, 90.0)])
        if walled():
            break
    assert walled(), (perception_status(diags, ns), procs.log(proc))
    for _ in range(30):                       # /diagnostics comes at 1 Hz
        if "partly blind" in perception_status(diags, ns)[1]:
            break
        send(covered=[(0.0, 90.0)])
    level, message, values = perception_status(diags, ns)
    assert level == DiagnosticStatus.WARN and "partly blind" in message, message
    assert "+0..+45 deg" in message and "+45..+90 deg" in message, message
    assert int(values.get("blind_sector_clouds", "0")) >= 1
    assert distance_field_to_grid(fields[-1]).sample(probe)[1] > 1.0   # the rest: as seen
    for _ in range(30):
        send()
        if not walled():
            break
    assert not walled(), procs.log(proc)
    assert proc.poll() is None


def test_two_lidars_merge_and_one_gone_blind_withholds_the_field(procs, rclpy_node):
    """Front and rear LiDARs (point_topics, one extrinsic each, the rear one turned round):
    the field holds what each sees (a wall 2 m ahead of the front one, seen by it alone; the
    rear one sees a room). When the rear one goes dark, perception publishes no field and
    says which LiDAR is blind; its returns back, fields again."""
    ns = NS + "_two"
    proc = procs.start("wm_perception", "perception", "--params-file",
                       str(CONFIG / "robot.yaml"), "-r", "__ns:=" + ns,
                       "-p", "blind_learn_clouds:=3",
                       "-p", "point_topics:=[points, rear/points]",
                       "-p", "sensor_extrinsic:=[0.3, 0.0, 0.4, 0.0, -0.3, 0.0, 0.4, 3.14159]",
                       name="perception_two")
    node = rclpy_node.node
    fields = rclpy_node.collect(DistanceField, ns + "/distance_field", FIELD_QOS)
    diags = rclpy_node.collect(DiagnosticArray, "/diagnostics")
    front = node.create_publisher(PointCloud2, ns + "/points", SENSOR_QOS)
    rear = node.create_publisher(PointCloud2, ns + "/rear/points", SENSOR_QOS)
    odom_pub = node.create_publisher(Odometry, ns + "/odom", SENSOR_QOS)
    assert wait_for(lambda: front.get_subscription_count() > 0
                    and rear.get_subscription_count() > 0, 20.0), procs.log(proc)

    def send(rear_cloud):
        stamp = node.get_clock().now().to_msg()
        odom_pub.publish(odom(stamp))
        rear.publish(rear_cloud(stamp, frame="rear_lidar"))
        wait_for(lambda: False, 0.02)         # the rear one first: merged into the front's
        front.publish(wall_cloud(stamp))
        wait_for(lambda: False, 0.08)

    for _ in range(50):
        send(lambda s, frame: room_cloud(s, radius=2.5, frame=frame))
        if len(fields) >= 5:
            break
    assert len(fields) >= 5, (perception_status(diags, ns), procs.log(proc))
    grid = distance_field_to_grid(fields[-1])
    # odom: base at x 1.0; the front wall at 1.0 + 0.3 + 2.0; the rear room 2.5 m about
    # the rear sensor at x 0.7: its far side behind the robot at x -1.8
    d = grid.sample(np.array([[3.3, 0.0], [-1.8, 0.0], [1.0, 0.0]]))
    assert d[0] < 0.15 and d[1] < 0.15 and d[2] > 1.0, d

    n = len(fields)
    for _ in range(50):                       # dark for blind_time, then diagnostics
        send(lambda s, frame: room_cloud(s, radius=2.5, covered=[(-180.0, 180.0)],
                                         frame=frame))
        if "rear/points" in perception_status(diags, ns)[1]:
            break
    level, message, _ = perception_status(diags, ns)
    assert level == DiagnosticStatus.ERROR and ("LiDAR blind (rear/points)" in message
                                                or "LiDAR rear/points blind" in message), \
        message
    n = len(fields)
    for _ in range(10):
        send(lambda s, frame: room_cloud(s, radius=2.5, covered=[(-180.0, 180.0)],
                                         frame=frame))
    assert len(fields) == n, "a field was published while the rear LiDAR was blind"
    for _ in range(30):
        send(lambda s, frame: room_cloud(s, radius=2.5, frame=frame))
        if len(fields) > n:
            break
    assert len(fields) > n, procs.log(proc)
    assert proc.poll() is None


MODEL = Path(__file__).resolve().parent.parent / "src" / "wm_perception" / "models" / "encoder_v2"


def test_perception_publishes_predicted_occupancy(procs, rclpy_node, tmp_path):
    """With the shipped scene-encoder artifact, perception publishes its occupancy prediction
    for +0.5 s and +1 s; a corrupted artifact makes configure fail, the node stays alive."""
    ns = "/enctest"
    proc = procs.start("wm_perception", "perception", "--params-file",
                       str(CONFIG / "robot.yaml"), "-r", "__ns:=" + ns,
                       "-p", "encoder_artifact:=" + str(MODEL), "-p", "encoder_every:=1",
                       name="perception_enc")
    node = rclpy_node.node
    pred = rclpy_node.collect(OccupancyGrid, ns + "/predicted_occupancy_05s")
    pred1 = rclpy_node.collect(OccupancyGrid, ns + "/predicted_occupancy_10s")
    cloud_pub = node.create_publisher(PointCloud2, ns + "/points", SENSOR_QOS)
    odom_pub = node.create_publisher(Odometry, ns + "/odom", SENSOR_QOS)
    assert wait_for(lambda: cloud_pub.get_subscription_count() > 0, 60.0), procs.log(proc)
    for _ in range(60):
        if pred and pred1:
            break
        stamp = node.get_clock().now().to_msg()
        odom_pub.publish(odom(stamp))
        cloud_pub.publish(wall_cloud(stamp))
        wait_for(lambda: bool(pred and pred1), 0.3)
    assert pred and pred1, procs.log(proc)
    g = pred[-1]
    assert g.info.width == g.info.height == 64 and abs(g.info.resolution - 0.25) < 1e-6
    data = np.asarray(g.data, dtype=np.int8).reshape(64, 64)
    assert 0 <= data.min() and data.max() <= 100
    # the wall 2 m ahead of the robot (x = 3 in odom) is predicted occupied, the space
    # between robot and wall free
    def at(x, y):
        return data[int((y - g.info.origin.position.y) / 0.25),
                    int((x - g.info.origin.position.x) / 0.25)]
    assert max(at(3.0, 0.0), at(3.1, 0.0), at(2.9, 0.0)) >= 50
    assert at(1.8, 0.0) < 50

    bad = tmp_path / "bad_encoder"
    shutil.copytree(MODEL, bad)
    with open(bad / "encoder.pt", "r+b") as f:
        f.seek(100)
        f.write(b"corrupt")
    proc2 = procs.start("wm_perception", "perception", "--params-file",
                        str(CONFIG / "robot.yaml"), "-r", "__ns:=/enctest2",
                        "-p", "encoder_artifact:=" + str(bad), name="perception_bad_enc")
    assert wait_for(lambda: "configure failed: scene encoder" in procs.log(proc2), 60.0), \
        procs.log(proc2)
    assert "corrupted" in procs.log(proc2)
