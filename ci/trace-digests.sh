#!/bin/sh
# Every scenario's trace as `sei-sim run FILE --trace` prints it, with the wall-time columns blanked, one file per
# scenario, plus the standard rollout's (`sei-sim trace N`) at 3, 16 and 100 replicas: what a speed change must
# leave byte-identical. Run from the repository root with two builds, then compare:
#
#   ci/trace-digests.sh before/sei-sim /tmp/traces-before
#   ci/trace-digests.sh target/release/sei-sim /tmp/traces-after
#   diff -r /tmp/traces-before /tmp/traces-after && echo identical
set -eu
bin=$1
out=$2
mkdir -p "$out"
for file in scenarios/*.yaml; do
    name=$(basename "$file" .yaml)
    # A failing scenario exits non-zero; its trace is compared like any other.
    "$bin" run "$file" --trace \
        | sed -E 's/^([^ ]+ +(ok|FAILED) +[0-9]+s) +[0-9.]+s/\1 <wall>/; s/\([0-9.]+s wall\)$/(<wall>)/' \
        >"$out/$name.trace" || true
    # A run that printed nothing did not run (a crash of the process, not of the scenario): say so.
    if [ ! -s "$out/$name.trace" ]; then
        echo "trace-digests: $file printed nothing" >&2
        exit 1
    fi
done
for replicas in 3 16 100; do
    "$bin" trace "$replicas" >"$out/standard-rollout-$replicas.trace"
done
