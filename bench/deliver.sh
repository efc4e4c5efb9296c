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
# Clustered: with STORE_URL=postgres://USER@HOST:PORT/NAME every run of a live scenario (max,
# rate, target) creates the database NAME (it must not exist), the tool starts NODES servers on
# it and spreads its connections over them in turn, and the database is dropped after the run.
# CONNECTIONS defaults to 4 per node. CPU and memory are summed over the nodes (each node's CPU
# is shown too), and PostgreSQL's CPU is reported: all its processes, and the backends of NAME.
# drain pre-fills a SQLite file, so it is not run against PostgreSQL. The lane's concurrency
# limit (default 20) is one limit for the whole cluster: MAX_CONCURRENCY sets it, to tell it
# apart from the other limits.
#
#   bench/deliver.sh                          # 3 runs of every scenario (about 15 minutes)
#   RUNS=1 SCENARIOS="rate drain" JOBS=200000 bench/deliver.sh
#   NO_BUILD=1 bench/deliver.sh               # measure the binaries already built
#   JUNCTION=/path/to/junction bench/deliver.sh
#   RESULTS=dir bench/deliver.sh              # keep every run's JSON line in dir/SCENARIO.jsonl
#   NODES=3 STORE_URL=postgres://postgres@127.0.0.1:5432/junction_bench SCENARIOS=max bench/deliver.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/postgres.sh
source bench/postgres.sh

RUNS=${RUNS:-3}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
NODES=${NODES:-1}
CONNECTIONS=${CONNECTIONS:-$((4 * NODES))}
RATE=${RATE:-10000}
TARGET_RATE=${TARGET_RATE:-20000}
JOBS=${JOBS:-1000000}
pg_check
if [[ -n "$pg_database" ]]; then
    SCENARIOS=${SCENARIOS:-"max rate target"}
    if [[ " $SCENARIOS " == *" drain "* ]]; then
        echo "drain pre-fills a SQLite file: not with STORE_URL" >&2
        exit 2
    fi
else
    SCENARIOS=${SCENARIOS:-"max rate target drain"}
fi
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
echo "results: $results; lane limit ${MAX_CONCURRENCY:-the default}"
if [[ -n "$pg_database" ]]; then
    echo "store: PostgreSQL ($(psql "$pg_admin_url" -Atqc 'SHOW server_version')), database" \
        "$pg_database created and dropped per run; $NODES node(s)"
else
    echo "store: SQLite; 1 node"
fi
trap pg_drop EXIT

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
def cpu(r):
    c = r["cpu"]
    nodes = c.get("junction_node_pct", [])
    line = "junction %.0f%%%s (%s), sink %.0f%%, generator %.0f%%" % (
        c["junction_pct"],
        " = " + " + ".join("%.0f%%" % n for n in nodes) if len(nodes) > 1 else "",
        ", ".join("%s %.0f%%" % (t["name"], t["cpu_pct"]) for t in c["junction_threads"]),
        c["sink_pct"], c["generator_pct"])
    if "postgres_pct" in c:
        line += ", postgres %.0f%% (its backends for the database %.0f%%)" % (
            c["postgres_pct"], c["postgres_database_pct"])
    return line
load = "load %s" % "/".join("%.1f" % r["loadavg_before"][0] for r in runs)
prefix = "median of %d:" % len(runs) if medians else "run:"
if runs[0].get("store") == "postgres":
    prefix += " %d node(s) on PostgreSQL," % runs[0]["nodes"]
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
        if [[ -n "${MAX_CONCURRENCY:-}" ]]; then
            args+=(--max-concurrency "$MAX_CONCURRENCY")
        fi
        if [[ -n "$pg_database" ]]; then
            pg_create
            args+=(--nodes "$NODES" --store-url "$STORE_URL")
        fi
        echo "run $run, $scenario:"
        "$load" "${args[@]}" --junction "$junction" 2> >(grep -v 'pre-filled' >&2) \
            >>"$results/$scenario.jsonl"
        pg_drop
        summary "$results/$scenario.jsonl"
    done
done

echo
for scenario in $SCENARIOS; do
    summary "$results/$scenario.jsonl" --medians
done
