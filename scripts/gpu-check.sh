#!/usr/bin/env bash
# The GPU acceptance check: run it on a machine with an NVIDIA GPU and its driver, holding the
# repository, ../shared/ (MNIST) and the CUDA build folder `just build-cuda` made (default
# target/cuda, or RNNSWEEP_CUDA_BUILD_DIR, or the first argument). It reads nothing from the
# network and needs no CUDA toolkit. Usage:
#
#   scripts/gpu-check.sh [BUILD_DIR]
#
# 1. The GPU: nvidia-smi, and `rnnsweep train --device cuda` must open it.
# 2. PyTorch's golden fixtures (f32: logits, loss, every gradient, 3 steps of SGD, momentum,
#    Adam and RMSprop) on the GPU, within the CPU's f32 tolerances: 1e-5 relative to each value
#    and to its tensor's largest; 3e-5 of the largest after Adam/RMSprop steps. And the CPU's
#    fused layers against the dfdx-ops path on the GPU: logits and every gradient within 2e-5
#    relative. Both are the ignored CUDA tests of tests/pytorch_fixtures.rs and
#    tests/model_correctness.rs, prebuilt by `just build-cuda` into BUILD_DIR/tests/.
# 3. The six tutorial recipes for 300 steps each (test accuracy on 2,000 images) on the GPU and
#    on the CPU, side by side with samples/s.
# 4. A 2-job sweep of experiments/smoke.toml on one GPU, into a temporary folder.
#
# It stops at the first failure and says which step failed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BUILD_DIR="${1:-${RNNSWEEP_CUDA_BUILD_DIR:-$REPO/target/cuda}}"
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
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv ||
    fail "1: nvidia-smi"
"$BIN" train --preset lstm_h20 --iterations 5 --test-limit 100 --device cuda \
    --out "$WORK/probe" -q >/dev/null || fail "1: rnnsweep cannot train on the GPU"
echo "rnnsweep opened the GPU"

step "2. PyTorch fixtures and fused-vs-ops on the GPU"
for t in pytorch_fixtures model_correctness; do
    exe="$TESTS/$t"
    [ -x "$exe" ] || fail "2: no prebuilt $t test in $TESTS (rebuild with \`just build-cuda\`)"
    CARGO_MANIFEST_DIR="$REPO" "$exe" --ignored --exact \
        "$([ $t = pytorch_fixtures ] && echo f32_on_cuda_matches_pytorch_float32 ||
            echo fused_cpu_layers_match_the_ops_path_on_cuda)" || fail "2: $t on the GPU"
done

step "3. the tutorial recipes, 300 steps, GPU and CPU"
field() { sed -n "s/.*\"$1\": *\([0-9.eE+-]*\).*/\1/p" "$2" | head -n1; }
printf '%-10s %12s %12s %14s %14s\n' recipe "acc GPU" "acc CPU" "samples/s GPU" "samples/s CPU"
for r in rnnimc model_a model_b model_c lstm_h20 lstm_h64; do
    for d in cuda cpu; do
        "$BIN" train --preset "$r" --iterations 300 --eval-every 300 --test-limit 2000 \
            --device "$d" --out "$WORK/$r-$d" --json -q >"$WORK/$r-$d.json" ||
            [ $? -eq 1 ] || fail "3: $r on $d" # exit 1: the run diverged, a result
    done
    printf '%-10s %12s %12s %14.0f %14.0f\n' "$r" \
        "$(field final_test_acc "$WORK/$r-cuda.json")" "$(field final_test_acc "$WORK/$r-cpu.json")" \
        "$(field samples_per_sec "$WORK/$r-cuda.json")" "$(field samples_per_sec "$WORK/$r-cpu.json")"
done

step "4. a 2-job sweep on one GPU"
"$BIN" sweep experiments/smoke.toml --results "$WORK/results" --jobs 2 --device cuda -q ||
    fail "4: the sweep"
"$BIN" results summarize --results "$WORK/results" smoke || fail "4: summarize"
grep -q '"device": *"cuda' "$WORK"/results/smoke/runs/*/result.json ||
    fail "4: the cells did not record the GPU as their device"

printf '\ngpu-check passed\n'
