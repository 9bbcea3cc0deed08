# shellcheck shell=bash
# Source this file (bash) to use the project's ROS 2 environment from any directory:
#   source scripts/env.sh
# It activates .venv (ROS 2 Kilted from PyPI wheels), puts the venv prefix on
# AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH, sources the colcon overlay ros2_ws/install (if built)
# and selects Fast DDS with the project's profile (config/fastdds.xml).

_wm_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export WM_REPO_ROOT="$_wm_root"

if [ ! -x "$_wm_root/.venv/bin/python" ]; then
  echo "env.sh: $_wm_root/.venv is missing; run: bash $_wm_root/scripts/setup.sh" >&2
  unset _wm_root
  # sourced: return; run as a script by mistake: exit
  # shellcheck disable=SC2317
  return 1 2>/dev/null || exit 1
fi

# shellcheck disable=SC1091
VIRTUAL_ENV_DISABLE_PROMPT="${VIRTUAL_ENV_DISABLE_PROMPT:-1}" source "$_wm_root/.venv/bin/activate"

_wm_prepend() {  # _wm_prepend VAR DIR: put DIR first on the colon list VAR, once
  local cur="${!1:-}"
  case ":$cur:" in
    *":$2:"*) ;;
    *) export "$1=$2${cur:+:$cur}" ;;
  esac
}
_wm_prepend AMENT_PREFIX_PATH "$VIRTUAL_ENV"
_wm_prepend CMAKE_PREFIX_PATH "$VIRTUAL_ENV"
unset -f _wm_prepend

if [ -f "$_wm_root/ros2_ws/install/setup.bash" ]; then
  # colcon's scripts read unset variables; relax nounset while sourcing them.
  case $- in *u*) _wm_nounset=1; set +u ;; *) _wm_nounset= ;; esac
  # shellcheck disable=SC1091
  source "$_wm_root/ros2_ws/install/setup.bash"
  [ -n "$_wm_nounset" ] && set -u
  unset _wm_nounset
fi

export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
# Large point clouds between processes need a bigger shared-memory segment than Fast DDS's
# default (measured: 2% vs 100% delivery of 0.8 MB clouds at 10 Hz; see config/fastdds.xml).
# Fast DDS 3.x (Kilted, this venv) reads FASTDDS_DEFAULT_PROFILES_FILE and config/fastdds.xml;
# Fast DDS 2.x (Humble's 2.6, Jazzy's 2.14) reads only FASTRTPS_DEFAULT_PROFILES_FILE and needs
# config/fastdds_humble.xml (2.x and 3.x name the heartbeat element differently). Each variable
# is set only if unset. FASTRTPS_DEFAULT_PROFILES_FILE is left alone under Fast DDS 3: there
# rmw_fastrtps loads that file too and logs a deprecation warning in every process (measured;
# FASTDDS_DEFAULT_PROFILES_FILE wins when both are set).
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$_wm_root/config/fastdds.xml}"
for _wm_lib in "$VIRTUAL_ENV"/lib/libfastrtps.so.2*; do
  if [ -e "$_wm_lib" ]; then
    export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$_wm_root/config/fastdds_humble.xml}"
  fi
  break
done
unset _wm_lib
unset _wm_root
