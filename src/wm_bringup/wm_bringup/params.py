"""Parameters of wm_bringup's lifecycle_manager (plain Python: the README tables read them)."""
from __future__ import annotations

from wm_common.params import Param

MANAGER_PARAMS = [
    Param("node_names", ["perception", "planner", "collision_monitor", "fleet_client", "monitor"],
          "lifecycle nodes in start-up order; names relative to this manager's namespace"),
    Param("autostart", True, "bring the nodes up when the manager starts"),
    Param("service_wait", 20.0,
          "how long start-up waits for each node's lifecycle services to appear [s]",
          0.0, 600.0),
    Param("transition_timeout", 30.0,
          "a transition (a configure loads the world model) not answered within this fails [s]",
          0.5, 600.0),
    Param("check_period", 1.0, "how often the nodes' states are checked [s]", 0.1, 60.0),
]
