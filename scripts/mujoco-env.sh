# shellcheck shell=bash
# Source me (bash): `source scripts/mujoco-env.sh`, after `source scripts/ros-env.sh` (whose
# Python, DP_ROS_PYTHON, the MuJoCo simulator runs on). Provides `import mujoco` for it.
#
# - Installs MuJoCo's official Python bindings from PyPI, pinned in
#   scripts/mujoco-requirements.txt, into the ignored folder .cache/mujoco (`pip install
#   --no-deps --target`) on first use and whenever the requirements or the Python change (a
#   stamp file holds the requirements' hash and the Python version).
# - Prepends that folder and tools/ (the package `mujoco_sim`) to PYTHONPATH.
#
# Exported: PYTHONPATH, DP_MUJOCO_PYTHON (the Python that imports mujoco and rclpy). Without a
# DP_ROS_PYTHON a CPython 3.11 from PATH is used (enough for the unit tests, which need numpy and
# PyYAML). Quiet when everything is in place; returns non-zero with a message naming the failed
# step otherwise. Set DP_MUJOCO_PREFIX to install somewhere else than .cache/mujoco.

_dp_mj_say() { printf 'mujoco-env: %s\n' "$*" >&2; }

_dp_mj_prepend() {
    local name=$1 dir=$2 current
    current=${!name-}
    case ":$current:" in
    *":$dir:"*) ;;
    *) export "$name=$dir${current:+:$current}" ;;
    esac
}

_dp_mj_env() {
    local root python prefix requirements stamp_text log start
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
    python=${DP_ROS_PYTHON:-}
    if [ -z "$python" ]; then
        python=$(command -v python3.11 || command -v python3 || true)
    fi
    if [ -z "$python" ] || ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
        _dp_mj_say "step 'find Python': no CPython >= 3.11 (source scripts/ros-env.sh first, or set DP_ROS_PYTHON)"
        return 1
    fi
    prefix=${DP_MUJOCO_PREFIX:-$root/.cache/mujoco}
    requirements=$root/scripts/mujoco-requirements.txt
    stamp_text="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys, platform; print(sys.implementation.name + "%d.%d" % sys.version_info[:2], platform.machine())')"
    if [ "$(cat "$prefix/.dp-mujoco-stamp" 2>/dev/null)" != "$stamp_text" ]; then
        start=$SECONDS
        log="$prefix.install.log"
        _dp_mj_say "installing MuJoCo from PyPI into $prefix (first use, under a minute; log: $log)"
        rm -rf "$prefix"
        mkdir -p "$prefix" || {
            _dp_mj_say "step 'create $prefix' failed"
            return 1
        }
        if ! "$python" -m pip install --no-input --disable-pip-version-check -q --no-deps \
            --only-binary=:all: --target "$prefix" -r "$requirements" >"$log" 2>&1; then
            _dp_mj_say "step 'pip install -r $requirements' failed; last lines of $log:"
            tail -n 15 "$log" >&2
            rm -rf "$prefix"
            return 1
        fi
        if ! PYTHONPATH="$prefix${PYTHONPATH:+:$PYTHONPATH}" "$python" -c 'import mujoco' >>"$log" 2>&1; then
            _dp_mj_say "step 'import mujoco' failed after the install (numpy missing?); last lines of $log:"
            tail -n 15 "$log" >&2
            return 1
        fi
        printf '%s\n' "$stamp_text" >"$prefix/.dp-mujoco-stamp"
        _dp_mj_say "MuJoCo installed in $((SECONDS - start)) s"
    fi
    _dp_mj_prepend PYTHONPATH "$prefix"
    _dp_mj_prepend PYTHONPATH "$root/tools"
    export DP_MUJOCO_PYTHON=$python
    return 0
}

_dp_mj_status=0
_dp_mj_env || _dp_mj_status=$?
unset -f _dp_mj_say _dp_mj_prepend _dp_mj_env
if [ "$_dp_mj_status" != 0 ]; then
    unset _dp_mj_status
    printf 'mujoco-env: failed; MuJoCo is not available\n' >&2
    return 1 2>/dev/null || exit 1
fi
unset _dp_mj_status
