#!/usr/bin/env bash
# Checks that two `junction eval` binaries write byte-identical output (see BENCHMARKS.md,
# section "`junction eval`"): on the corpus of bench/eval/corpus.py, on the corpus twice (every
# configuration seen before), on every line doubled (each line after one with its configuration),
# and on the benchmark's 2,000 first stock lines.
#
#   bench/eval-compare.sh OLD_JUNCTION [NEW_JUNCTION]   # NEW defaults to target/release/junction
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/eval-compare.sh OLD_JUNCTION [NEW_JUNCTION]}
new=${2:-target/release/junction}
target_dir=${CARGO_TARGET_DIR:-target}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/eval/corpus.py . "$work/corpus.jsonl"
cat "$work/corpus.jsonl" "$work/corpus.jsonl" >"$work/twice.jsonl"
awk '{print; print}' "$work/corpus.jsonl" >"$work/doubled.jsonl"
inputs=(corpus twice doubled)
if [[ -x "$target_dir/release/eval-input" ]]; then
    "$target_dir/release/eval-input" lines 2000 >"$work/stock.jsonl"
    inputs+=(stock)
fi
for input in "${inputs[@]}"; do
    "$old" eval <"$work/$input.jsonl" >"$work/$input.old" || true
    "$new" eval <"$work/$input.jsonl" >"$work/$input.new" || true
    cmp "$work/$input.old" "$work/$input.new"
    echo "$input: $(wc -l <"$work/$input.jsonl") input lines, $(wc -l <"$work/$input.new") output lines, identical"
done
