#!/usr/bin/env bash
# PostgreSQL's work per event for 1, 2 and 3 nodes (see BENCHMARKS.md, "PostgreSQL's work per
# event"). For each node count in NODE_COUNTS: a fresh database (STORE_URL names it; it must not
# exist), `deliver-load live` at a fixed RATE events/s for DURATION s after WARMUP s, the nodes
# spread over 4 connections each, every event delivered before the run ends; then, from that
# database's `pg_stat_statements` (reset when it is created) and the server's `pg_stat_wal` and
# `/proc`, what PostgreSQL did per event (each event is ingested once and delivered once):
# statements, rows, WAL bytes, execution time, split into ingest, delivery and shared statements
# (transaction control, rollups, counters, notifications), and CPU time over the measured window.
#
# Needs `shared_preload_libraries = 'pg_stat_statements'` on the server and the extension in
# `template1` (new databases inherit it). The server's WAL and CPU count every database's work:
# run it on a quiet server.
#
#   STORE_URL=postgres://postgres@127.0.0.1:5432/junction_pgwork bench/pg-work.sh
#   NODE_COUNTS="1 3" RATE=3000 NO_BUILD=1 JUNCTION=/path/to/junction STORE_URL=… bench/pg-work.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/postgres.sh
source bench/postgres.sh

NODE_COUNTS=${NODE_COUNTS:-"1 2 3"}
RATE=${RATE:-2000}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-3}
NODES=1
pg_check
[[ -n "$pg_database" ]] || { echo "STORE_URL=postgres://…/NAME is required" >&2; exit 2; }
target_dir=${CARGO_TARGET_DIR:-target}
if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p junction-cli -p junction-bench --bin junction --bin deliver-load
fi
junction=${JUNCTION:-$target_dir/release/junction}
load=${DELIVER_LOAD:-$target_dir/release/deliver-load}
results=${RESULTS:-$(mktemp -d)}
mkdir -p "$results"
echo "machine: $(nproc) cores; PostgreSQL $(psql "$pg_admin_url" -Atqc 'SHOW server_version');" \
    "$RATE events/s for ${DURATION} s after ${WARMUP} s; binary $junction; results $results"
trap pg_drop EXIT

for nodes in $NODE_COUNTS; do
    pg_create
    psql "$STORE_URL" -Atq -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
        -c "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database
                                                WHERE datname = current_database()), 0)" \
        >/dev/null
    wal_before=$(psql "$pg_admin_url" -Atqc "SELECT wal_bytes FROM pg_stat_wal")
    "$load" live --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
        --connections $((4 * nodes)) --nodes "$nodes" --store-url "$STORE_URL" \
        --junction "$junction" >"$results/live-$nodes.json"
    wal_after=$(psql "$pg_admin_url" -Atqc "SELECT wal_bytes FROM pg_stat_wal")
    psql "$STORE_URL" -Atq -c "SELECT json_build_object(
        'events', (SELECT sum(events) FROM counters),
        'delivered', (SELECT count(*) FROM job_transitions WHERE state = 'succeeded'),
        'wal_bytes', $wal_after - $wal_before,
        'statements', (SELECT json_agg(json_build_object('query', query, 'calls', calls,
                           'rows', rows, 'wal_bytes', wal_bytes, 'exec_ms', total_exec_time))
                       FROM pg_stat_statements
                       WHERE dbid = (SELECT oid FROM pg_database
                                     WHERE datname = current_database())))" \
        >"$results/pg-$nodes.json"
    pg_drop
    python3 - "$results/live-$nodes.json" "$results/pg-$nodes.json" "$nodes" <<'PY'
import json, re, sys
live, pg, nodes = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
events = float(pg["events"] or 0) or 1.0

def kind(query):
    q = " ".join(query.split())
    if re.search(r"pg_stat_statements|CREATE EXTENSION", q):
        return None
    if re.search(r"junction_claim|FOR UPDATE SKIP LOCKED|job_attempts|FROM job_queue q|"
                 r"DELETE FROM job_queue|UPDATE job_queue|dead_letter|lane_control|lane_shares|"
                 r"WITH RECURSIVE lane|junction_lane_first", q):
        return "delivery"
    if re.search(r"^(BEGIN|COMMIT|ROLLBACK)|overview_|counters|pg_notify", q):
        return "shared"
    return "ingest"

totals = {}
for s in pg["statements"] or []:
    k = kind(s["query"])
    if k is None:
        continue
    t = totals.setdefault(k, [0.0, 0.0, 0.0, 0.0])
    for i, key in enumerate(["calls", "rows", "wal_bytes", "exec_ms"]):
        t[i] += float(s[key])
cpu = live["cpu"]
window_events = live["events"]["acked_per_sec"] or 1
# CPU over the measured window (a backend's time goes with it when its node stops), per event
# acknowledged in it (delivery keeps up at a fixed rate).
print("%s node(s): %d events, %d delivered, acked %.0f/s delivered %.0f/s, p50 %.0f ms; "
      "PostgreSQL CPU per event %.0f µs (all its processes), %.0f µs (the database's backends); "
      "WAL %.0f B/event (server)"
      % (nodes, events, pg["delivered"], live["events"]["acked_per_sec"],
         live["events"]["delivered_per_sec"], live["events"]["latency_ms"]["p50"],
         cpu.get("postgres_pct", 0) / 100 * 1e6 / window_events,
         cpu.get("postgres_database_pct", 0) / 100 * 1e6 / window_events,
         pg["wal_bytes"] / events))
for k in ["ingest", "delivery", "shared"]:
    c, r, w, e = totals.get(k, [0, 0, 0, 0])
    print("   %-8s statements %.2f, rows %.2f, WAL %.0f B, exec %.0f µs per event"
          % (k, c / events, r / events, w / events, e * 1000 / events))
top = sorted(pg["statements"] or [], key=lambda s: -s["exec_ms"])[:8]
for s in top:
    print("   top: %.3f calls, %.0f µs, %.0f B WAL /event: %s"
          % (s["calls"] / events, s["exec_ms"] * 1000 / events, s["wal_bytes"] / events,
             " ".join(s["query"].split())[:100]))
PY
done
