#!/usr/bin/env bash
# Sourced by bench/ingest.sh and bench/deliver.sh for their clustered runs (STORE_URL set): a
# fresh PostgreSQL database per run, and PostgreSQL's CPU time. STORE_URL names the database to
# create (postgres://USER@HOST:PORT/NAME); it must not exist yet, so that a benchmark never
# measures, nor drops, a database it did not create. CREATE and DROP go through the server's
# `postgres` database with psql, as the cluster tests' helper does.

pg_database=""
pg_admin_url=""
pg_created=""

# pg_check: validates STORE_URL and NODES; sets pg_database and pg_admin_url.
pg_check() {
    if [[ -z "${STORE_URL:-}" ]]; then
        if ((NODES > 1)); then
            echo "NODES=$NODES needs STORE_URL=postgres://…/NAME: SQLite files are not shared" >&2
            exit 2
        fi
        return 0
    fi
    command -v psql >/dev/null || { echo "STORE_URL needs psql (PostgreSQL's client)" >&2; exit 2; }
    local rest=${STORE_URL#*://}
    local path=${rest#*/}
    pg_database=${path%%\?*}
    # Only plain names: the name goes into SQL unquoted.
    if [[ "$rest" == "$path" || ! "$pg_database" =~ ^[a-z_][a-z0-9_]*$ ]]; then
        echo "STORE_URL must end with a database name of [a-z0-9_] (not '$pg_database')" >&2
        exit 2
    fi
    pg_admin_url="${STORE_URL%%://*}://${rest%%/*}/postgres"
}

# pg_create: creates the run's database; fails if it exists (a run that died left it: drop it).
pg_create() {
    [[ -n "$pg_database" ]] || return 0
    if ! psql "$pg_admin_url" -Atqc "CREATE DATABASE $pg_database" >/dev/null; then
        echo "cannot create the database $pg_database of STORE_URL (it must not exist yet)" >&2
        exit 1
    fi
    pg_created=1
}

# pg_drop: drops the run's database if this script created it.
pg_drop() {
    if [[ -n "$pg_created" ]]; then
        psql "$pg_admin_url" -Atqc "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" >/dev/null || true
    fi
    pg_created=""
}

# pg_ticks: user + system CPU time of every process called postgres on this machine (backends,
# WAL writer, checkpointer…, other users of the server included), in clock ticks.
pg_ticks() {
    local total=0 pid ticks
    for pid in $(pgrep -x postgres 2>/dev/null); do
        ticks=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null) || continue
        total=$((total + ${ticks:-0}))
    done
    echo "$total"
}
