# shellcheck shell=bash
# Source me (bash): `source scripts/cuda-env.sh`. Provides the CUDA toolkit that
# `cargo build --features cuda` needs: nvcc for candle-kernels' build script (candle's kernels
# are compiled to PTX plus a static library) and the libraries cudarc links.
#
# - A system CUDA (nvcc on PATH, else /usr/local/cuda/bin/nvcc) is used as it is, unless
#   DP_CUDA_FROM_PYPI=1.
# - Otherwise NVIDIA's CUDA wheels are installed from PyPI (`pip install --target`, pinned in
#   scripts/cuda-requirements-$DP_CUDA_RELEASE.txt) into the ignored folder
#   .cache/cuda/$DP_CUDA_RELEASE on first use (about 130 MB download, 350 MB installed). With
#   DP_CUDA_LINK=1 also the libraries a linked binary needs (cuda-requirements-*-link.txt:
#   nvrtc, cuRAND, cuBLAS; about 600 MB more) and a stub libcuda.so made from cuda.h (the real
#   one comes with the GPU driver; the stub only lets the linker resolve cudarc's symbols). Only
#   `cargo check` works without DP_CUDA_LINK=1.
#
# Inputs: DP_CUDA_RELEASE (13.5, the default, or 13.0: binaries for a 13.0 driver, R580, need
# PTX from nvcc 13.0), DP_CUDA_PREFIX (default .cache/cuda), DP_CUDA_LINK, DP_CUDA_FROM_PYPI,
# CUDA_COMPUTE_CAP (kept if set; default 90: H100/H200. 87: Jetson Orin, 89: RTX 40xx/L4/L40,
# 80: A100, 86: RTX 30xx/A10. One per build: candle's PTX and static kernels target exactly it).
#
# Exported: CUDA_COMPUTE_CAP, CUDA_ROOT, CUDA_PATH, CUDA_HOME (the toolkit root, where
# cudaforge/bindgen_cuda and cudarc's build scripts look), NVCC, PATH (nvcc), LIBRARY_PATH and
# LD_LIBRARY_PATH (the toolkit's lib folders), CUDARC_CUDA_VERSION when nvcc is newer than the
# newest CUDA cudarc 0.19 knows (13.4: its bindings of 13.4 are used), and DP_CUDA_NVCC_VERSION.
# Quiet when everything is in place; returns non-zero with a message naming the failed step.

_dp_cuda_say() { printf 'cuda-env: %s\n' "$*" >&2; }

_dp_cuda_prepend() {
    local name=$1 dir=$2 current
    current=${!name-}
    case ":$current:" in
    *":$dir:"*) ;;
    *) export "$name=$dir${current:+:$current}" ;;
    esac
}

# "13.5" from `nvcc --version` ("Cuda compilation tools, release 13.5, V13.5.37").
_dp_cuda_nvcc_release() {
    "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9]*\.[0-9]*\),.*/\1/p' | head -n 1
}

# A CPython 3 with pip, or nothing.
_dp_cuda_find_python() {
    local candidate
    for candidate in python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -m pip --version >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# pip install --target $1 (log $2) -r $3 -r $4 ...
_dp_cuda_pip() {
    local target=$1 log=$2 python
    shift 2
    python=$(_dp_cuda_find_python) || {
        _dp_cuda_say "no python3 with pip found (needed to install NVIDIA's CUDA wheels from PyPI); install python3-pip, or a CUDA toolkit with nvcc"
        return 1
    }
    local args=() file
    for file in "$@"; do args+=(-r "$file"); done
    if ! "$python" -m pip install --no-input --disable-pip-version-check -q --no-compile \
        --only-binary=:all: --target "$target" "${args[@]}" >>"$log" 2>&1; then
        _dp_cuda_say "pip install ${*##*/} failed; last lines of $log:"
        tail -n 15 "$log" >&2
        return 1
    fi
}

# A stub libcuda.so (soname libcuda.so.1) defining every function cuda.h declares, so that the
# linker resolves cudarc's driver symbols; at run time the driver's libcuda.so.1 is loaded.
_dp_cuda_make_stub() {
    local root=$1 log=$2 dir=$1/lib/stubs names
    mkdir -p "$dir" || return 1
    [ -e "$dir/libcuda.so" ] && return 0
    command -v gcc >/dev/null 2>&1 || {
        _dp_cuda_say "gcc not found (needed for the libcuda stub); install gcc"
        return 1
    }
    # The preprocessed header has the real (versioned, e.g. cuCtxCreate_v2) symbol names.
    names=$(gcc -E -P -I"$root/include" -x c "$root/include/cuda.h" 2>>"$log" |
        grep -oE '\bcu[A-Za-z0-9_]+[[:space:]]*\(' | tr -d '( \t' | sort -u) || return 1
    if [ -z "$names" ]; then
        _dp_cuda_say "no function found in $root/include/cuda.h for the libcuda stub"
        return 1
    fi
    printf 'void %s(void) {}\n' $names >"$dir/libcuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dir/libcuda.so" "$dir/libcuda_stub.c" \
        >>"$log" 2>&1 || {
        _dp_cuda_say "compiling the libcuda stub failed (see $log)"
        return 1
    }
}

# Unversioned names (libcublas.so -> libcublas.so.13) for the linker's -l flags.
_dp_cuda_link_names() {
    local lib=$1 file base
    for file in "$lib"/lib*.so.*; do
        [ -e "$file" ] || continue
        base=${file##*/}
        base=${base%%.so.*}.so
        [ -e "$lib/$base" ] || ln -s "${file##*/}" "$lib/$base" || return 1
    done
}

_dp_cuda_install() {
    local prefix=$1 stamp_text=$2 link=$3 release=$4 start log
    shift 4
    start=$SECONDS
    log="$prefix.install.log"
    mkdir -p "$(dirname "$prefix")" || {
        _dp_cuda_say "cannot create $(dirname "$prefix")"
        return 1
    }
    : >"$log"
    _dp_cuda_say "installing CUDA $release from PyPI into $prefix (first use; log: $log)"
    rm -rf "$prefix"
    _dp_cuda_pip "$prefix/site" "$log" "$@" || return 1
    local root=$prefix/site/nvidia/cu13
    if [ ! -x "$root/bin/nvcc" ]; then
        _dp_cuda_say "the wheels installed no nvcc at $root/bin/nvcc"
        return 1
    fi
    _dp_cuda_link_names "$root/lib" || return 1
    if [ "$link" = 1 ]; then
        _dp_cuda_make_stub "$root" "$log" || return 1
    fi
    printf '%s\n' "$stamp_text" >"$prefix/.dp-cuda-stamp"
    _dp_cuda_say "CUDA $release installed in $((SECONDS - start)) s"
}

_dp_cuda_env() {
    local root_dir nvcc="" toolkit release
    root_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
    local link=${DP_CUDA_LINK:-0}

    if [ "${DP_CUDA_FROM_PYPI:-0}" != 1 ]; then
        if command -v nvcc >/dev/null 2>&1; then
            nvcc=$(command -v nvcc)
        elif [ -x /usr/local/cuda/bin/nvcc ]; then
            nvcc=/usr/local/cuda/bin/nvcc
        fi
    fi

    if [ -n "$nvcc" ]; then
        nvcc=$(readlink -f "$nvcc")
        toolkit=$(cd "$(dirname "$nvcc")/.." && pwd) || return 1
        if [ -d "$toolkit/lib64" ]; then
            _dp_cuda_prepend LIBRARY_PATH "$toolkit/lib64"
            _dp_cuda_prepend LD_LIBRARY_PATH "$toolkit/lib64"
        fi
    else
        release=${DP_CUDA_RELEASE:-13.5}
        local reqs=$root_dir/scripts/cuda-requirements-$release.txt
        local link_reqs=$root_dir/scripts/cuda-requirements-$release-link.txt
        if [ ! -r "$reqs" ]; then
            _dp_cuda_say "DP_CUDA_RELEASE=$release: no $reqs (releases: $(cd "$root_dir/scripts" && ls cuda-requirements-*.txt | sed -n 's/^cuda-requirements-\([0-9.]*\)\.txt$/\1/p' | tr '\n' ' '))"
            return 1
        fi
        local files=("$reqs")
        [ "$link" = 1 ] && files+=("$link_reqs")
        local prefix=${DP_CUDA_PREFIX:-$root_dir/.cache/cuda}/$release stamp_text
        stamp_text="$(cat "${files[@]}" | sha256sum | cut -d' ' -f1) $(uname -m) link=$link"
        local stamp
        stamp=$(head -n 1 "$prefix/.dp-cuda-stamp" 2>/dev/null)
        # A link install also serves a check-only request.
        if [ "$stamp" != "$stamp_text" ] &&
            ! { [ "$link" = 0 ] && [ "${stamp% link=1}" = "${stamp_text% link=0}" ]; }; then
            _dp_cuda_install "$prefix" "$stamp_text" "$link" "$release" "${files[@]}" || {
                _dp_cuda_say "installing CUDA $release from PyPI failed"
                return 1
            }
        fi
        toolkit=$prefix/site/nvidia/cu13
        nvcc=$toolkit/bin/nvcc
        _dp_cuda_prepend LIBRARY_PATH "$toolkit/lib"
        _dp_cuda_prepend LD_LIBRARY_PATH "$toolkit/lib"
        if [ -d "$toolkit/lib/stubs" ]; then
            # Link time only: the stub must never shadow the driver's libcuda.so.1 at run time
            # (it has the soname libcuda.so.1 but no file of that name, so it cannot).
            _dp_cuda_prepend LIBRARY_PATH "$toolkit/lib/stubs"
        fi
    fi

    local version
    version=$(_dp_cuda_nvcc_release "$nvcc")
    if [ -z "$version" ]; then
        _dp_cuda_say "$nvcc --version did not run or printed no release"
        return 1
    fi
    _dp_cuda_prepend PATH "$(dirname "$nvcc")"
    export NVCC=$nvcc CUDA_ROOT=$toolkit CUDA_PATH=$toolkit CUDA_HOME=$toolkit
    export DP_CUDA_NVCC_VERSION=$version
    : "${CUDA_COMPUTE_CAP:=90}"
    export CUDA_COMPUTE_CAP
    # cudarc 0.19 knows CUDA 11.4 ... 13.4 and panics on a newer nvcc unless told which of its
    # bindings to use.
    local major=${version%%.*} minor=${version#*.}
    if [ -z "${CUDARC_CUDA_VERSION-}" ] && { [ "$major" -gt 13 ] ||
        { [ "$major" = 13 ] && [ "$minor" -gt 4 ]; }; }; then
        export CUDARC_CUDA_VERSION=13040
    fi
    return 0
}

_dp_cuda_status=0
_dp_cuda_env || _dp_cuda_status=$?
unset -f _dp_cuda_say _dp_cuda_prepend _dp_cuda_nvcc_release _dp_cuda_find_python _dp_cuda_pip \
    _dp_cuda_make_stub _dp_cuda_link_names _dp_cuda_install _dp_cuda_env
if [ "$_dp_cuda_status" != 0 ]; then
    unset _dp_cuda_status
    printf 'cuda-env: failed; no CUDA environment was set up\n' >&2
    return 1 2>/dev/null || exit 1
fi
unset _dp_cuda_status
