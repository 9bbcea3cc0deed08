"""config/wm.rviz shows what the issue asks for (voxels, the occupancy layer, local plan and
route, sampled trajectories, the fleet, the goal, the safety zones), on topics our nodes
really publish (relative names: RViz is started under the robot's namespace)."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
# create_publisher(Type, "topic") or, per robot in the simulator, (Type, ns + "/topic")
PUBLISHER = re.compile(r"create_(?:lifecycle_)?publisher\(\s*\w+,\s*"
                       r"(\w+\s*\+\s*)?[\"']([^\"']+)[\"']")


def published_topics():
    topics = set()
    for path in (REPO / "src").glob("*/*/*.py"):
        for prefix, topic in PUBLISHER.findall(path.read_text()):
            topics.add(topic.lstrip("/") if prefix else topic)
    # ... or as "/%s/estop" % robot_id
    return topics | {t[len("/%s/"):] for t in topics if t.startswith("/%s/")}


def displays():
    doc = yaml.safe_load((REPO / "config" / "wm.rviz").read_text())
    return doc["Visualization Manager"]["Displays"]


def test_every_display_topic_is_published_by_a_node_of_ours():
    published = published_topics()
    assert {"local_plan", "markers", "occupancy", "fleet/markers"} <= published
    for d in displays():
        topic = (d.get("Topic") or {}).get("Value")
        if topic is None:
            continue
        # goal_pose is what RViz's own "2D Goal Pose" tool publishes (the planner listens);
        # "safety_zones/" + name: a literal ending in "/" is a family of topics
        assert topic in published or topic == "goal_pose" or any(
            p.endswith("/") and topic.startswith(p) for p in published), \
            "%s: %s" % (d["Name"], topic)


def test_the_views_a_robotics_engineer_needs_are_there():
    by_topic = {(d.get("Topic") or {}).get("Value"): d["Class"] for d in displays()}
    wanted = {"markers": "MarkerArray", "occupancy": "Map", "local_plan": "Path",
              "global_plan": "Path", "fleet/markers": "MarkerArray", "goal_pose": "Pose",
              "safety_zones/stop": "Polygon", "points": "PointCloud2", "/map": "Map"}
    for topic, cls in wanted.items():
        assert by_topic.get(topic, "").endswith(cls), (topic, by_topic.get(topic))
