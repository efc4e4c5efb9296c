#!/usr/bin/env bash
# Crash benchmark of `junction serve` (see BENCHMARKS.md, "Crashes"): TRIALS times, identify
# events at RATE events/s for DURATION s through /v1/batch into a fresh server whose ChartMogul
# webhook is the load tool's sink, SIGKILL while deliveries are in full flow, a restart on the
# same data (lease_secs 5, so that the jobs the dead process held are due again soon), and a wait
# for every acknowledged event. Prints one line per trial (acknowledged, lost, delivered twice,
# backlog at the kill) and the totals: nothing acknowledged may be lost; the duplicates are the
# deliveries answered 2xx whose completion was not yet durable (bounded by the engine's
# max_unrecorded, 1,000, plus the requests in flight).
#
#   bench/crash.sh                         # 20 trials at 8,000 events/s, 5 s each
#   TRIALS=5 RATE=10000 bench/crash.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TRIALS=${TRIALS:-20}
RATE=${RATE:-8000}
DURATION=${DURATION:-5}
target_dir=${CARGO_TARGET_DIR:-target}

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p junction-cli -p junction-bench --bin junction --bin deliver-load
fi
config=$(mktemp)
trap 'rm -f "$config"' EXIT
printf '[delivery]\ntimeout_secs = 2\nlease_secs = 5\n' >"$config"

for trial in $(seq "$TRIALS"); do
    "$target_dir/release/deliver-load" crash --junction "$target_dir/release/junction" \
        --config "$config" --rate "$RATE" --duration "$DURATION" --warmup 1
done | python3 -c '
import json, statistics, sys
runs = []
for line in sys.stdin:
    run = json.loads(line)
    e = run["events"]
    runs.append((e["acked"], e["undelivered"], e["duplicates"], run["backlog_at_kill"]))
    print("trial %d: acknowledged %d, lost %d, delivered twice %d, backlog at the kill %d"
          % ((len(runs),) + runs[-1]))
dups = [r[2] for r in runs]
print("%d trials: %d events acknowledged, %d lost; delivered twice: median %s, max %d"
      % (len(runs), sum(r[0] for r in runs), sum(r[1] for r in runs),
         statistics.median(dups), max(dups)))
sys.exit(1 if sum(r[1] for r in runs) else 0)
'
