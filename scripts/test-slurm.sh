#!/usr/bin/env bash
# The real-Slurm test (`just test-slurm`, and tests/slurm.rs when RNNSWEEP_SLURM_TESTS=require): starts a one-node Slurm cluster on this machine
# (scripts/slurm-local.sh; needs root, installs slurm-wlm and munge when missing), then
#  1. submits the script `rnnsweep slurm` writes for tests/grids/tiny.toml as a 3-task array and
#     checks that every cell is done exactly once and records its Slurm job and task;
#  2. submits tests/grids/kill.toml as one task, sends it SIGUSR1 (what --signal does before the
#     time limit) while it trains, and checks that the task stops, requeues itself, continues the
#     stopped cell from its checkpoint (not from scratch) and finishes.
# The jobs train with the fake trainer (RNNSWEEP_FAKE_TRAINER, src/trainer/backend/fake.rs;
# sbatch passes the environment on), 5 ms a step: a kill.toml cell takes 1 s on any machine, so
# the signal always finds the task training, and no MNIST files are needed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/rnnsweep-slurm.XXXXXX)
state="$work/slurm"
export RNNSWEEP_FAKE_TRAINER="${RNNSWEEP_FAKE_TRAINER-delay_ms=5}"
export RNNSWEEP_DATA="${RNNSWEEP_DATA:-/nonexistent/rnnsweep-slurm-test-uses-no-mnist}"
start=$(date +%s)

cleanup() { scripts/slurm-local.sh stop "$state" || true; }
trap cleanup EXIT

# The binary under test: $RNNSWEEP_BIN (set by tests/slurm.rs), else a fresh debug build.
if [ -n "${RNNSWEEP_BIN:-}" ]; then
    bin=$RNNSWEEP_BIN
else
    cargo build --quiet
    bin="$root/target/debug/rnnsweep"
fi
scripts/slurm-local.sh start "$state"
export SLURM_CONF="$state/slurm.conf"

fail() { echo "FAIL: $*" >&2; exit 1; }

# Counts lines of events.jsonl with this event, per cell, and fails unless each cell has one.
once_each() { # sweep-dir event cells
    python3 - "$1/events.jsonl" "$2" "$3" <<'PY'
import json, sys, collections
path, kind, cells = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = collections.Counter(json.loads(l)["cell"] for l in open(path) if json.loads(l)["event"] == kind)
bad = {k: v for k, v in c.items() if v != 1}
if len(c) != cells or bad:
    sys.exit(f"{kind}: {len(c)} cells seen (want {cells}), repeated: {bad}")
PY
}

echo "== 1. job array over tests/grids/tiny.toml"
res="$work/results"
script=$("$bin" slurm tests/grids/tiny.toml --results "$res" --tasks 3 --cpus-per-task 1 --time 00:05:00 -q)
sbatch --wait "$script" >/dev/null || fail "the array job failed; logs: $res/tiny/slurm"
"$bin" status tiny --results "$res"
"$bin" status tiny --results "$res" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
assert s["counts"]["done"] == s["cells"] == 6, s["counts"]'
once_each "$res/tiny" start 6
python3 - "$res/tiny" <<'PY'
import json, sys, pathlib
tasks = set()
for r in pathlib.Path(sys.argv[1], "runs").glob("*/result.json"):
    o = json.loads(r.read_text())["record"]["origin"]
    assert o.get("slurm_array_job_id") and o.get("slurm_array_task_id") is not None, o
    tasks.add(o["slurm_array_task_id"])
assert tasks == {"0", "1", "2"}, tasks
print("each of the 6 cells done once, by array tasks", sorted(tasks))
PY

echo "== 2. SIGUSR1 before the time limit: stop, requeue, finish"
script=$("$bin" slurm tests/grids/kill.toml --results "$res" --tasks 1 --cpus-per-task 1 --time 00:05:00 -q)
job=$(sbatch --parsable "$script")
job=${job%%;*}
started=$(( $(date +%s) + 60 ))
# Signal once a cell is past its first evaluation (metrics.csv written): it has trained steps,
# so the stop writes a checkpoint that the requeued task continues from.
while [ "$(date +%s)" -lt "$started" ]; do
    ls "$res"/kill/runs/*/metrics.csv >/dev/null 2>&1 && break
    sleep 0.05
done
ls "$res"/kill/runs/*/metrics.csv >/dev/null 2>&1 || fail "the task never trained a cell"
scancel --batch --signal=USR1 "${job}_0"
# Slurm holds a requeued job for about two minutes before it may start again.
deadline=$(( $(date +%s) + 420 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    if "$bin" status kill --results "$res" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
sys.exit(0 if s["counts"]["done"] == s["cells"] else 1)' 2>/dev/null && ! squeue -h -j "$job" | grep -q .; then
        break
    fi
    sleep 1
done
squeue -h -j "$job" | grep -q . && fail "job $job still queued or running after 7 minutes"
"$bin" status kill --results "$res"
log=$(ls "$res"/kill/slurm/*.out)
grep -q "stopped by SIGUSR1" "$log" || fail "no clean stop in $log"
runs=$(grep -c "^rnnsweep task" "$log")
[ "$runs" -ge 2 ] || fail "the task ran $runs time(s); it should have been requeued"
python3 - "$res/kill/events.jsonl" <<'PY'
import json, sys, collections
ev = [json.loads(l) for l in open(sys.argv[1])]
done = collections.Counter(e["cell"] for e in ev if e["event"] == "done")
assert len(done) == 9 and set(done.values()) == {1}, done
stopped = [e for e in ev if e["event"] == "interrupted"]
assert stopped, "no cell was interrupted"
saved = [e for e in stopped if e.get("checkpoint") is not None]
assert saved, f"no checkpoint written when stopped: {stopped}"
for e in saved:
    cell = e["cell"]
    resumed = [r for r in ev if r["event"] == "resume" and r["cell"] == cell]
    assert resumed and resumed[0]["iteration"] == e["checkpoint"], \
        f"cell {cell} stopped at step {e['checkpoint']} was not continued from there: {resumed}"
    starts = [r for r in ev if r["event"] == "start" and r["cell"] == cell]
    assert len(starts) == 1, f"cell {cell} started from scratch {len(starts)} times"
print(f"stopped by SIGUSR1, requeued, {len(saved)} cell(s) continued from their checkpoint, "
      "all 9 cells done once")
PY
echo "slurm test passed in $(( $(date +%s) - start )) s"
