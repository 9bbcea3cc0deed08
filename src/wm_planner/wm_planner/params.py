"""The planner node's parameters (names, defaults, ranges, descriptions): one source of truth
for the node, the YAML check and the README table; which may change at run time, and the check
of a set-parameters request (`check_changes`)."""
import array
from typing import Any, Dict, Iterable, Optional, Tuple

from wm_common.footprint import DEFAULT_FOOTPRINT
from wm_common.localization import localization_params
from wm_common.params import Param, check_value
from wm_planner.critics import CRITIC_REGISTRY, DEFAULT_CRITICS

PLANNER_PARAMS = [
    # Frames (REP-105): control happens in odom; goals may come in map and are re-transformed
    # every cycle through the latest map->odom.
    Param("odom_frame", "odom", "frame of odometry, the distance field and the local plan"),
    Param("map_frame", "map", "global frame of goals and localization"),
    Param("base_frame", "base_link", "robot body frame (TwistStamped frame_id)"),
    Param("cmd_vel_stamped", False,
          "publish geometry_msgs/TwistStamped (Jazzy-era diff_drive_controller) instead of Twist"),
    # Staleness: the robot stops when any input is older than this on the node's clock.
    Param("odom_timeout", 0.5, "max age of odometry before stopping [s]", 0.05, 10.0),
    Param("field_timeout", 0.6, "max age of the perception distance field before stopping [s]",
          0.05, 10.0),
    *localization_params("map-frame goals wait for localization"),
    Param("watchdog_rate", 20.0,
          "rate of the staleness watchdog, which also steps controlled stops and publishes "
          "zero while stopped [Hz]", 1.0, 200.0),
    # Control loop: a timer at control_rate, plus (plan_on_field) a cycle as soon as a new
    # distance field arrives, for the lowest cloud-to-command latency; the timer then only
    # fills gaps (a cycle within the last 3/4 period makes it skip).
    Param("control_rate", 10.0, "control loop rate [Hz]", 1.0, 50.0),
    Param("yield_tolerance", 0.3,
          "a passing place (fleet/yield_goal) counts as reached within this distance [m]",
          0.05, 2.0),
    Param("rotate_to_heading", True,
          "turn on the spot towards the route when it leaves behind the standing robot (a "
          "lane end, a yield): the 1 s MPC samples cannot find that turn by themselves"),
    Param("rotate_enter_angle", 1.2,
          "start turning on the spot when the route is more than this off the heading [rad]",
          0.3, 3.1416),
    Param("rotate_exit_angle", 0.3,
          "hand back to the MPC when the route is within this of the heading [rad]",
          0.05, 1.5),
    Param("rotate_speed", 0.6, "angular speed of the turn on the spot (at most w_max) [rad/s]",
          0.05, 3.0),
    Param("rollback_failures", 3,
          "a swapped-in world model (~/swap_world_model) whose predictions are refused this "
          "often within rollback_window is replaced by the previous one", 1, 1000),
    Param("rollback_window", 30.0,
          "how long after a swap refused predictions trigger the rollback [s]", 1.0, 3600.0),
    Param("fleet_timeout", 1.0,
          "fleet/neighbours (from wm_fleet) older than this are ignored by the fleet critic [s]",
          0.1, 10.0),
    Param("plan_on_field", True, "also plan as soon as a new distance field arrives"),
    Param("sensor_range", 8.0,
          "range within which obstacles are seen [m]; v_max is capped so the robot can stop "
          "within it and within the horizon's reach", 0.5, 200.0),
    # MPPI
    Param("num_samples", 512, "sampled control sequences per iteration (K)", 16, 16384),
    Param("horizon", 10, "prediction steps (H)", 2, 100),
    Param("dt", 0.1, "model step [s]", 0.01, 1.0),
    Param("temperature", 0.3, "MPPI softmax temperature", 1e-4, 100.0),
    Param("noise_sigma_v", 0.3, "sampling noise on linear velocity [m/s]", 0.0, 5.0),
    Param("noise_sigma_w", 0.6, "sampling noise on angular velocity [rad/s]", 0.0, 10.0),
    Param("iterations", 1, "MPPI iterations per cycle (more if the budget allows)", 1, 50),
    Param("time_budget_ms", 20.0, "planning time budget per cycle [ms]", 1.0, 1000.0),
    Param("seed", -1, "random seed (-1: from the OS)", -1, 2 ** 31 - 1),
    # Robot
    Param("v_max", 0.8, "max forward speed [m/s]", 0.0, 5.0),
    Param("v_min", -0.2, "max reverse speed (negative) [m/s]", -5.0, 0.0),
    Param("w_max", 1.2, "max angular speed [rad/s]", 0.0, 10.0),
    Param("a_max", 1.0, "max linear acceleration [m/s^2]", 0.01, 20.0),
    Param("alpha_max", 2.5, "max angular acceleration [rad/s^2]", 0.01, 50.0),
    Param("footprint", list(DEFAULT_FOOTPRINT),
          "the body as a polygon in base_link, flat [x1, y1, x2, y2, ...] (Nav2's footprint; "
          "payload overhang included): the collision critic's shape", any_length=True),
    Param("footprint_padding", [0.10, 0.10, 0.03],
          "[front, rear, side] margins the planner keeps around the footprint as if they were "
          "body [m]: the collision monitor's stop_margins, so the MPC never plans into the "
          "gate's stop zone (where the gate would halt it)"),
    Param("robot_radius", 0.32,
          "clearance the route and the navigation function keep from obstacles [m], at least "
          "the footprint's inscribed radius: a gap narrower than twice this has no way "
          "through", 0.05, 3.0),
    Param("unknown_obstacle_range", 0.75,
          "never-observed cells (the distance field's unknown mask) within this distance of "
          "the robot's centre are obstacles to the MPC: its reach (0.45 m) plus the stopping "
          "distance at v_max; 0: unknown space is free [m]", 0.0, 10.0),
    Param("xy_goal_tolerance", 0.25, "goal reached within this distance [m]", 0.01, 5.0),
    Param("yaw_goal_tolerance", 3.2,
          "goal reached within this heading error [rad] (>= pi: position only)", 0.01, 3.2),
    # Solver: MPPI (default); "nmpc": the CasADi NMPC (IPOPT) alone; "hybrid": MPPI, then a
    # few SQP iterations of the NMPC from MPPI's best sequence, kept only if feasible and
    # cheaper (wm_planner.nmpc).
    Param("solver", "mppi", "mppi, nmpc or hybrid"),
    Param("nmpc_max_iter", 30, "NMPC (solver nmpc) iteration limit", 1, 1000),
    Param("nmpc_max_time_ms", 25.0, "NMPC (solver nmpc) IPOPT wall-clock limit [ms]", 1.0,
          1000.0),
    Param("refine_max_iter", 3, "hybrid: SQP iterations refining MPPI's solution", 1, 50),
    # Global route (A* on the map_server map + the live obstacle layer) for path_follow.
    Param("global_route", True,
          "plan a global route for the path_follow critic (needs map_yaml or map_topic)"),
    Param("map_yaml", "", "map_server YAML of the warehouse; empty: listen on map_topic"),
    Param("map_topic", "/map", "nav_msgs/OccupancyGrid map topic (transient local)"),
    Param("replan_period", 1.0, "global route replanning period [s] (also on a blocked route "
          "or a new goal)", 0.1, 60.0),
    Param("route_resolution", 0.1, "global planning grid resolution [m]", 0.02, 1.0),
    Param("route_inflation", 0.8,
          "band beyond robot_radius where the route and the MPC's cost-to-go pay to keep "
          "away from obstacles [m]",
          0.0, 5.0),
    Param("route_switch_margin", 1.0,
          "a periodic replan replaces a route that is still free only when the new one is "
          "this much shorter (planner metric) [m]: hysteresis on the way round obstacles",
          0.0, 100.0),
    Param("route_without_map", True,
          "with no static map, plan the route on a blank map around robot and goal with the "
          "live obstacle layer alone (a LiDAR-only robot still gets routes and 'no way')"),
    Param("external_path_timeout", 2.0,
          "an external path on `plan` replaces the global route while younger than this [s]",
          0.1, 600.0),
    # Motion model: the learned world model (wm_world_model artifact) or plain kinematics.
    Param("world_model_artifact", "",
          "world-model artifact directory, or the name of one shipped with wm_world_model "
          "(e.g. worldmodel-1.0.0); empty or none: unicycle kinematics"),
    Param("world_model_public_key", "",
          "Ed25519 public key file (PEM); when set, the artifact's signature must verify"),
    Param("world_model_require_signature", False,
          "refuse an artifact unless world_model_public_key verifies its signature"),
    Param("world_model_threads", 1, "torch CPU threads for the world model", 1, 64),
    Param("payload_mass", -1.0,
          "carried mass [kg] until the payload topic says otherwise; < 0: unknown", -1.0,
          5000.0),
    # Critics (Nav2 MPPI style): each a small class in critics/, composed in this order;
    # their own parameters are <critic>.<param>, generated below from the critic classes.
    Param("critics", list(DEFAULT_CRITICS), "critics to compose, in order"),
    # Progress checker and recoveries (Nav2's SimpleProgressChecker and behaviour tree):
    # no progress -> the next recovery; all used -> the goal aborts with a reason.
    Param("progress_checker.required_movement_radius", 0.5,
          "the robot must move this far ... [m]", 0.01, 10.0),
    Param("progress_checker.movement_time_allowance", 10.0,
          "... within this long, else the next recovery runs [s]", 0.5, 600.0),
    Param("recovery_behaviors", ["reroute", "clear_and_replan", "back_up", "spin", "wait"],
          "recoveries, tried in this order (reroute, clear_and_replan, back_up, spin, "
          "wait; wm_planner.recoveries); []: abort at the first progress failure"),
    Param("recovery_rounds", 1, "times the list is gone through before the goal aborts",
          0, 20),
    Param("backup_distance", 0.6,
          "back_up: distance backed out, along the robot's own recent path [m]", 0.05, 3.0),
    Param("backup_speed", 0.1, "back_up: speed [m/s]", 0.02, 0.5),
    Param("spin_angle", 1.57, "spin: angle [rad]", 0.1, 6.3),
    Param("wait_time", 5.0, "wait: duration [s]", 0.5, 120.0),
    Param("recovery_margin", 0.05,
          "back_up, spin and a turn on the spot where the corners' circle is not clear move "
          "only where the footprint keeps this clearance [m]",
          0.0, 0.5),
    Param("stale_abort_time", 30.0,
          "a goal aborts (stale inputs) when odometry, field or map->odom stay missing this "
          "long [s] (long enough for a node restart); the robot stops at once regardless",
          0.5, 600.0),
    # Action
    Param("navigate_timeout", 300.0, "abort a navigate_to_pose goal after this long [s]",
          1.0, 86400.0),
    Param("sampled_trajectories_shown", 16, "sampled rollouts drawn in markers", 0, 1000),
]


def critic_params():
    """`<critic>.<param>` for every registered critic, defaults from the critic class."""
    out = []
    for name in sorted(CRITIC_REGISTRY):
        cls = CRITIC_REGISTRY[name]
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        for key, default in cls.PARAMS.items():
            lo = 0.0 if isinstance(default, float) else None
            out.append(Param("%s.%s" % (name, key), default,
                             "%s critic: %s" % (name, key if key != "weight" else
                                                "weight (" + doc.rstrip(".") + ")"), lo))
    return out


PLANNER_PARAMS += critic_params()


# Parameters applied at run time (a new optimizer is built with the same motion model); the
# others (frames, topics, timers, rates, the world model) need cleanup + configure.
LIVE_PARAMS = frozenset([
    "num_samples", "temperature", "noise_sigma_v", "noise_sigma_w", "iterations",
    "time_budget_ms", "v_max", "v_min", "w_max", "a_max", "alpha_max", "robot_radius",
    "footprint", "footprint_padding", "xy_goal_tolerance", "yaw_goal_tolerance", "critics",
    "navigate_timeout", "sampled_trajectories_shown", "sensor_range", "payload_mass",
    "rotate_to_heading", "rotate_enter_angle", "rotate_exit_angle", "rotate_speed",
    "route_switch_margin", "progress_checker.required_movement_radius",
    "progress_checker.movement_time_allowance", "recovery_behaviors", "recovery_rounds",
    "backup_distance", "backup_speed", "spin_angle", "wait_time", "recovery_margin",
    "stale_abort_time", "yield_tolerance"])


def is_live_param(name: str) -> bool:
    """Whether `name` may change while the planner is configured (critic parameters may)."""
    return name in LIVE_PARAMS or name.split(".", 1)[0] in CRITIC_REGISTRY


def check_changes(items: Iterable[Tuple[str, Any]], configured: bool
                  ) -> Tuple[Dict[str, Any], Optional[str]]:
    """A set-parameters request, (name, value) pairs, checked against PLANNER_PARAMS: (the
    planner's changes, None), or ({}, why) to refuse them all. Names that are not the
    planner's (use_sim_time, autostart, ...) pass unchecked; while `configured`, only live
    parameters may change (the others need cleanup, set, configure)."""
    specs = {s.name: s for s in PLANNER_PARAMS}
    changes = {}
    for name, value in items:
        spec = specs.get(name)
        if spec is None:
            continue
        if isinstance(value, array.array):   # rclpy's type for numeric arrays
            value = list(value)
        why = check_value(spec, value)
        if why is not None:
            return {}, "%s: %s" % (name, why)
        changes[name] = value
    fixed = sorted(n for n in changes if not is_live_param(n)) if configured else []
    if fixed:
        return {}, "%s can only change while unconfigured (cleanup, set, configure)" % (
            ", ".join(fixed))
    return changes, None
