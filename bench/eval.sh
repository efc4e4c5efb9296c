#!/usr/bin/env bash
# `junction eval` benchmark (see BENCHMARKS.md, section "`junction eval`").
#
# Builds the release binary and the input generator (bench/src/bin/eval_input.rs), writes LINES
# lines of the stock ChartMogul configuration (the sample workspace's settings and both default
# mappings, each line with a realistic identify event of its own) and the same events alone, then
# RUNS times runs
#   lines:     junction eval < lines            (and $BEFORE eval < lines, when BEFORE is set)
#   workspace: junction eval --workspace examples/workspace.json < events
# and reports the user+system CPU time of each `junction` process (its rusage, start-up
# included) per line, each run and the medians; with BEFORE, the ratio after/before of the
# medians. Runs of the two binaries alternate, so both see the same machine load. Output goes to
# /dev/null, except one run of each binary first, whose outputs must be identical (and every
# Send Contact `sent`).
#
#   bench/eval.sh                                       # 5 runs of 20,000 lines
#   BEFORE=/path/to/old/junction bench/eval.sh          # before/after, same runs
#   RUNS=9 LINES=50000 NO_BUILD=1 bench/eval.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
LINES=${LINES:-20000}
target_dir=${CARGO_TARGET_DIR:-target}

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p junction-cli -p junction-bench --bin junction --bin eval-input
fi
junction=${JUNCTION:-$target_dir/release/junction}
before=${BEFORE:-}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$target_dir/release/eval-input" lines "$LINES" >"$work/lines.jsonl"
"$target_dir/release/eval-input" events "$LINES" >"$work/events.jsonl"

# Outputs first: the measured work must be the real one.
"$junction" eval <"$work/lines.jsonl" >"$work/after.out"
sent=$(grep -c '"outcome":"sent"' "$work/after.out" || true)
if [[ "$sent" != "$LINES" ]]; then
    echo "expected $LINES lines with a sent request, got $sent" >&2
    exit 1
fi
if [[ -n "$before" ]]; then
    "$before" eval <"$work/lines.jsonl" >"$work/before.out"
    cmp "$work/before.out" "$work/after.out"
    echo "outputs of $before and $junction: identical"
fi

cpu=$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n 1)
echo "machine: $(nproc) cores, $cpu; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $LINES lines ($(wc -c <"$work/lines.jsonl") bytes), $LINES events" \
    "($(wc -c <"$work/events.jsonl") bytes); $RUNS runs"

python3 - "$RUNS" "$LINES" "$work" "$junction" "$before" <<'PY'
import os, statistics, subprocess, sys
runs, lines, work, after, before = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:]
cases = []
if before:
    cases.append(("lines, before", [before, "eval"], "lines.jsonl"))
cases.append(("lines, after", [after, "eval"], "lines.jsonl"))
cases.append(("workspace, after", [after, "eval", "--workspace", "examples/workspace.json"],
              "events.jsonl"))

def cpu_per_line(argv, input_name):
    """The child's user+system CPU time (wait4's rusage) per input line, in microseconds."""
    with open(os.path.join(work, input_name), "rb") as stdin:
        child = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        sys.exit(f"{argv} failed: status {status}")
    return (usage.ru_utime + usage.ru_stime) / lines * 1e6

results = {name: [] for name, _, _ in cases}
for run in range(runs):
    for name, argv, input_name in cases:
        results[name].append(cpu_per_line(argv, input_name))
    print(f"run {run + 1}: " + ", ".join(f"{name} {results[name][-1]:.2f} µs/line"
                                       for name, _, _ in cases), flush=True)
medians = {name: statistics.median(values) for name, values in results.items()}
for name, median in medians.items():
    print(f"median {name}: {median:.2f} µs/line")
if before:
    ratio = medians["lines, after"] / medians["lines, before"]
    print(f"ratio after/before (lines): {ratio:.3f} ({1 / ratio:.1f}x less CPU)")
PY
