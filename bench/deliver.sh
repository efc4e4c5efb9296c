#!/usr/bin/env bash
# End-to-end delivery benchmark of `junction serve` (see BENCHMARKS.md, "End-to-end delivery").
#
# Builds the release binary and the load tool (bench/src/bin/deliver_load.rs), then RUNS times
# each scenario of SCENARIOS. Every scenario starts a fresh server (the tool spawns it, with the
# sample workspace's ChartMogul webhook pointing at the tool's in-process sink, which answers
# 200 `{}`) on a temporary data directory with the default settings:
#   max     identify events in /v1/batch requests of 100 over CONNECTIONS keep-alive connections
#           as fast as they are answered, for DURATION s after WARMUP s: events acknowledged/s,
#           deliveries/s over the same window, the backlog left, ingest-to-receipt latency;
#   rate    the same at a fixed RATE events/s: p50/p99 ingest-to-receipt latency;
#   target  the same at TARGET_RATE events/s (the issue's 20,000 deliveries/s): does delivery
#           keep up (backlog, latency)?
#   drain   JOBS pending jobs written straight into a fresh store, then the server started on it:
#           drain rate, RSS over time (min/median/max, first vs last third), VmHWM.
# Each run prints one line; the end prints the medians. Everything runs on 127.0.0.1: the sink
# and the load generator share the machine with the server, and their CPU is reported.
#
#   bench/deliver.sh                          # 3 runs of every scenario (about 15 minutes)
#   RUNS=1 SCENARIOS="rate drain" JOBS=200000 bench/deliver.sh
#   NO_BUILD=1 bench/deliver.sh               # measure the binaries already built
#   JUNCTION=/path/to/junction bench/deliver.sh
#   RESULTS=dir bench/deliver.sh              # keep every run's JSON line in dir/SCENARIO.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-4}
RATE=${RATE:-10000}
TARGET_RATE=${TARGET_RATE:-20000}
JOBS=${JOBS:-1000000}
SCENARIOS=${SCENARIOS:-"max rate target drain"}
target_dir=${CARGO_TARGET_DIR:-target}

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p junction-cli -p junction-bench --bin junction --bin deliver-load
fi
junction=${JUNCTION:-$target_dir/release/junction}
load="$target_dir/release/deliver-load"
results=${RESULTS:-$(mktemp -d)}
mkdir -p "$results"

cpu=$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n 1)
echo "machine: $(nproc) cores, $cpu; $(uname -sr)"
echo "runs: $RUNS; scenarios: $SCENARIOS; $CONNECTIONS connections, ${DURATION} s after" \
    "${WARMUP} s warm-up; rate $RATE and $TARGET_RATE events/s; drain of $JOBS jobs"
echo "results: $results"

# summary FILE: one line for the last run in FILE (or, with --medians, the medians of all runs).
summary() {
    python3 - "$@" <<'PY'
import json, statistics, sys
path, medians = sys.argv[1], "--medians" in sys.argv
runs = [json.loads(line) for line in open(path) if line.strip()]
if not medians:
    runs = runs[-1:]
med = lambda xs: statistics.median(xs) if xs else 0
def get(run, *keys):
    for key in keys:
        run = run[key]
    return run
def m(*keys):
    return med([get(r, *keys) for r in runs])
cpu = lambda r: "junction %.0f%% (%s), sink %.0f%%, generator %.0f%%" % (
    r["cpu"]["junction_pct"],
    ", ".join("%s %.0f%%" % (t["name"], t["cpu_pct"]) for t in r["cpu"]["junction_threads"]),
    r["cpu"]["sink_pct"], r["cpu"]["generator_pct"])
load = "load %s" % "/".join("%.1f" % r["loadavg_before"][0] for r in runs)
prefix = "median of %d:" % len(runs) if medians else "run:"
if runs[0]["mode"] == "live":
    e = lambda *k: m("events", *k)
    print("%s %s: acked %.0f/s, delivered %.0f/s, backlog at end %.0f, latency p50 %.1f ms "
          "p99 %.1f ms max %.1f ms, duplicates %.0f, undelivered %.0f, refused requests %.0f, "
          "VmHWM %.1f MiB, RSS %.1f..%.1f MiB; %s"
          % (prefix, runs[0]["target_events_per_sec"] and "%.0f events/s" % runs[0]["target_events_per_sec"] or "max rate",
             e("acked_per_sec"), e("delivered_per_sec"), e("backlog_at_end"),
             e("latency_ms", "p50"), e("latency_ms", "p99"), e("latency_ms", "max"),
             e("duplicates"), e("undelivered"), e("refused_requests"),
             m("junction", "vmhwm_mib"), m("junction", "rss_mib", "min"), m("junction", "rss_mib", "max"),
             load))
else:
    print("%s drain of %d jobs: %.0f deliveries/s (%.1f s), duplicates %.0f, RSS min/median/max "
          "%.1f/%.1f/%.1f MiB, first third median %.1f MiB, last third median %.1f MiB, "
          "VmHWM %.1f MiB; %s"
          % (prefix, runs[0]["jobs"], m("delivered_per_sec"), m("drain_secs"), m("duplicates"),
             m("junction", "rss_mib", "min"), m("junction", "rss_mib", "median"),
             m("junction", "rss_mib", "max"), m("junction", "rss_first_third_mib", "median"),
             m("junction", "rss_last_third_mib", "median"), m("junction", "vmhwm_mib"), load))
for r in runs if not medians else []:
    print("     cpu: " + cpu(r))
PY
}

for run in $(seq "$RUNS"); do
    for scenario in $SCENARIOS; do
        case $scenario in
            max) args=(live) ;;
            rate) args=(live --rate "$RATE") ;;
            target) args=(live --rate "$TARGET_RATE") ;;
            drain) args=(drain --jobs "$JOBS") ;;
            *) echo "unknown scenario $scenario" >&2; exit 2 ;;
        esac
        if [[ $scenario != drain ]]; then
            args+=(--connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP")
        fi
        echo "run $run, $scenario:"
        "$load" "${args[@]}" --junction "$junction" 2> >(grep -v 'pre-filled' >&2) \
            >>"$results/$scenario.jsonl"
        summary "$results/$scenario.jsonl"
    done
done

echo
for scenario in $SCENARIOS; do
    summary "$results/$scenario.jsonl" --medians
done
