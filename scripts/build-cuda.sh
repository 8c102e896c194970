#!/usr/bin/env bash
# Builds rnnsweep with `--features cuda` for real (`just build-cuda`), then checks the binary
# without a GPU (scripts/check-cuda-build.sh). Usage:
#
#   scripts/build-cuda.sh [--wheels] [--debug] [--no-check]
#
#   --wheels    take nvcc from the pinned PyPI wheels even where a CUDA toolkit is installed
#   --debug     the dev profile instead of release
#   --no-check  skip the checks after the build
#
# nvcc: the CUDA toolkit's when one is installed (CUDA_HOME or CUDA_PATH holding bin/nvcc, else
# nvcc on PATH); otherwise NVIDIA's CUDA 13.0 wheels from PyPI, exact versions and sha256 sums
# below, installed once into a virtual environment under the build folder (the only download;
# later builds and the checks use what is there). Linux x86_64 only.
#
# Environment:
#   CUDA_COMPUTE_CAP          the GPU architecture the PTX targets, e.g. 86 (default 80: the PTX
#                             runs on compute capability 8.0 and newer, JIT-compiled by the
#                             driver; below 80 dfdx 0.13's kernels need nvcc 12.1 or older)
#   RNNSWEEP_CUDA_BUILD_DIR   build folder (default target/cuda): venv/, link-stubs/, bin/
#   CARGO_TARGET_DIR          cargo's output (default <build folder>/target)
#
# Workarounds it applies (README, "Building with CUDA"):
# - dfdx 0.13's build script asks `nvidia-smi` for the GPU's compute capability before it reads
#   CUDA_COMPUTE_CAP, so a GPU-less build needs an nvidia-smi: bin/nvidia-smi here prints the
#   chosen capability (also used where a real one exists, so the build does not depend on the
#   builder's GPU).
# - cudarc 0.9 links -lcuda -lnvrtc -lcublas -lcublasLt. The binary defines every function it
#   calls (src/cuda_shim/; the two test executables include it too), so the linker needs those
#   names only to exist: link-stubs/ holds empty libraries of those names (on LIBRARY_PATH), and
#   `--as-needed` leaves them out. The check afterwards fails the build if any of them is still
#   in the DT_NEEDED of the binary or of a test executable.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

WHEELS_ONLY=0
PROFILE=release
CHECK=1
for arg in "$@"; do
    case "$arg" in
        --wheels) WHEELS_ONLY=1 ;;
        --debug) PROFILE=debug ;;
        --no-check) CHECK=0 ;;
        -h|--help) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-cuda: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

BUILD_DIR="${RNNSWEEP_CUDA_BUILD_DIR:-$REPO/target/cuda}"
mkdir -p "$BUILD_DIR"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$BUILD_DIR/target}"
CAP="${CUDA_COMPUTE_CAP:-80}"
if ! [[ "$CAP" =~ ^[0-9]+[0-9]$ ]]; then
    echo "build-cuda: CUDA_COMPUTE_CAP must be digits like 75 or 86, not '$CAP'" >&2
    exit 2
fi
START=$(date +%s)

# The CUDA 13.0 wheels that together hold nvcc, cicc, its headers and cuda.h (all under
# site-packages/nvidia/cu13/, a toolkit's layout). The cu12 wheels of nvcc hold no nvcc program.
WHEELS="nvidia-cuda-nvcc==13.0.88 --hash=sha256:56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03
nvidia-nvvm==13.0.88 --hash=sha256:c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0
nvidia-cuda-crt==13.0.88 --hash=sha256:2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4
nvidia-cuda-runtime==13.0.96 --hash=sha256:7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-cuda-cccl==13.0.85 --hash=sha256:e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649"

toolkit_with_nvcc() {
    local d
    for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}"; do
        if [ -n "$d" ] && [ -x "$d/bin/nvcc" ]; then echo "$d"; return 0; fi
    done
    if command -v nvcc >/dev/null 2>&1; then
        dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"
        return 0
    fi
    return 1
}

wheel_toolkit() {
    case "$(uname -sm)" in
        "Linux x86_64") ;;
        *) echo "build-cuda: the pinned wheels are for Linux x86_64; install a CUDA toolkit" >&2; exit 2 ;;
    esac
    local venv="$BUILD_DIR/venv" req="$BUILD_DIR/venv/rnnsweep-wheels.txt"
    if [ ! -f "$req" ] || [ "$(cat "$req")" != "$WHEELS" ]; then
        echo "build-cuda: installing NVIDIA's CUDA 13.0 nvcc wheels into $venv (once; about 105 MB)" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
        printf '%s\n' "$WHEELS" > "$BUILD_DIR/requirements.txt"
        "$venv/bin/python" -m pip install --quiet --no-deps --only-binary=:all: \
            --require-hashes -r "$BUILD_DIR/requirements.txt"
        printf '%s' "$WHEELS" > "$req"
    fi
    local cu13
    cu13=$(ls -d "$venv"/lib/python3*/site-packages/nvidia/cu13 2>/dev/null | head -n1)
    if [ -z "$cu13" ] || [ ! -x "$cu13/bin/nvcc" ]; then
        echo "build-cuda: no nvcc in the wheels' folder under $venv; delete it and retry" >&2
        exit 1
    fi
    echo "$cu13"
}

if [ "$WHEELS_ONLY" = 0 ] && TOOLKIT=$(toolkit_with_nvcc); then
    SOURCE="CUDA toolkit at $TOOLKIT"
else
    TOOLKIT=$(wheel_toolkit)
    SOURCE="PyPI wheels (nvidia-cuda-nvcc 13.0.88 and four more) at $TOOLKIT"
fi
if [ ! -f "$TOOLKIT/include/cuda.h" ]; then
    echo "build-cuda: $TOOLKIT has nvcc but no include/cuda.h, which cudarc and dfdx need" >&2
    exit 2
fi
NVCC="$TOOLKIT/bin/nvcc"
NVCC_VERSION=$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
# dfdx 0.13's compatibility.cuh defines __hmax_nan/__hmin_nan below sm_80, which CUDA 12.2 and
# newer headers define for every architecture: nvcc then fails on every kernel (fixed in dfdx
# after 0.13.0, dfdx PR #855).
NVCC_NUM=$(awk -F. '{ printf "%d", $1 * 100 + $2 }' <<<"$NVCC_VERSION")
if [ "$CAP" -lt 80 ] && [ "$NVCC_NUM" -ge 1202 ]; then
    echo "build-cuda: dfdx 0.13's kernels do not compile for sm_$CAP with nvcc $NVCC_VERSION" \
        "(12.2 or newer); use CUDA_COMPUTE_CAP=80 or more, or a CUDA 12.1 or older toolkit" >&2
    exit 2
fi
if ! "$NVCC" --list-gpu-code | grep -qx "sm_$CAP"; then
    echo "build-cuda: nvcc $NVCC_VERSION cannot target sm_$CAP; it offers:" \
        $("$NVCC" --list-gpu-code | tr '\n' ' ') >&2
    exit 2
fi

# dfdx's build script: `nvidia-smi --query-gpu=compute_cap --format=csv` must answer.
mkdir -p "$BUILD_DIR/bin"
cat > "$BUILD_DIR/bin/nvidia-smi" <<EOF
#!/bin/sh
# Written by scripts/build-cuda.sh for dfdx's build script: the compute capability to build for.
printf 'compute_cap\n%s.%s\n' "${CAP%?}" "${CAP#"${CAP%?}"}"
EOF
chmod +x "$BUILD_DIR/bin/nvidia-smi"

# Empty libraries for cudarc's -l flags (see the top of this file).
STUBS="$BUILD_DIR/link-stubs"
mkdir -p "$STUBS"
for lib in cuda:1 nvrtc:12 cublas:12 cublasLt:12; do
    name=${lib%%:*}
    if [ ! -f "$STUBS/lib$name.so" ]; then
        cc -shared -o "$STUBS/lib$name.so" -Wl,-soname,"lib$name.so.${lib##*:}" -x c /dev/null
    fi
done

export PATH="$BUILD_DIR/bin:$TOOLKIT/bin:$PATH"
export CUDA_ROOT="$TOOLKIT" CUDA_PATH="$TOOLKIT" CUDA_COMPUTE_CAP="$CAP"
echo "build-cuda: nvcc $NVCC_VERSION from $SOURCE; PTX for sm_$CAP; output in $CARGO_TARGET_DIR" >&2
PROFILE_ARGS=()
[ "$PROFILE" = release ] && PROFILE_ARGS=(--release)
# The linker finds the stubs through LIBRARY_PATH, which cc searches for -l and cargo does not
# track: the dependencies' builds stay as `cargo build --features cuda` makes them, and the
# binary is one build unit whether built alone or for the tests below (which build it too; a
# `cargo rustc -- -L` for the binary alone made that second build of it fail to link).
export LIBRARY_PATH="$STUBS${LIBRARY_PATH:+:$LIBRARY_PATH}"
cargo build "${PROFILE_ARGS[@]}" --features cuda --bin rnnsweep

BIN="$CARGO_TARGET_DIR/$PROFILE/rnnsweep"
# The GPU check's tests (scripts/gpu-check.sh runs their ignored CUDA tests), built here because
# a GPU machine needs no toolkit: copied to <build folder>/tests/.
# A failure here leaves the binary built and says so: gpu-check.sh then names what is missing.
# Cargo's messages name the binary too (the tests build it): the test's own is picked by kind.
mkdir -p "$BUILD_DIR/tests"
for t in pytorch_fixtures model_correctness; do
    exe=$(cargo test "${PROFILE_ARGS[@]}" --features cuda --no-run --test "$t" \
        --message-format=json-render-diagnostics |
        grep '"kind":\["test"\]' | grep -F "\"name\":\"$t\"" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n1) || exe=
    if [ -n "$exe" ]; then
        cp "$exe" "$BUILD_DIR/tests/$t"
    else
        echo "build-cuda: WARNING: the test $t (for scripts/gpu-check.sh) did not build" >&2
    fi
done
SECONDS_TAKEN=$(( $(date +%s) - START ))
PTX=$(ls -t "$CARGO_TARGET_DIR/$PROFILE"/build/dfdx-*/out/binary_add.ptx 2>/dev/null | head -n1 || true)
PTX_INFO=unknown
if [ -n "$PTX" ]; then
    PTX_INFO=$(grep -m2 -E '^\.(version|target)' "$PTX" | tr '\n' ' ' | sed 's/ $//')
fi
if [ "$CHECK" = 1 ]; then
    scripts/check-cuda-build.sh "$BIN" "$BUILD_DIR/tests"
fi
SIZE=$(stat -c %s "$BIN")
echo
echo "built:  $BIN"
echo "tests:  $BUILD_DIR/tests/ (for scripts/gpu-check.sh on a GPU machine)"
echo "size:   $SIZE bytes ($(( (SIZE + 524288) / 1048576 )) MiB), $PROFILE profile"
echo "nvcc:   $NVCC_VERSION ($SOURCE)"
echo "PTX:    $PTX_INFO (GPUs of compute capability ${CAP%?}.${CAP#"${CAP%?}"} and newer)"
echo "time:   $(( SECONDS_TAKEN / 60 )) min $(( SECONDS_TAKEN % 60 )) s"
