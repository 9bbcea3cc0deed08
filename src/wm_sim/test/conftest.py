"""Make wm_sim and wm_common importable when pytest runs from a plain checkout (no colcon
install), e.g. `pytest src/wm_sim/test`. Installed packages, if any, still come second."""
import os
import sys

_SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
for _pkg in ("wm_sim", "wm_common"):
    _p = os.path.join(_SRC, _pkg)
    if _p not in sys.path:
        sys.path.insert(0, _p)

# Headless CI: never try to open a display.
os.environ.setdefault("MPLBACKEND", "Agg")
