#!/usr/bin/env bash
# CPU per delivered event, end to end (BENCHMARKS.md, "CPU per delivered event (issue 15)").
#
# Builds the release binary and the load tool, then RUNS times: a fresh `junction serve` (default
# settings, the sample workspace's webhook pointing at the tool's sink), TOTAL identify events in
# through /v1/batch (100 per request, CONNECTIONS keep-alive connections, as fast as answered),
# and the wait for the last delivery. Each run prints the server process's user+system CPU from
# the first request to the last delivery divided by the deliveries (from /proc/PID/stat, so
# threads that ended count too), the sink's CPU per delivery apart, and the server's VmHWM; the
# end prints the medians.
#
# To compare binaries back to back, give several in BINARIES: the runs alternate between them
# (A B A B …), so that the machine's load falls on both alike, and the medians and the ratio to
# the first are printed per binary.
#
#   bench/cpu-per-event.sh                                  # 5 runs of 200,000 events
#   RUNS=3 TOTAL=20000 bench/cpu-per-event.sh
#   NO_BUILD=1 BINARIES="/tmp/junction-before target/release/junction" bench/cpu-per-event.sh
#   RESULTS=dir bench/cpu-per-event.sh                      # keep each run's JSON line
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
TOTAL=${TOTAL:-200000}
CONNECTIONS=${CONNECTIONS:-4}
target_dir=${CARGO_TARGET_DIR:-target}
if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release --quiet -p junction-cli -p junction-bench --bin junction --bin deliver-load
fi
load="$target_dir/release/deliver-load"
read -r -a binaries <<<"${BINARIES:-$target_dir/release/junction}"
results=${RESULTS:-$(mktemp -d)}
mkdir -p "$results"

cpu=$(sed -nE 's/^model name\s*:\s*//p' /proc/cpuinfo | head -n 1)
echo "machine: $(nproc) cores, $cpu; $(uname -sr)"
echo "runs: $RUNS of $TOTAL events, $CONNECTIONS connections; results: $results"
for run in $(seq "$RUNS"); do
    for i in "${!binaries[@]}"; do
        binary=${binaries[$i]}
        "$load" count --total "$TOTAL" --connections "$CONNECTIONS" --junction "$binary" \
            >>"$results/binary-$i.jsonl"
        python3 - "$results/binary-$i.jsonl" "$run" "$binary" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
e = r["events"]
print("run %s %s: %.1f µs/event junction, %.1f µs sink; %d delivered in %.1f s (%.0f/s), "
      "duplicates %d, undelivered %d, VmHWM %.1f MiB; load %.1f; threads %s" % (
    sys.argv[2], sys.argv[3], r["junction_cpu_us_per_delivery"], r["sink_cpu_us_per_delivery"],
    e["delivered"], r["secs"], e["delivered"] / max(r["secs"], 1e-9), e["duplicates"],
    e["undelivered"], r["junction"]["vmhwm_mib"], r["loadavg_before"][0],
    ", ".join("%s %.0f%%" % (t["name"], t["cpu_pct"]) for t in r["cpu"]["junction_threads"])))
PY
    done
done

echo
python3 - "$results" "${binaries[@]}" <<'PY'
import json, statistics, sys
results, binaries = sys.argv[1], sys.argv[2:]
first = None
for i, binary in enumerate(binaries):
    runs = [json.loads(l) for l in open("%s/binary-%d.jsonl" % (results, i)) if l.strip()]
    med = lambda f: statistics.median(f(r) for r in runs)
    cpu = med(lambda r: r["junction_cpu_us_per_delivery"])
    first = first or cpu
    print("%s: median of %d: %.1f µs/event junction (runs %s; ratio to the first %.2f), "
          "sink %.1f µs/event, VmHWM %.1f MiB (runs %s)" % (
        binary, len(runs), cpu,
        ", ".join("%.1f" % r["junction_cpu_us_per_delivery"] for r in runs), cpu / first,
        med(lambda r: r["sink_cpu_us_per_delivery"]), med(lambda r: r["junction"]["vmhwm_mib"]),
        ", ".join("%.0f" % r["junction"]["vmhwm_mib"] for r in runs)))
PY
