#!/usr/bin/env bash
# Runs a command inside ROS 2 Humble + the wm workspace: the Docker image's ENTRYPOINT, the
# systemd unit's ExecStart, and the way to run anything by hand on the robot.
#
#   jetson/ros_entrypoint.sh ros2 launch wm_bringup robot.launch.py namespace:=robot1
#   jetson/ros_entrypoint.sh python3 jetson/check_install.py
#
# Why a script: systemd cannot `source` setup.bash, and on JetPack 5 (Ubuntu 20.04) Humble is
# built from source, so its setup file is not at the apt location.
#
# ROS setup: $WM_ROS_SETUP if set, else the first that exists of
#   /opt/ros/humble/install/setup.bash  (built from source: the jetson-containers images)
#   /opt/ros/humble/setup.bash          (apt layout)
# Workspace: $WM_WS_SETUP if set, else <repository>/ros2_ws/install/setup.bash next to this
# script (colcon's setup.bash also sources the underlays it was built against).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: ros_entrypoint.sh COMMAND [ARG...]
Sources ROS 2 (WM_ROS_SETUP or /opt/ros/humble[/install]/setup.bash) and the wm workspace
(WM_WS_SETUP or <repo>/ros2_ws/install/setup.bash), then runs COMMAND in their environment.
Refuses a launch argument with an empty value (NAME:=): ros2 launch rejects those.
EOF
}

die() { echo "ros_entrypoint.sh: $*" >&2; exit "${2:-3}"; }

if [ $# -eq 0 ]; then usage >&2; exit 2; fi
case "$1" in -h|--help) usage; exit 0 ;; esac

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
distro="${ROS_DISTRO:-humble}"

ros_setup="${WM_ROS_SETUP:-}"
if [ -z "$ros_setup" ]; then
  for candidate in "/opt/ros/$distro/install/setup.bash" "/opt/ros/$distro/setup.bash"; do
    if [ -f "$candidate" ]; then ros_setup="$candidate"; break; fi
  done
fi
[ -n "$ros_setup" ] || die "no ROS 2 $distro setup file (tried /opt/ros/$distro/install/setup.bash, /opt/ros/$distro/setup.bash); set WM_ROS_SETUP"
[ -f "$ros_setup" ] || die "WM_ROS_SETUP=$ros_setup does not exist"

ws_setup="${WM_WS_SETUP:-$root/ros2_ws/install/setup.bash}"
[ -f "$ws_setup" ] || die "workspace not built: $ws_setup missing (colcon build in $root/ros2_ws, or set WM_WS_SETUP)"

# `ros2 launch x.py name:=` (empty value) fails with "malformed launch argument"; an empty
# systemd/Docker variable produces exactly that, so say which variable to set instead.
for arg in "$@"; do
  case "$arg" in
    ?*:=) die "launch argument '${arg%:=}' is empty (is its variable set in the environment file, e.g. /etc/wm/robot.env?); ros2 launch rejects NAME:= with no value" 2 ;;
  esac
done

# colcon's and ROS's setup scripts read unset variables: relax nounset while sourcing them.
set +u
# shellcheck disable=SC1090
source "$ros_setup"
# shellcheck disable=SC1090
source "$ws_setup"
set -u

exec "$@"
