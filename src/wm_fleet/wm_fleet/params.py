"""The fleet client node's parameters: one source of truth for the node, the YAML check and the
README table."""
from wm_common.footprint import DEFAULT_FOOTPRINT
from wm_common.localization import localization_params
from wm_common.params import Param

FLEET_PARAMS = [
    Param("fleet", "warehouse", "fleet name: robots of one fleet see each other (Redis keys)"),
    Param("redis_url", "",
          "redis://host:port/db, rediss:// (TLS) or unix:///path.sock; '' = the WM_REDIS_URL "
          "environment variable; neither = fleet sharing off. Put no password here: use "
          "password_file or password_env"),
    Param("username", "", "Redis ACL user ('' = default user)"),
    Param("password_file", "", "file holding the Redis password (one line)"),
    Param("password_env", "WM_REDIS_PASSWORD", "environment variable holding the password"),
    Param("tls_ca_file", "", "CA certificate for rediss:// (verifies the server)"),
    Param("tls_cert_file", "", "client certificate for rediss:// (mutual TLS)"),
    Param("tls_key_file", "", "client key for rediss://"),
    Param("sentinels", [""], "Redis Sentinel addresses host:port ([''] = no Sentinel)"),
    Param("sentinel_master", "", "Sentinel service name of the master"),
    Param("cluster", False, "connect with redis-py's RedisCluster"),
    Param("map_frame", "map", "shared frame of every entry"),
    Param("odom_frame", "odom", "frame of odom and local_plan"),
    Param("rate", 10.0, "write/read rate: the control rate [Hz]", 1.0, 50.0),
    Param("ttl", 1.0, "an entry disappears this long after its robot stopped writing [s]",
          0.2, 60.0),
    Param("radius", 10.0, "neighbours within this distance are read [m]", 0.5, 1000.0),
    Param("max_age", 2.0, "entries written longer ago (wall clock) are refused [s]", 0.1, 60.0),
    Param("time_tolerance", 1.0,
          "clock disagreement tolerated between robots (chrony-synced) [s]", 0.01, 10.0),
    *localization_params("nothing shared"),
    Param("odom_timeout", 1.0,
          "without odometry this recent the robot's map pose is unknown: nothing shared "
          "(readers judge the age of what is: max_age, time_tolerance) [s]", 0.05, 10.0),
    Param("priority", 0, "this robot's task priority (higher wins a conflict)", 0, 255),
    Param("footprint", list(DEFAULT_FOOTPRINT),
          "footprint polygon in base_link incl. payload, flat [x1, y1, ...] [m]",
          any_length=True),
    Param("model_version", "", "world-model version shared with the entry (informational)"),
    Param("passing_places", "",
          "where a yielding robot waits, map frame 'x1,y1;x2,y2' ('' = never yields)"),
    Param("deadlock_time", 4.0, "blocked this long next to a stopped neighbour: deadlock [s]",
          0.5, 120.0),
    Param("deadlock_radius", 6.0,
          "a stopped neighbour this close can block us (robots waiting at both ends of a "
          "one-lane aisle are as far apart as the lane is long) [m]", 0.5, 30.0),
    Param("deadlock_progress_time", 10.0,
          "no progress towards the goal this long with a neighbour within deadlock_radius: "
          "deadlock too (robots taking turns at a lane never stand still) [s]", 1.0, 600.0),
    Param("deadlock_progress_distance", 1.0,
          "progress means getting this much closer to the goal than ever before [m]",
          0.05, 20.0),
    Param("yield_timeout", 60.0, "longest wait at a passing place [s]", 1.0, 600.0),
    Param("yield_release_hold", 2.0,
          "a yielding robot is released once the other robot has passed (or parked) for "
          "this long without interruption [s]", 0.0, 60.0),
    Param("stale_speed_limit", 0.3,
          "speed limit sent to the safety gate while the fleet link is down [m/s]", 0.0, 5.0),
]
