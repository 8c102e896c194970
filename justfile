# rnnsweep tasks. `just` lists them. Data: --data-dir, $RNNSWEEP_DATA, or the per-user cache
# (downloaded and verified on first use).

default:
    @just --list

# Run a grid's cells that are not done yet, e.g. `just sweep experiments/activation.toml`
sweep GRID *ARGS:
    cargo run --release -- sweep {{GRID}} {{ARGS}}

# Tables of every sweep under results/ (or name some: `just summarize activation --format markdown`)
summarize *ARGS:
    cargo run --release -- results summarize {{ARGS}}

# Charts (SVG + PNG) of accuracy and loss vs epoch, e.g. `just curves activation`
curves *ARGS:
    cargo run --release -- results curves {{ARGS}}

# One offline HTML page with the tables and charts, e.g. `just report activation --out report.html`
report *ARGS:
    cargo run --release -- results report {{ARGS}}

# List a grid's cells with their status and a time estimate
plan GRID *ARGS:
    cargo run --release -- plan {{GRID}} {{ARGS}}

# Train one network, e.g. `just train --preset model_c` or `just train --cell lstm --hidden 64`
train *ARGS:
    cargo run --release -- train {{ARGS}}

# The whole test suite (what CI runs)
test:
    cargo test

# The real-Slurm test: a one-node Slurm cluster on this machine (root; installs slurm-wlm and
# munge when missing), an array job over a tiny grid, and a SIGUSR1 stop + requeue (≈3 min).
# CI runs the same through tests/slurm.rs (RNNSWEEP_SLURM_TESTS=require).
test-slurm:
    scripts/test-slurm.sh

# Formatting, lints, tests, and the CUDA code path type-checked without a CUDA toolkit
check:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings
    cargo test
    cargo check --features cuda,ci-check

# A real `--features cuda` build (release): nvcc from the CUDA toolkit if installed, else from
# pinned PyPI wheels (downloaded once into target/cuda/venv); then checked without a GPU
# (scripts/check-cuda-build.sh). `CUDA_COMPUTE_CAP=86 just build-cuda` targets another GPU
# generation (default 80). Slow (README, "Building with CUDA"), so not part of `check` or CI.
build-cuda *ARGS:
    scripts/build-cuda.sh {{ARGS}}

# Single-thread training throughput of the six tutorial recipes
bench *ARGS:
    cargo run --release -- bench {{ARGS}}

# rnnsweep's and PyTorch's training speed side by side, measured now on this machine (PyTorch from
# $PYTHON, default python3, with torch and numpy installed; never needed by the tests). Takes
# bench's flags: `just bench-vs-pytorch --recipe lstm_h64`. `RNNSWEEP_ISA=avx2 just bench-vs-pytorch`
# caps both programs at AVX2 (PyTorch through ATEN_CPU_CAPABILITY).
bench-vs-pytorch *ARGS:
    cargo build --release
    mkdir -p target/bench-vs-pytorch
    target/release/rnnsweep bench --pytorch-spec {{ARGS}} > target/bench-vs-pytorch/spec.json
    ${PYTHON:-python3} bench/pytorch/bench.py target/bench-vs-pytorch/spec.json --out target/bench-vs-pytorch/pytorch.json
    target/release/rnnsweep bench --pytorch target/bench-vs-pytorch/pytorch.json {{ARGS}}

# Fetch and verify the MNIST files (`just data verify`, `just data show 0`)
data *ARGS="fetch":
    cargo run --release -- data {{ARGS}}
