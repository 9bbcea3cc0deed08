"""Let the tests run straight from a source checkout, without colcon having installed
wm_world_model and the packages it reads data through."""
from __future__ import annotations

import os
import sys

_SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _pkg in ("wm_world_model", "wm_sim", "wm_common"):
    _path = os.path.join(_SRC, _pkg)
    if _path not in sys.path:
        sys.path.insert(0, _path)
