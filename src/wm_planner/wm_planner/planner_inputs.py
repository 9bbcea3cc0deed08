"""The planner node's subscriptions: each message checked and converted, then handed on.

odom (nav_msgs/Odometry) and distance_field (wm_msgs/DistanceField) go to the node's
wm_planner.inputs.InputState (a field also triggers a cycle with `plan_on_field`); goal_pose
and fleet/yield_goal (PoseStamped) set the goal or a passing place; payload (std_msgs/Float32
kg, latched) the motion model's load; fleet/neighbours (wm_msgs/FleetSnapshot) the fleet
critic's neighbours; with global_route, plan (nav_msgs/Path: an external route) and the map
(OccupancyGrid on `map_topic`, unless map_yaml); with the predicted_occupancy critic,
perception's forecasts predicted_occupancy_05s / _10s (OccupancyGrid, percent). A refused
message is counted and logged by reason (wm_common.ros.diagnostics).
"""
from __future__ import annotations

from functools import partial

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import OccupancyGrid, Odometry, Path
from std_msgs.msg import Float32

from wm_common.map_io import MapError, OccupancyMap
from wm_common.ros.convert import (Refused, distance_field_to_grid, odometry_pose, pose_to_pose2d,
                                   stamp_to_sec)
from wm_common.ros.qos import FIELD_QOS, MAP_QOS, SENSOR_QOS, STATUS_QOS
from wm_msgs.msg import DistanceField, FleetSnapshot
from wm_planner.inputs import check_payload
from wm_planner.nav_goal import NavGoal, check_frame
from wm_planner.neighbours import neighbour_plans
from wm_planner.occupancy_forecast import PredictedOccupancy

# perception's occupancy forecasts (wm_perception.perception_node._predict)
PREDICTION_TOPICS = ("predicted_occupancy_05s", "predicted_occupancy_10s")


def goal_from_pose(msg: PoseStamped, p) -> NavGoal:
    """A goal (or passing place) in map or odom (empty frame_id: map); ValueError if not."""
    frame = check_frame(msg.header.frame_id, p["map_frame"], p["odom_frame"])
    return NavGoal(pose_to_pose2d(msg.pose), frame)


class PlannerInputs:
    """The subscriptions of `node` (a PlannerNode, configured): created in on_configure,
    destroyed in on_cleanup."""

    def __init__(self, node):
        self.node = node
        p = node.p
        sub = node.create_subscription
        self._subs = [
            sub(Odometry, "odom", self._on_odom, SENSOR_QOS),
            sub(DistanceField, "distance_field", self._on_field, FIELD_QOS),
            sub(PoseStamped, "goal_pose", self._on_goal_pose, STATUS_QOS),
            # latched by whoever knows the load (task system; the simulator)
            sub(Float32, "payload", self._on_payload, MAP_QOS),
            sub(FleetSnapshot, "fleet/neighbours", self._on_fleet, STATUS_QOS),
            sub(PoseStamped, "fleet/yield_goal", self._on_yield, STATUS_QOS),
        ]
        if node.routes is not None:
            # an external route (e.g. Nav2's planner server) replaces ours while fresh
            self._subs.append(sub(Path, "plan", self._on_external_path, STATUS_QOS))
            if not p["map_yaml"]:
                self._subs.append(sub(OccupancyGrid, p["map_topic"], self._on_map, MAP_QOS))
        if "predicted_occupancy" in p["critics"]:
            # perception publishes them with STATUS_QOS
            self._subs += [sub(OccupancyGrid, topic, partial(self._on_prediction, topic),
                               STATUS_QOS) for topic in PREDICTION_TOPICS]

    def destroy(self) -> None:
        for s in self._subs:
            self.node.destroy_subscription(s)

    def _reject(self, reason: str, detail: str) -> None:
        self.node.diag.reject(reason, detail)

    def _on_odom(self, msg: Odometry) -> None:
        node = self.node
        try:
            t, pose = odometry_pose(msg, node.p["odom_frame"])
        except Refused as e:
            return self._reject(e.reason, e.detail)
        rejected = node.inputs.add_odom(t, pose, msg.twist.twist.linear.x,
                                        msg.twist.twist.angular.z)
        if rejected is not None:
            return self._reject(*rejected)
        node.localization.on_odom(t, pose)

    def _on_field(self, msg: DistanceField) -> None:
        node = self.node
        if not node.active:
            return
        if msg.header.frame_id != node.p["odom_frame"]:
            return self._reject("field_frame", "distance field in %r, expected %r" % (
                msg.header.frame_id, node.p["odom_frame"]))
        try:
            field = distance_field_to_grid(msg)
        except ValueError as e:
            return self._reject("field_invalid", str(e))
        rejected = node.inputs.add_field(stamp_to_sec(msg.header.stamp), field,
                                         msg.header.stamp)
        if rejected is not None:
            return self._reject(*rejected)
        if node.p["plan_on_field"]:
            node.control(field, msg.header.stamp)

    def _on_map(self, msg: OccupancyGrid) -> None:
        node = self.node
        if msg.header.frame_id != node.p["map_frame"]:
            return self._reject("map_frame", "map in %r, expected %r" % (
                msg.header.frame_id, node.p["map_frame"]))
        info = msg.info
        try:
            origin = pose_to_pose2d(info.origin)
            if abs(origin.yaw) > 1e-6:
                raise MapError("rotated map origins are not supported")
            if len(msg.data) != info.width * info.height:
                raise MapError("%d cells for %d x %d" % (len(msg.data), info.width,
                                                         info.height))
            values = np.asarray(msg.data, dtype=np.int16).reshape(info.height, info.width)
            node.controller.set_map(OccupancyMap(values, info.resolution, origin.x, origin.y,
                                                 msg.header.frame_id))
        except (MapError, ValueError) as e:
            return self._reject("map_invalid", str(e))
        node.get_logger().info("map %d x %d at %.2f m: global route enabled" % (
            info.width, info.height, info.resolution))

    def _on_external_path(self, msg: Path) -> None:
        routes = self.node.routes
        if not msg.poses:
            routes.external = None   # an empty path hands control back to our route
            return
        xy = np.array([[p.pose.position.x, p.pose.position.y] for p in msg.poses])
        try:
            routes.set_external(self.node.now(), msg.header.frame_id, xy)
        except ValueError as e:
            return self._reject("external_path", str(e))

    def _on_payload(self, msg: Float32) -> None:
        mass = float(msg.data)
        why = check_payload(mass)
        if why is not None:
            return self._reject("payload", why)
        self.node.diag.set_value("payload_kg", "%.1f" % mass)
        self.node.controller.set_payload(mass)

    def _on_prediction(self, topic: str, msg: OccupancyGrid) -> None:
        odom_frame = self.node.p["odom_frame"]
        if msg.header.frame_id != odom_frame:
            return self._reject("prediction_frame", "%s in %r, expected %r" % (
                topic, msg.header.frame_id, odom_frame))
        info = msg.info
        try:
            origin = pose_to_pose2d(info.origin)
            pred = PredictedOccupancy.from_percent(
                msg.data, info.width, info.height, info.resolution, origin.x, origin.y,
                origin.yaw)
        except ValueError as e:
            return self._reject("prediction_invalid", "%s: %s" % (topic, e))
        rejected = self.node.inputs.add_prediction(topic, stamp_to_sec(msg.header.stamp), pred)
        if rejected is not None:
            return self._reject(*rejected)

    def _on_fleet(self, msg: FleetSnapshot) -> None:
        node = self.node
        if msg.header.frame_id != node.p["map_frame"]:
            return self._reject("fleet_frame", "fleet snapshot in %r, expected %r" % (
                msg.header.frame_id, node.p["map_frame"]))
        node.inputs.add_fleet(node.now(), msg)

    def _on_goal_pose(self, msg: PoseStamped) -> None:
        node = self.node
        try:
            goal = goal_from_pose(msg, node.p)
        except ValueError as e:
            return self._reject("goal_invalid", str(e))
        node.goals.set(goal, node.now())
        node.get_logger().info("new goal from goal_pose: (%.2f, %.2f) in %s" % (
            goal.pose.x, goal.pose.y, goal.frame_id))

    def _on_yield(self, msg: PoseStamped) -> None:
        """The fleet client's deadlock rule: drive to this passing place and wait there
        (frame_id map); an empty frame_id releases the robot to its goal again."""
        node = self.node
        if not msg.header.frame_id:
            if node.controller.detour is not None:
                node.get_logger().info("yield released: back to the goal")
                node.controller.set_detour(None)
            return
        try:
            detour = goal_from_pose(msg, node.p)
        except ValueError as e:
            return self._reject("yield_invalid", str(e))
        node.controller.set_detour(detour.pose, detour.frame_id)
        node.get_logger().info("yielding: to the passing place (%.2f, %.2f) in %s" % (
            detour.pose.x, detour.pose.y, detour.frame_id))

    def neighbours(self, now: float, t_state: float):
        """The neighbours' shared paths in odom, times relative to the state (fleet critic);
        none when the snapshot is stale or map->odom unknown."""
        node = self.node
        snapshot = node.inputs.fleet_snapshot(now, node.p["fleet_timeout"])
        if snapshot is None:
            return []
        m2o = node.localization.lookup(now)
        if m2o is None:
            return []
        robots = [(r.robot_id,
                   [(stamp_to_sec(ps.header.stamp), ps.pose.position.x, ps.pose.position.y)
                    for ps in r.predicted_trajectory],
                   (stamp_to_sec(r.header.stamp), r.pose.position.x, r.pose.position.y),
                   [(q.x, q.y) for q in r.footprint.points])
                  for r in snapshot.robots]
        plans, errors = neighbour_plans(robots, m2o, t_state)
        for why in errors:
            self._reject("fleet_invalid", why)
        return plans
