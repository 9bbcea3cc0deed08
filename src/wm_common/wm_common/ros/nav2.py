"""Nav2's interfaces where nav2_msgs is installed (every Nav2 robot), else wm_msgs' stand-ins.

The stand-ins have Nav2's names and fields (wm_msgs/NavigateToPose, FollowPath,
ComputePathToPose, SpeedLimit, ManageLifecycleNodes), so a node serves the same action names
with the same behaviour either way, and RViz's Nav2 panel, nav2_simple_commander, Open-RMF's
adapters and bt_navigator reach it where nav2_msgs is present. What differs between Nav2
releases is the result: Humble's results carry no error code (std_msgs/Empty), Jazzy and later
carry `error_code` and `error_msg`. `set_error` fills them where the installed type has them;
the outcome is always in the goal's status (succeeded / aborted / canceled) and in the log.

Error codes are Nav2's numbers (CODES, plain data in wm_common.nav2_codes): a navigator
reports the code of the part that failed, so a route with no way through is
ComputePathToPose's NO_VALID_PATH even in a NavigateToPose result.
"""
from __future__ import annotations

from wm_common.nav2_codes import CODES

try:  # nav2_msgs: on robots with Nav2; not on PyPI
    from nav2_msgs.action import ComputePathToPose, FollowPath, NavigateToPose
    from nav2_msgs.msg import SpeedLimit
    from nav2_msgs.srv import ManageLifecycleNodes
    HAVE_NAV2 = True
except ImportError:  # pragma: no cover - depends on the install
    from wm_msgs.action import ComputePathToPose, FollowPath, NavigateToPose
    from wm_msgs.msg import SpeedLimit
    from wm_msgs.srv import ManageLifecycleNodes
    HAVE_NAV2 = False

__all__ = ["HAVE_NAV2", "NavigateToPose", "FollowPath", "ComputePathToPose", "SpeedLimit",
           "ManageLifecycleNodes", "PACKAGE", "CODES", "set_error", "has_error_code"]

PACKAGE = "nav2_msgs" if HAVE_NAV2 else "wm_msgs"


def has_error_code(result) -> bool:
    """Whether this result type carries Nav2's error code (Jazzy and later; wm_msgs)."""
    return hasattr(result, "error_code")


def set_error(result, code: int, message: str = "") -> bool:
    """Set `result.error_code` (one of CODES' numbers, e.g.
    CODES["FollowPath"]["FAILED_TO_MAKE_PROGRESS"]) and `result.error_msg` where the type has
    them (not Humble's); returns whether it could."""
    if has_error_code(result):
        result.error_code = code
        if hasattr(result, "error_msg"):
            result.error_msg = message
        return True
    return False
