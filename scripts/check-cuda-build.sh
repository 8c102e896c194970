#!/usr/bin/env bash
# Checks a `--features cuda` binary on any machine, GPU or not (scripts/build-cuda.sh runs it
# after building):
#
#   scripts/check-cuda-build.sh [BINARY [TESTS_DIR]]
#
# BINARY defaults to target/cuda/target/release/rnnsweep; TESTS_DIR (build-cuda.sh gives
# <build folder>/tests) holds the test executables scripts/gpu-check.sh runs.
#
# 1. Its DT_NEEDED names no CUDA library (libcuda, libnvrtc, libcublas), and ldd finds every
#    library it does need: it starts where no NVIDIA driver is installed.
# 2. With a fake driver (a libcuda.so.1 compiled here whose cuInit answers
#    CUDA_ERROR_NO_DEVICE, put first on LD_LIBRARY_PATH): `train --device cuda` prints one line
#    naming that error and exits 2. This runs the binary's run-time loading (dlopen, dlsym and
#    cudarc's calls through the forwarding symbols) without a GPU.
# 3. On this machine's own driver, or its absence: `train --device cuda` either trains or prints
#    one line and exits 2; never a panic or a backtrace (RUST_BACKTRACE=1 throughout).
# 4. `train --device auto` trains 50 steps (on the CPU where step 3 found no GPU).
# 5. With TESTS_DIR: both test executables are there, step 1 holds for each, and each lists
#    its ignored CUDA test (`--list --ignored`), the one gpu-check.sh runs.
# Steps 2-4 before the data load print nothing else; step 4 reads MNIST from --data-dir's usual
# places ($RNNSWEEP_DATA, or the per-user cache, which is downloaded when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-${RNNSWEEP_CUDA_BUILD_DIR:-target/cuda}/target/release/rnnsweep}"
TESTS_DIR="${2:-}"
[ -x "$BIN" ] || { echo "check-cuda-build: no binary at $BIN" >&2; exit 2; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export RUST_BACKTRACE=1
FAILED=0
fail() { echo "FAIL: $*" >&2; FAILED=1; }
ok() { echo "ok:   $*"; }

# 1. What an executable needs at load time.
check_needed() {
    local exe=$1 what=$2 needed
    needed=$(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    echo "DT_NEEDED of $what: $needed"
    if grep -qE 'lib(cuda|nvrtc|cublas)' <<<"$needed"; then
        fail "$what links a CUDA library at load time: $needed"
    else
        ok "no CUDA library in the DT_NEEDED of $what"
    fi
    if ldd "$exe" | grep -q "not found"; then
        fail "ldd $what: $(ldd "$exe" | grep 'not found' | tr '\n' ' ')"
    else
        ok "ldd finds every library $what needs"
    fi
}
check_needed "$BIN" "the binary"

# Runs `train` with the given device and extra environment; sets RC, OUT, ERR.
run_train() {
    local device=$1; shift
    set +e
    env "$@" "$BIN" train --preset lstm_h20 --iterations 50 --test-limit 1000 \
        --device "$device" --out "$TMP/out-$device" >"$TMP/stdout" 2>"$TMP/stderr"
    RC=$?
    set -e
    OUT=$(cat "$TMP/stdout")
    ERR=$(cat "$TMP/stderr")
}

# A refusal: exit 2, nothing on stdout, one line on stderr, no panic or backtrace.
expect_refusal() {
    local what=$1 want=$2
    if [ "$RC" = 2 ] && [ -z "$OUT" ] && [ "$(wc -l <"$TMP/stderr")" = 1 ] \
        && grep -q "$want" "$TMP/stderr" && ! grep -qiE 'panick|backtrace' "$TMP/stderr"; then
        ok "$what: exit 2, one line: $ERR"
    else
        fail "$what: exit $RC, stdout [$OUT], stderr [$ERR]"
    fi
}

# 2. A driver that is there but sees no GPU.
cat >"$TMP/fake_cuda.c" <<'EOF'
/* A stand-in for the NVIDIA driver on a machine without a GPU. */
typedef int CUresult;
CUresult cuInit(unsigned int flags) { (void)flags; return 100; /* CUDA_ERROR_NO_DEVICE */ }
CUresult cuGetErrorName(CUresult e, const char **s) {
    *s = e == 100 ? "CUDA_ERROR_NO_DEVICE" : "CUDA_ERROR_UNKNOWN"; return 0; }
CUresult cuGetErrorString(CUresult e, const char **s) {
    *s = e == 100 ? "no CUDA-capable device is detected" : "unknown error"; return 0; }
EOF
mkdir -p "$TMP/fake"
cc -shared -fPIC -o "$TMP/fake/libcuda.so.1" -Wl,-soname,libcuda.so.1 "$TMP/fake_cuda.c"
run_train cuda LD_LIBRARY_PATH="$TMP/fake${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
expect_refusal "--device cuda, fake driver without GPU" "CUDA_ERROR_NO_DEVICE"

# 3. This machine as it is.
run_train cuda
if [ "$RC" = 0 ]; then
    ok "--device cuda trained on this machine's GPU: $(grep '^device:' "$TMP/stdout" || true)"
else
    expect_refusal "--device cuda on this machine" "no usable CUDA device"
fi

# 4. auto: the GPU where step 3 trained, else the CPU.
run_train auto
DEVICE_LINE=$(grep '^device:' "$TMP/stdout" || true)
if [ "$RC" = 0 ] && ! grep -qiE 'panick|backtrace' "$TMP/stderr" && [ -n "$DEVICE_LINE" ]; then
    ok "--device auto trained: $DEVICE_LINE"
    echo "      $(tail -n1 "$TMP/stdout")"
    echo "      $(head -n1 "$TMP/stderr")"
else
    fail "--device auto: exit $RC, stdout [$OUT], stderr [$ERR]"
fi

# 5. The GPU check's test executables.
if [ -n "$TESTS_DIR" ]; then
    for t in pytorch_fixtures:f32_on_cuda_matches_pytorch_float32 \
        model_correctness:fused_cpu_layers_match_the_ops_path_on_cuda; do
        exe="$TESTS_DIR/${t%%:*}" name=${t#*:}
        if [ ! -x "$exe" ]; then
            fail "no test executable $exe"
            continue
        fi
        check_needed "$exe" "${t%%:*}"
        listed=$("$exe" --list --ignored 2>&1) || true
        if grep -qx "$name: test" <<<"$listed"; then
            ok "${t%%:*} lists its ignored test $name"
        else
            fail "${t%%:*} does not list the ignored test $name"
        fi
    done
fi

if [ "$FAILED" = 0 ]; then
    echo "check-cuda-build: all checks passed for $BIN"
else
    echo "check-cuda-build: some checks failed for $BIN" >&2
    exit 1
fi
