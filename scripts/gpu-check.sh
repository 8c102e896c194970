#!/usr/bin/env bash
# The GPU acceptance check: run it on a machine with an NVIDIA GPU and its driver, holding the
# repository, ../shared/ (MNIST) and the CUDA build folder `just build-cuda` made (default
# target/cuda, or RNNSWEEP_CUDA_BUILD_DIR, or the first argument). It reads nothing from the
# network and needs no CUDA toolkit. Usage:
#
#   scripts/gpu-check.sh [--rehearse] [BUILD_DIR]
#
# 1. The GPU: nvidia-smi, and `rnnsweep train --device cuda` must open it.
# 2. PyTorch's golden fixtures (f32: logits, loss, every gradient, 3 steps of SGD, momentum,
#    Adam and RMSprop) on the GPU, within the CPU's f32 tolerances: 1e-5 relative to each value
#    and to its tensor's largest; 3e-5 of the largest after Adam/RMSprop steps. And the CPU's
#    fused layers against the dfdx-ops path on the GPU: logits and every gradient within 2e-5
#    relative. Both are the ignored CUDA tests of tests/pytorch_fixtures.rs and
#    tests/model_correctness.rs, prebuilt by `just build-cuda` into BUILD_DIR/tests/; each must
#    be listed by `--list --ignored` first (a name that matched nothing would pass, 0 tests).
# 3. The six tutorial recipes for 300 steps each (test accuracy on 2,000 images) on the GPU and
#    on the CPU, side by side with samples/s.
# 4. A 2-job sweep of experiments/smoke.toml on one GPU, into a temporary folder.
#
# It stops at the first failure and says which step failed.
#
# --rehearse (or GPU_CHECK_REHEARSE=1): a rehearsal on a machine without a GPU, for the script's
# own plumbing. The CPU stands in for the GPU: no nvidia-smi, `--device cpu` wherever the check
# says cuda (so step 3's two columns are both the CPU), and step 2 only checks that both test
# executables are there and list their ignored CUDA test. It proves nothing about CUDA, and ends
# with "gpu-check rehearsal passed", never "gpu-check passed".
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
REHEARSE="${GPU_CHECK_REHEARSE:-0}"
ARGS=()
for arg in "$@"; do
    case "$arg" in
        --rehearse) REHEARSE=1 ;;
        -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu-check: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) ARGS+=("$arg") ;;
    esac
done
[ "${#ARGS[@]}" -le 1 ] || { echo "gpu-check: one BUILD_DIR at most (see --help)" >&2; exit 2; }
case "$REHEARSE" in
    0) GPU=cuda ;;
    1) GPU=cpu ;;
    *) echo "gpu-check: GPU_CHECK_REHEARSE must be 0 or 1, not '$REHEARSE'" >&2; exit 2 ;;
esac
BUILD_DIR="${ARGS[0]:-${RNNSWEEP_CUDA_BUILD_DIR:-$REPO/target/cuda}}"
BIN="$BUILD_DIR/target/release/rnnsweep"
TESTS="$BUILD_DIR/tests"
export RNNSWEEP_DATA="${RNNSWEEP_DATA:-$REPO/../shared/data/mnist}"
export RNNSWEEP_MNIST_MIRRORS="http://127.0.0.1:9/" # a missing file is an error, not a download
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'gpu-check FAILED at step %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || fail "0: no $BIN (build it with \`just build-cuda\`)"
[ -d "$RNNSWEEP_DATA" ] || fail "0: no MNIST folder $RNNSWEEP_DATA (set RNNSWEEP_DATA)"

step "1. the GPU"
if [ "$REHEARSE" = 1 ]; then
    echo "rehearsal: no nvidia-smi; the CPU stands in for the GPU from here on"
else
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv ||
        fail "1: nvidia-smi"
fi
"$BIN" train --preset lstm_h20 --iterations 5 --test-limit 100 --device "$GPU" \
    --out "$WORK/probe" -q >/dev/null || fail "1: rnnsweep cannot train on $GPU"
echo "rnnsweep trained on $GPU"

step "2. PyTorch fixtures and fused-vs-ops on the GPU"
for t in pytorch_fixtures model_correctness; do
    exe="$TESTS/$t"
    name=$([ $t = pytorch_fixtures ] && echo f32_on_cuda_matches_pytorch_float32 ||
        echo fused_cpu_layers_match_the_ops_path_on_cuda)
    [ -x "$exe" ] || fail "2: no prebuilt $t test in $TESTS (rebuild with \`just build-cuda\`)"
    # A filter that matches nothing would pass with "0 tests": the test must be listed first.
    listed=$("$exe" --list --ignored) || fail "2: $t --list"
    grep -qx "$name: test" <<<"$listed" || fail "2: $t has no ignored test $name"
    if [ "$REHEARSE" = 1 ]; then
        echo "$t: lists the ignored test $name (not run: rehearsal)"
    else
        CARGO_MANIFEST_DIR="$REPO" "$exe" --ignored --exact "$name" || fail "2: $t on the GPU"
    fi
done

step "3. the tutorial recipes, 300 steps, GPU and CPU"
# A number from a run's JSON record (the first one of that name: the record's own), "-" for none.
field() {
    local v
    v=$(sed -n "s/.*\"$1\": *\([0-9.eE+-]*\).*/\1/p" "$2" | head -n1)
    echo "${v:--}"
}
acc() { grep -q '"status": *"diverged"' "$1" && echo diverged || field final_test_acc "$1"; }
rate() { local v; v=$(field samples_per_sec "$1"); [ "$v" = - ] && echo - || printf '%.0f' "$v"; }
printf '%-10s %12s %12s %14s %14s\n' recipe "acc GPU" "acc CPU" "samples/s GPU" "samples/s CPU"
for r in rnnimc model_a model_b model_c lstm_h20 lstm_h64; do
    for d in cuda cpu; do
        "$BIN" train --preset "$r" --iterations 300 --eval-every 300 --test-limit 2000 \
            --device "$([ $d = cuda ] && echo "$GPU" || echo cpu)" --out "$WORK/$r-$d" \
            --json -q >"$WORK/$r-$d.json" ||
            [ $? -eq 1 ] || fail "3: $r on $d" # exit 1: the run diverged, a result
    done
    printf '%-10s %12s %12s %14s %14s\n' "$r" "$(acc "$WORK/$r-cuda.json")" \
        "$(acc "$WORK/$r-cpu.json")" "$(rate "$WORK/$r-cuda.json")" "$(rate "$WORK/$r-cpu.json")"
done

step "4. a 2-job sweep on one GPU"
"$BIN" sweep experiments/smoke.toml --results "$WORK/results" --jobs 2 --device "$GPU" -q ||
    fail "4: the sweep"
"$BIN" results summarize --results "$WORK/results" smoke || fail "4: summarize"
grep -q "\"device\": *\"$GPU" "$WORK"/results/smoke/runs/*/result.json ||
    fail "4: the cells did not record $GPU as their device"

if [ "$REHEARSE" = 1 ]; then
    printf '\ngpu-check rehearsal passed (on the CPU: nothing about CUDA was checked)\n'
else
    printf '\ngpu-check passed\n'
fi
