"""Make wm_planner and wm_common importable without a colcon build (plain pytest)."""
import os
import sys

_HERE = os.path.abspath(os.path.dirname(__file__))
_SRC = os.path.dirname(os.path.dirname(_HERE))
# The test dir itself too: planner_world.py is a shared helper, not a test module.
for _path in (_HERE, os.path.join(_SRC, "wm_planner"), os.path.join(_SRC, "wm_common"),
              os.path.join(_SRC, "wm_world_model")):
    if _path not in sys.path:
        sys.path.insert(0, _path)
