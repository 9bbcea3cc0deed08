#!/usr/bin/env bash
# make compat: the tests marked `compat` (tests/compat/) against upstream ROS 2 packages:
# launch, launch_ros, ros2launch and ros2cli (`ros2 launch`), geometry2 (tf2_ros, tf2_msgs),
# navigation2 (nav2_msgs, nav2_simple_commander). They come from ROS_OVERLAY, a bash file to
# source on top of this project's environment: a ROS 2 install's setup.bash, or the setup of a
# colcon overlay of those upstream packages built against this environment (README:
# Compatibility). Not part of `make test`, where these tests skip.
#   scripts/with_env bash scripts/run_compat.sh            (ROS_OVERLAY from the environment)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -n "${ROS_OVERLAY:-}" ]; then
  if [ ! -f "$ROS_OVERLAY" ]; then
    echo "run_compat: ROS_OVERLAY=$ROS_OVERLAY is not a file" >&2
    exit 2
  fi
  # setup scripts read unset variables
  set +u
  # shellcheck disable=SC1090
  source "$ROS_OVERLAY"
  set -u
fi

# Under make compat a missing upstream package is an error, not a skip.
python - <<'PY'
import importlib.util
import shutil
import sys

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

need = ["launch", "launch_ros", "ros2launch", "tf2_ros", "tf2_msgs", "nav2_msgs",
        "nav2_simple_commander"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if shutil.which("ros2") is None:
    missing.append("ros2 (ros2cli)")
if missing:
    sys.exit("run_compat: not importable: %s. Set ROS_OVERLAY to the setup.bash of an overlay "
             "that has them (README: Compatibility)." % ", ".join(missing))
import xml.etree.ElementTree as ET
for pkg in ["launch", "launch_ros", "ros2launch", "ros2cli", "tf2_ros_py", "tf2_msgs",
            "nav2_msgs", "nav2_simple_commander", "composition_interfaces"]:
    try:
        root = ET.parse(get_package_share_directory(pkg) + "/package.xml").getroot()
        print("upstream %-22s %s" % (pkg, root.findtext("version")))
    except (PackageNotFoundError, OSError) as e:
        print("upstream %-22s not found (%s)" % (pkg, e))
PY

python -m pytest -q -m compat -rA tests/compat "$@"
