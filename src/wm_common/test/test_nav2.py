"""wm_common.ros.nav2: Nav2's error codes on results that have them, none on Humble's, and the
wm_msgs stand-ins numbered as Nav2 numbers them."""
from __future__ import annotations

import wm_msgs.action as wm_action
from wm_common.ros.nav2 import CODES, set_error


class HumbleResult:
    """Humble's nav2_msgs results: std_msgs/Empty, no error code."""
    __slots__ = ("result",)

    def __init__(self):
        self.result = None


def test_set_error_fills_the_code_where_the_type_has_one():
    res = wm_action.FollowPath.Result()
    assert set_error(res, CODES["FollowPath"]["FAILED_TO_MAKE_PROGRESS"], "stuck")
    assert (res.error_code, res.error_msg) == (105, "stuck")
    humble = HumbleResult()
    assert not set_error(humble, CODES["FollowPath"]["FAILED_TO_MAKE_PROGRESS"], "stuck")
    assert not hasattr(humble, "error_code")


def test_the_stand_ins_carry_nav2s_numbers():
    for action, codes in CODES.items():
        result = getattr(wm_action, action).Result
        for name, code in codes.items():
            assert getattr(result, name) == code, (action, name)
    # a navigator passes the failing part's code through NavigateToPose
    nav = wm_action.NavigateToPose.Result
    assert (nav.NO_VALID_PATH, nav.FAILED_TO_MAKE_PROGRESS, nav.NO_VALID_CONTROL,
            nav.CONTROLLER_TIMED_OUT) == (CODES["ComputePathToPose"]["NO_VALID_PATH"],
                                          CODES["FollowPath"]["FAILED_TO_MAKE_PROGRESS"],
                                          CODES["FollowPath"]["NO_VALID_CONTROL"],
                                          CODES["FollowPath"]["CONTROLLER_TIMED_OUT"])
