#!/usr/bin/env bash
# Fails when crds/ differs by a single byte from what the Rust types generate.
# Fix a failure with: cargo run -p sei-operator -- crds --out crds
set -euo pipefail
cd "$(dirname "$0")/.."

generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT
cargo run --quiet --locked -p sei-operator -- crds --out "$generated"

if ! diff -ru crds "$generated"; then
  echo "crds/ is out of date with operator/src/api; regenerate: cargo run -p sei-operator -- crds --out crds" >&2
  exit 1
fi
echo "crds/ is up to date ($(ls crds | wc -l) files)"
