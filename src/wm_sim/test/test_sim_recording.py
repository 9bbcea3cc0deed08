"""Driving-data recording: rosbag2/MCAP bags from wm_sim.datagen, read back with read_bag,
checked against metadata.yaml and the independent `mcap` reader library."""
import glob
import json
import math
import os
import sys

import numpy as np
import pytest

pytest.importorskip("rosbags")

from wm_common.geometry import Pose2D  # noqa: E402
from wm_sim import datagen  # noqa: E402
from wm_world_model.recording import (EPISODE_TOPIC, BagWriter, iter_messages, read_bag,  # noqa: E402
                              read_events, read_metadata, robot_topics)

# The planner mode needs wm_planner / wm_perception; make them importable from a checkout.
_SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
for _pkg in ("wm_planner", "wm_perception"):
    _p = os.path.join(_SRC, _pkg)
    if _p not in sys.path:
        sys.path.append(_p)

ROBOTS = ("robot_0", "robot_1")
SECONDS = 3.0
ARGS = ["--engine", "kinematic", "--robots", "2", "--episodes", "3",
        "--episode-seconds", str(SECONDS), "--modes", "random,scripted,planner",
        "--payloads", "150", "--frictions", "0.5", "--quiet"]


def _generate(out, seed):
    assert datagen.main(["--out", str(out), "--seed", str(seed)] + ARGS) == 0
    return sorted(glob.glob(os.path.join(str(out), "episode_*")))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("data_a"), seed=7)


@pytest.fixture(scope="module")
def bags(dataset):
    return [read_bag(p) for p in dataset]


def test_one_bag_per_episode_with_an_index(dataset):
    assert [os.path.basename(p) for p in dataset] == ["episode_0000", "episode_0001",
                                                      "episode_0002"]
    for p in dataset:
        assert sorted(os.listdir(p)) == sorted(["metadata.yaml", os.path.basename(p) + ".mcap"])
    with open(os.path.join(os.path.dirname(dataset[0]), "episodes.jsonl")) as f:
        index = [json.loads(line) for line in f]
    assert [e["mode"] for e in index] == ["random", "scripted", "planner"]
    assert all(e["engine"] == "kinematic" and e["friction"] == 0.5 for e in index)
    assert all(e["payloads"] == {r: 150.0 for r in ROBOTS} for e in index)


def test_counts_rates_and_monotonic_stamps(bags):
    n_state = int(round(SECONDS * 50)) + 1      # t = 0, 0.02, ..., 3.0
    for bag in bags:
        assert sorted(bag) == list(ROBOTS)
        for d in bag.values():
            assert d["t_odom"].size == d["t_truth"].size == n_state
            assert d["t_cmd"].size == int(round(SECONDS * 10))     # 0, 0.1, ..., 2.9
            assert d["t_loc"].size == int(round(SECONDS * 10)) + 1
            assert d["t_payload"].size == int(SECONDS) + 1         # 1 Hz incl. t = 0
            np.testing.assert_array_equal(d["t_odom"], d["t_truth"])
            np.testing.assert_allclose(np.diff(d["t_odom"]), 0.02, atol=1e-9)
            np.testing.assert_allclose(np.diff(d["t_cmd"]), 0.1, atol=1e-9)
            np.testing.assert_allclose(np.diff(d["t_loc"]), 0.1, atol=1e-9)
            for k in ("t_odom", "t_cmd", "t_loc", "t_payload"):
                assert np.all(np.diff(d[k]) > 0.0), k
            assert d["t_odom"][0] == 0.0 and d["t_cmd"][0] == 0.0
            assert np.all(d["payload"] == 150.0)
            assert d["segment"].shape == d["t"].shape
            assert np.all(np.diff(d["segment"]) >= 0)
            assert d["segment"][-1] == d["reset_t"].size
            assert np.all((d["cmd_v"] >= -0.2 - 1e-9) & (d["cmd_v"] <= 1.0 + 1e-9))
            assert np.all(np.abs(d["cmd_w"]) <= 1.5 + 1e-9)


def test_log_times_are_header_stamps_in_order(dataset):
    last = -1
    for m in iter_messages(dataset[0]):
        assert m.log_time_ns >= last
        last = m.log_time_ns
        if hasattr(m.msg, "header"):
            s = m.msg.header.stamp
            assert s.sec * 1_000_000_000 + s.nanosec == m.log_time_ns
    assert last == int(SECONDS * 1e9)


def test_frames_and_covariances(dataset):
    frames = {}
    for m in iter_messages(dataset[0], ["/robot_0/odom", "/robot_0/ground_truth",
                                        "/robot_0/localization_pose"]):
        frames.setdefault(m.topic, m)
    odom, truth, loc = (frames["/robot_0/" + k] for k in ("odom", "ground_truth",
                                                             "localization_pose"))
    assert (odom.msg.header.frame_id, odom.msg.child_frame_id) == ("odom", "base_link")
    assert (truth.msg.header.frame_id, truth.msg.child_frame_id) == ("map", "base_link")
    assert loc.msg.header.frame_id == "map"
    assert odom.msg.twist.covariance.shape == (36,)
    assert odom.msg.pose.covariance[2 * 6 + 2] > 1.0      # z unused: large variance
    assert loc.msg.pose.covariance[0] == pytest.approx(0.02 ** 2)


def test_truth_and_odom_differ_under_payload_slip(bags, dataset):
    start = read_events(dataset[1])[0]
    assert start["event"] == "start" and start["mode"] == "scripted"
    for rid, d in bags[1].items():
        seg = d["segment"] == 0
        # odom starts at the origin of its own frame, the truth at the spawn pose (map)
        assert (d["odom_x"][0], d["odom_y"][0]) == (0.0, 0.0)
        assert (d["truth_x"][0], d["truth_y"][0]) == pytest.approx(start["spawns"][rid][:2])
        odom_len = np.hypot(np.diff(d["odom_x"][seg]), np.diff(d["odom_y"][seg])).sum()
        truth_len = np.hypot(np.diff(d["truth_x"][seg]), np.diff(d["truth_y"][seg])).sum()
        odom_turn = np.abs(np.diff(np.unwrap(d["odom_yaw"][seg]))).sum()
        truth_turn = np.abs(np.diff(np.unwrap(d["truth_yaw"][seg]))).sum()
        assert odom_len + odom_turn > 0.2, "robot did not move"
        # 150 kg and friction 0.5: the wheels turn more than the robot moves
        assert odom_len >= truth_len and odom_turn >= truth_turn
        assert (odom_len - truth_len) + (odom_turn - truth_turn) > 0.02
        assert max(np.max(np.abs(d["odom_v"] - d["truth_v"])),
                   np.max(np.abs(d["odom_w"] - d["truth_w"]))) > 1e-3


def test_metadata_yaml_lists_topics_and_mcap_storage(dataset, bags):
    meta = read_metadata(dataset[0])
    assert meta["storage_identifier"] == "mcap"
    assert meta["version"] == 8
    assert meta["relative_file_paths"] == ["episode_0000.mcap"]
    topics = {t["topic_metadata"]["name"]: t for t in meta["topics_with_message_count"]}
    want = {EPISODE_TOPIC: "std_msgs/msg/String"}
    for r in ROBOTS:
        want.update(robot_topics(r))
    assert {k: t["topic_metadata"]["type"] for k, t in topics.items()} == want
    for t in topics.values():
        assert t["topic_metadata"]["serialization_format"] == "cdr"
        assert t["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
        assert isinstance(t["topic_metadata"]["offered_qos_profiles"], str)
    d = bags[0]["robot_0"]
    assert topics["/robot_0/odom"]["message_count"] == d["t_odom"].size
    assert topics["/robot_0/cmd_vel"]["message_count"] == d["t_cmd"].size
    assert meta["message_count"] == sum(t["message_count"] for t in topics.values())
    assert meta["duration"]["nanoseconds"] == int(SECONDS * 1e9)
    assert json.loads(meta["custom_data"]["wm_episode"])["mode"] == "random"


def test_type_hashes_match_the_installed_ros_interfaces(dataset):
    share = os.path.join(sys.prefix, "share")
    meta = read_metadata(dataset[0])
    checked = 0
    for t in meta["topics_with_message_count"]:
        tm = t["topic_metadata"]
        pkg, _, name = tm["type"].split("/")
        path = os.path.join(share, pkg, "msg", name + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            hashes = [h["hash_string"] for h in json.load(f)["type_hashes"]]
        assert tm["type_description_hash"] == hashes[0]
        checked += 1
    if not checked:
        pytest.skip("no ROS 2 interface descriptions installed")


def test_mcap_library_reads_the_file(dataset):
    reader_mod = pytest.importorskip("mcap.reader")
    path = os.path.join(dataset[2], "episode_0002.mcap")
    meta = read_metadata(dataset[2])
    with open(path, "rb") as f:
        reader = reader_mod.make_reader(f)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        chans = {c.topic: c for c in summary.channels.values()}
        assert set(chans) == {t["topic_metadata"]["name"]
                              for t in meta["topics_with_message_count"]}
        for c in chans.values():
            schema = summary.schemas[c.schema_id]
            assert c.message_encoding == "cdr"
            assert schema.encoding == "ros2msg"
            assert schema.data  # the full .msg text with its dependencies
        odom_schema = summary.schemas[chans["/robot_0/odom"].schema_id]
        assert odom_schema.name == "nav_msgs/msg/Odometry"
        assert b"MSG: geometry_msgs/PoseWithCovariance" in odom_schema.data
        n, last = 0, -1
        for _schema, _channel, msg in reader.iter_messages(log_time_order=False):
            assert msg.log_time == msg.publish_time >= last
            last = msg.log_time
            n += 1
    assert n == summary.statistics.message_count == meta["message_count"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # rclpy's lark on Python 3.11
def test_cdr_matches_ros_typesupport(dataset):
    """Where rclpy is installed, its own deserializer reads our bytes to the same values."""
    ser = pytest.importorskip("rclpy.serialization")
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    reader_mod = pytest.importorskip("mcap.reader")
    d = read_bag(dataset[0])["robot_0"]
    odom_x, cmd_v = [], []
    with open(os.path.join(dataset[0], "episode_0000.mcap"), "rb") as f:
        for _s, ch, msg in reader_mod.make_reader(f).iter_messages(
                topics=["/robot_0/odom", "/robot_0/cmd_vel"]):
            if ch.topic.endswith("odom"):
                m = ser.deserialize_message(msg.data, Odometry)
                odom_x.append(m.pose.pose.position.x)
                assert m.header.frame_id == "odom" and len(m.pose.covariance) == 36
            else:
                cmd_v.append(ser.deserialize_message(msg.data, Twist).linear.x)
    np.testing.assert_array_equal(odom_x, d["odom_x"])
    np.testing.assert_array_equal(cmd_v, d["cmd_v"])


def test_same_seed_same_data_other_seed_other_data(dataset, bags, tmp_path):
    again = _generate(tmp_path / "b", seed=7)
    for a, path in zip(bags, again):
        b = read_bag(path)
        assert sorted(a) == sorted(b)
        for rid in a:
            assert sorted(a[rid]) == sorted(b[rid])
            for k in a[rid]:
                np.testing.assert_array_equal(a[rid][k], b[rid][k], err_msg=k)
        assert read_events(path) == read_events(dataset[again.index(path)])
    other = datagen.generate(datagen.Config(
        out=str(tmp_path / "c"), robots=2, episodes=1, episode_seconds=SECONDS, seed=8,
        modes=("random",), payloads=(150.0,), frictions=(0.5,), verbose=False))
    c = read_bag(os.path.join(str(tmp_path / "c"), other[0]["path"]))
    assert not np.array_equal(c["robot_0"]["cmd_v"], bags[0]["robot_0"]["cmd_v"])


def test_all_three_command_modes_drive(bags, dataset):
    events = [read_events(p) for p in dataset]
    assert [e[0]["mode"] for e in events] == ["random", "scripted", "planner"]
    for bag in bags:
        for d in bag.values():
            assert np.max(np.abs(d["cmd_v"])) + np.max(np.abs(d["cmd_w"])) > 0.05
    patterns = [e for e in events[1] if e["event"] == "pattern"]
    assert patterns and all(e["pattern"] in datagen.ScriptedCommands.PATTERNS
                            for e in patterns)
    goals = [e for e in events[2] if e["event"] == "goal"]
    assert {e["robot"] for e in goals} == set(ROBOTS)
    end = events[2][-1]
    assert end["event"] == "end" and end["plan_failures"] == {r: 0 for r in ROBOTS}
    # the planner drives within its own limits (PLANNER_PARAMS v_max 0.8); in 3 s a robot
    # whose way leaves behind it may still be turning on the spot towards it (0.6 rad/s)
    for d in bags[2].values():
        assert d["cmd_v"].max() <= 0.8 + 1e-9 and np.abs(d["cmd_w"]).max() <= 1.2 + 1e-9
    assert max(d["cmd_v"].max() for d in bags[2].values()) > 0.1


def test_progress_line_per_episode(tmp_path, capsys):
    args = [a for a in ARGS if a != "--quiet"]
    args[args.index("--episodes") + 1] = "2"
    args[args.index("--modes") + 1] = "random,scripted"
    assert datagen.main(["--out", str(tmp_path), "--seed", "1"] + args) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("episode ")]
    assert len(lines) == 2 and "mode=random" in lines[0] and "mode=scripted" in lines[1]
    # existing episodes are not overwritten silently
    assert datagen.main(["--out", str(tmp_path), "--seed", "1"] + args) == 2


def test_collision_resets_the_robot_and_starts_a_segment(tmp_path):
    # Driving straight at 1 m/s for 15 s in a 10 m x 8 m room hits a wall, wherever it starts.
    cfg = datagen.Config(out=str(tmp_path), robots=1, episodes=1, episode_seconds=15.0,
                         world="test_scene", modes=("random",), verbose=False)
    world = datagen.WORLDS["test_scene"]()
    free = datagen.FreeSpace(world, datagen.SPAWN_CLEARANCE)

    class Straight(datagen.CommandGenerator):
        def command(self, t, ctx):
            return (1.0, 0.0)

    orig_run, orig_rand = datagen.run_episode, datagen.RandomCommands
    try:
        datagen.RandomCommands = Straight  # type: ignore[misc]
        ep = orig_run(cfg, 0, world, free, free)
    finally:
        datagen.RandomCommands = orig_rand  # type: ignore[misc]
    assert ep["resets"] >= 1
    d = read_bag(os.path.join(str(tmp_path), ep["path"]))["robot_0"]
    assert d["reset_t"].size == ep["resets"] and d["segment"][-1] == ep["resets"]
    i = int(np.argmax(d["segment"] == 1))     # first sample after the reset
    assert d["t"][i] == pytest.approx(d["reset_t"][0] + 0.02)
    # the odometry restarted in a new odom frame; the truth jumped to the new pose
    assert abs(d["odom_x"][i]) < 0.05 and abs(d["odom_y"][i]) < 0.05
    reset = [e for e in read_events(os.path.join(str(tmp_path), ep["path"]))
             if e["event"] == "reset"][0]
    assert (d["truth_x"][i], d["truth_y"][i]) == pytest.approx(reset["pose"][:2], abs=0.05)
    assert math.hypot(d["truth_x"][i] - d["truth_x"][i - 1],
                      d["truth_y"][i] - d["truth_y"][i - 1]) > 0.0


def test_bag_writer_api(tmp_path):
    path = str(tmp_path / "bag")
    with BagWriter(path, compression=None) as bag:
        bag.write_episode(0.0, {"event": "start", "note": "unit"})
        bag.write_odom("r1", 0.0, Pose2D(1.0, 2.0, 0.5), (0.3, 0.1))
        bag.write_ground_truth("r1", 0.0, Pose2D(1.0, 2.0, 0.5), (0.3, 0.1), 0.01)
        bag.write_localization("r1", 0.0, Pose2D(1.0, 2.1, 0.5), [0.0] * 36)
        bag.write_cmd_vel("r1", 0.0, 0.4, -0.2)
        bag.write_payload("r1", 0.0, 25.0)
        bag.write_odom("r1", 0.5, Pose2D(1.2, 2.0, -3.0), (0.3, 0.1))
        with pytest.raises(ValueError):
            bag.write_cmd_vel("r1", 0.25, 0.0, 0.0)      # earlier than the last message
        with pytest.raises(ValueError):
            bag.write_payload("1robot", 0.5, 0.0)        # not a ROS name
        with pytest.raises(ValueError):
            bag.write_odom("r1", 0.5, Pose2D(0, 0, 0), (0, 0), pose_covariance=[0.0] * 9)
    d = read_bag(path)["r1"]
    assert d["odom_x"].tolist() == [1.0, 1.2]
    assert d["odom_yaw"][0] == pytest.approx(0.5) and d["odom_yaw"][1] == pytest.approx(-3.0)
    assert d["truth_vy"].tolist() == [0.01] and d["loc_y"].tolist() == [2.1]
    assert (d["cmd_v"].tolist(), d["cmd_w"].tolist()) == ([0.4], [-0.2])
    assert d["payload"].tolist() == [25.0]
    assert d["segment"].tolist() == [0]          # aligned with t = t_truth
    assert read_events(path) == [{"event": "start", "note": "unit", "t": 0.0}]
    assert read_metadata(path)["message_count"] == 7
