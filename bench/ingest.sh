#!/usr/bin/env bash
# Ingestion benchmark of `junction serve` (see BENCHMARKS.md, section "Ingestion").
#
# Builds the release binary and the load generator (bench/src/bin/ingest_load.rs), then RUNS
# times: starts a fresh server on a temporary data directory with the default settings (durable
# commits, the sample workspace), measures
#   (a) throughput: CONNECTIONS keep-alive connections sending /v1/batch requests of 100
#       realistic identify events as fast as they are answered, for DURATION seconds;
#   (b) latency: the same requests at a fixed RATE events/s on a new server, p50/p99 of the time
#       to answer (counted from when each request was due);
# and prints each run's figures and the medians. Everything runs on 127.0.0.1; the load
# generator shares the machine with the server.
#
# Clustered: with STORE_URL=postgres://USER@HOST:PORT/NAME each measurement creates the database
# NAME (it must not exist), starts NODES servers on it (each with its own data directory and
# ports), spreads the connections over them in turn, then stops them and drops NAME. The
# connection counts are per node (CONNECTIONS and RATE_CONNECTIONS default to 8 and 4 per node),
# so each node gets what one node gets alone; PostgreSQL's CPU per event is reported beside the
# servers' (every process called postgres on the machine).
#
#   bench/ingest.sh                      # 5 runs, 10 s each
#   RUNS=3 DURATION=5 bench/ingest.sh
#   NO_BUILD=1 bench/ingest.sh           # measure the binaries already built
#   JUNCTION=/path/to/junction bench/ingest.sh   # measure another build of the server
#   NODES=3 STORE_URL=postgres://postgres@127.0.0.1:5432/junction_bench bench/ingest.sh
#   AUDIENCES=100 bench/ingest.sh        # with 100 audiences and computed traits active
#
# With AUDIENCES=N, N definitions are created through the admin API before each measurement:
# half read the identify's traits (`trait('logins') > i`, recomputed on every identify), half
# count a track event the load never sends (`event('Order Completed').within(i days)`); the
# profile worker takes in every event, resolving its identities and updating the states.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/postgres.sh
source bench/postgres.sh

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
NODES=${NODES:-1}
# Eight senders per node: with group commit, throughput is events in flight / commit latency, so
# four connections of 100 events measure the generator's concurrency more than the server.
CONNECTIONS=${CONNECTIONS:-$((8 * NODES))}
RATE=${RATE:-10000}
AUDIENCES=${AUDIENCES:-0}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-$((4 * NODES))}
pg_check
target_dir=${CARGO_TARGET_DIR:-target}

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p junction-cli -p junction-bench --bin junction --bin ingest-load
fi
junction=${JUNCTION:-$target_dir/release/junction}
load="$target_dir/release/ingest-load"

# The sample workspace with its webhook at webhook.invalid, which never answers, as when these
# figures were first taken: since the sample points at the admin listener's sandbox (c2ace50),
# serving it as is would measure delivery too (each job sent to a port nothing listens on, or to
# the sandbox), not ingestion.
workspace_dir=$(mktemp -d)
workspace=${WORKSPACE:-$workspace_dir/workspace.json}
if [[ -z "${WORKSPACE:-}" ]]; then
    python3 - examples/workspace.json "$workspace" <<'PY'
import json, sys
workspace = json.load(open(sys.argv[1]))
for destination in workspace["destinations"]:
    destination["settings"]["chartmogul_webhook_url"] = "https://webhook.invalid/ingest-benchmark"
json.dump(workspace, open(sys.argv[2], "w"), indent=2)
PY
fi

server_pids=()
data_dirs=()
cleanup() {
    local pid dir
    for pid in "${server_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${server_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for dir in "${data_dirs[@]}"; do
        rm -rf "$dir"
    done
    server_pids=()
    data_dirs=()
    pg_drop
}
trap 'cleanup; rm -rf "$workspace_dir"' EXIT

# Starts NODES servers, each on a fresh data directory and free ports (on a fresh database when
# STORE_URL is set); sets server_pids and addresses (comma-separated).
start_servers() {
    pg_create
    local node data_dir address
    addresses=""
    for node in $(seq "$NODES"); do
        data_dir=$(mktemp -d)
        data_dirs+=("$data_dir")
        # An empty JUNCTION_STORE_URL is the embedded SQLite store.
        JUNCTION_DATA_DIR="$data_dir" JUNCTION_TRACKING_ADDR=127.0.0.1:0 \
            JUNCTION_ADMIN_ADDR=127.0.0.1:0 JUNCTION_LOG=warn \
            JUNCTION_STORE_URL="${STORE_URL:-}" JUNCTION_WORKSPACE="$workspace" \
            "$junction" serve >"$data_dir/stdout" 2>"$data_dir/stderr" &
        server_pids+=($!)
        address=""
        for _ in $(seq 300); do
            address=$(sed -nE 's|.*Tracking API: http://([0-9.:]+).*|\1|p' "$data_dir/stdout")
            [[ -n "$address" ]] && break
            sleep 0.1
        done
        if [[ -z "$address" ]]; then
            echo "junction serve (node $node) did not start:" >&2
            cat "$data_dir/stderr" >&2
            exit 1
        fi
        addresses+="${addresses:+,}$address"
    done
    create_audiences "$(sed -nE 's|.*Admin API: +(http://[0-9.:]+)/api/v1.*|\1|p' "$data_dir/stdout")"
}

# Creates AUDIENCES definitions through the admin API at $1.
create_audiences() {
    local admin_url=$1 i query kind
    for i in $(seq "$AUDIENCES"); do
        if ((i % 2)); then
            query="trait('logins') > $i"
            kind=audience
        else
            query="event('Order Completed').within($i days).count()"
            kind=trait
        fi
        curl -sS --fail-with-body -X POST "$admin_url/api/v1/audiences" \
            -H 'content-type: application/json' \
            -d "{\"key\": \"bench_$i\", \"kind\": \"$kind\", \"query\": \"$query\"}" >/dev/null
    done
}

# The servers' user + system CPU time so far, in clock ticks (1/100 s), summed over the nodes.
server_ticks() {
    local total=0 pid
    for pid in "${server_pids[@]}"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

field() { # field NAME JSON -> the number after "NAME":
    sed -nE "s/.*\"$1\":([0-9.]+).*/\1/p" <<<"$2"
}

median() { # median of the arguments
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

cpu=$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n 1)
echo "machine: $(nproc) cores, $cpu; $(uname -sr)"
echo "audiences and computed traits: $AUDIENCES"
echo "runs: $RUNS; throughput: $CONNECTIONS connections, ${DURATION} s after ${WARMUP} s warm-up;" \
    "latency: $RATE events/s over $RATE_CONNECTIONS connections"
if [[ -n "$pg_database" ]]; then
    echo "store: PostgreSQL ($(psql "$pg_admin_url" -Atqc 'SHOW server_version')), database" \
        "$pg_database created and dropped per measurement; $NODES node(s)"
else
    echo "store: SQLite; 1 node"
fi

throughputs=()
cpu_per_event=()
pg_per_event=()
p50s=()
p99s=()
for run in $(seq "$RUNS"); do
    start_servers
    before=$(server_ticks)
    pg_before=$(pg_ticks)
    result=$("$load" --addr "$addresses" --connections "$CONNECTIONS" --duration "$DURATION" \
        --warmup "$WARMUP")
    after=$(server_ticks)
    pg_after=$(pg_ticks)
    cleanup
    events=$(field events_with_warmup "$result")
    rate=$(field events_per_sec "$result")
    refused=$(field refused_requests "$result")
    micros=$(awk -v t=$((after - before)) -v e="$events" 'BEGIN {printf "%.1f", e ? t * 10000 / e : 0}')
    pg_micros=$(awk -v t=$((pg_after - pg_before)) -v e="$events" 'BEGIN {printf "%.1f", e ? t * 10000 / e : 0}')
    throughputs+=("$rate")
    cpu_per_event+=("$micros")
    pg_per_event+=("$pg_micros")
    pg_note=""
    if [[ -n "$pg_database" ]]; then
        pg_note=", PostgreSQL CPU $pg_micros µs/event"
    fi
    tp_p50=$(sed -nE 's/.*"p50":([0-9.]+).*/\1/p' <<<"$result")
    tp_p99=$(sed -nE 's/.*"p99":([0-9.]+).*/\1/p' <<<"$result")
    echo "run $run throughput: $rate events/s, server CPU $micros µs/event$pg_note," \
        "answer p50 $tp_p50 ms p99 $tp_p99 ms, refused requests $refused," \
        "generator CPU $(field generator_cpu_secs "$result") s"

    start_servers
    result=$("$load" --addr "$addresses" --connections "$RATE_CONNECTIONS" --duration "$DURATION" \
        --warmup "$WARMUP" --rate "$RATE")
    cleanup
    p50=$(sed -nE 's/.*"p50":([0-9.]+).*/\1/p' <<<"$result")
    p99=$(sed -nE 's/.*"p99":([0-9.]+).*/\1/p' <<<"$result")
    max=$(sed -nE 's/.*"max":([0-9.]+).*/\1/p' <<<"$result")
    p50s+=("$p50")
    p99s+=("$p99")
    echo "run $run latency at $(field events_per_sec "$result") events/s: p50 $p50 ms, p99 $p99 ms," \
        "max $max ms, refused requests $(field refused_requests "$result")"
done

pg_median=""
if [[ -n "$pg_database" ]]; then
    pg_median=", PostgreSQL CPU $(median "${pg_per_event[@]}") µs/event"
fi
echo "median throughput: $(median "${throughputs[@]}") events/s with $NODES node(s)" \
    "(server CPU $(median "${cpu_per_event[@]}") µs/event$pg_median)"
echo "median latency at $RATE events/s: p50 $(median "${p50s[@]}") ms, p99 $(median "${p99s[@]}") ms"
