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
#   bench/ingest.sh                      # 5 runs, 10 s each
#   RUNS=3 DURATION=5 bench/ingest.sh
#   NO_BUILD=1 bench/ingest.sh           # measure the binaries already built
#   JUNCTION=/path/to/junction bench/ingest.sh   # measure another build of the server
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
# Eight senders: with group commit, throughput is events in flight / commit latency, so four
# connections of 100 events measure the generator's concurrency more than the server.
CONNECTIONS=${CONNECTIONS:-8}
RATE=${RATE:-10000}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-4}
target_dir=${CARGO_TARGET_DIR:-target}

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p junction-cli -p junction-bench --bin junction --bin ingest-load
fi
junction=${JUNCTION:-$target_dir/release/junction}
load="$target_dir/release/ingest-load"

server_pid=""
data_dir=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -n "$data_dir" ]]; then
        rm -rf "$data_dir"
    fi
    server_pid=""
    data_dir=""
}
trap cleanup EXIT

# Starts a server on a fresh data directory and a free port; sets server_pid and address.
start_server() {
    data_dir=$(mktemp -d)
    JUNCTION_DATA_DIR="$data_dir" JUNCTION_TRACKING_ADDR=127.0.0.1:0 JUNCTION_LOG=warn \
        "$junction" serve >"$data_dir/stdout" 2>"$data_dir/stderr" &
    server_pid=$!
    address=""
    for _ in $(seq 300); do
        address=$(sed -nE 's|.*Tracking API: http://([0-9.:]+).*|\1|p' "$data_dir/stdout")
        [[ -n "$address" ]] && return 0
        sleep 0.1
    done
    echo "junction serve did not start:" >&2
    cat "$data_dir/stderr" >&2
    exit 1
}

# The server's user + system CPU time so far, in clock ticks (1/100 s).
server_ticks() {
    awk '{print $14 + $15}' "/proc/$server_pid/stat"
}

field() { # field NAME JSON -> the number after "NAME":
    sed -nE "s/.*\"$1\":([0-9.]+).*/\1/p" <<<"$2"
}

median() { # median of the arguments
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

cpu=$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n 1)
echo "machine: $(nproc) cores, $cpu; $(uname -sr)"
echo "runs: $RUNS; throughput: $CONNECTIONS connections, ${DURATION} s after ${WARMUP} s warm-up;" \
    "latency: $RATE events/s over $RATE_CONNECTIONS connections"

throughputs=()
cpu_per_event=()
p50s=()
p99s=()
for run in $(seq "$RUNS"); do
    start_server
    before=$(server_ticks)
    result=$("$load" --addr "$address" --connections "$CONNECTIONS" --duration "$DURATION" \
        --warmup "$WARMUP")
    after=$(server_ticks)
    cleanup
    events=$(field events_with_warmup "$result")
    rate=$(field events_per_sec "$result")
    refused=$(field refused_requests "$result")
    micros=$(awk -v t=$((after - before)) -v e="$events" 'BEGIN {printf "%.1f", e ? t * 10000 / e : 0}')
    throughputs+=("$rate")
    cpu_per_event+=("$micros")
    tp_p50=$(sed -nE 's/.*"p50":([0-9.]+).*/\1/p' <<<"$result")
    tp_p99=$(sed -nE 's/.*"p99":([0-9.]+).*/\1/p' <<<"$result")
    echo "run $run throughput: $rate events/s, server CPU $micros µs/event," \
        "answer p50 $tp_p50 ms p99 $tp_p99 ms, refused requests $refused," \
        "generator CPU $(field generator_cpu_secs "$result") s"

    start_server
    result=$("$load" --addr "$address" --connections "$RATE_CONNECTIONS" --duration "$DURATION" \
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

echo "median throughput: $(median "${throughputs[@]}") events/s" \
    "(server CPU $(median "${cpu_per_event[@]}") µs/event)"
echo "median latency at $RATE events/s: p50 $(median "${p50s[@]}") ms, p99 $(median "${p99s[@]}") ms"
