#!/usr/bin/env bash
# The PostgreSQL engine draining a backlog (see BENCHMARKS.md, "PostgreSQL's work per event"):
# a fresh database (STORE_URL names it; it must not exist), JOBS due jobs on one lane written
# straight into it, then drained through the engine's claims and completions by WORKERS claimers
# (standing for nodes) taking CLAIM jobs at a time, at most MAX_SECS. Prints the claim latency
# per SAMPLE_SECS window from start to end, and PostgreSQL's work per delivered job.
#
#   STORE_URL=postgres://postgres@127.0.0.1:5432/junction_drain JOBS=5000000 bench/pg-drain.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/postgres.sh
source bench/postgres.sh

JOBS=${JOBS:-1000000}
WORKERS=${WORKERS:-3}
CLAIM=${CLAIM:-200}
SAMPLE_SECS=${SAMPLE_SECS:-10}
MAX_SECS=${MAX_SECS:-3600}
NODES=1
pg_check
[[ -n "$pg_database" ]] || { echo "STORE_URL=postgres://…/NAME is required" >&2; exit 2; }
target_dir=${CARGO_TARGET_DIR:-target}
if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p junction-bench --bin pg-drain
fi
drain=${PG_DRAIN:-$target_dir/release/pg-drain}
out=${OUT:-$(mktemp)}
trap pg_drop EXIT
pg_create
psql "$STORE_URL" -Atqc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
"$drain" --store-url "$STORE_URL" --jobs "$JOBS" --workers "$WORKERS" --claim "$CLAIM" \
    --sample-secs "$SAMPLE_SECS" --max-secs "$MAX_SECS" >"$out"
pg_drop
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["per_job"]
print("drain of %d jobs, %d workers claiming %d: %d delivered in %.0f s (%.0f/s), %d left; per job: "
      "%.2f statements, %.2f rows, %.0f B WAL (statements) / %.0f B (server), %.0f µs executing, "
      "%.0f µs CPU in the database's backends, %.0f µs in all PostgreSQL processes"
      % (r["jobs"], r["workers"], r["claim_limit"], r["delivered"], r["drain_secs"],
         r["delivered_per_sec"], r["remaining"], p["statements"], p["rows"], p["wal_bytes"],
         p["wal_bytes_server"], p["exec_us"], p["backend_cpu_us"], p["postgres_cpu_us"]))
for w in r["claims_over_time"]:
    c = w["claim_ms"]
    print("  %5d s: %6.0f jobs/s, %5d claims, claim p50 %7.2f ms, p99 %7.2f ms, max %7.2f ms"
          % (w["from_secs"], w["jobs_per_sec"], w["claims"], c["p50"], c["p99"], c["max"]))
for s in sorted(r["statements"], key=lambda s: -s["exec_us_per_job"])[:10]:
    print("  %.3f calls %.2f rows %.0f B WAL %.0f µs per job: %s"
          % (s["calls_per_job"], s["rows_per_job"], s["wal_bytes_per_job"],
             s["exec_us_per_job"], s["query"][:110]))
print("results: " + sys.argv[1])
PY
