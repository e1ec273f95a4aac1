#!/usr/bin/env bash
# Fails when crds/ differs by a single byte from what the Rust types generate, or when crds/kustomization.yaml
# (hand-written, read by `kubectl apply -k deploy/`) does not list exactly the generated files.
# Fix a failure with: cargo run -p sei-operator -- crds --out crds  (and list any new file in the kustomization)
set -euo pipefail
cd "$(dirname "$0")/.."

generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT
cargo run --quiet --locked -p sei-operator -- crds --out "$generated"

# The kustomization is the one file of crds/ the generator does not write.
if ! diff -ru --exclude=kustomization.yaml crds "$generated"; then
  echo "crds/ is out of date with core/src/api; regenerate: cargo run -p sei-operator -- crds --out crds" >&2
  exit 1
fi

# Its resources: the `  - file.yaml` items, compared with the generated file names.
listed=$(sed -nE 's/^[[:space:]]*-[[:space:]]+([^[:space:]#]+)[[:space:]]*$/\1/p' crds/kustomization.yaml | sort)
expected=$(ls "$generated" | sort)
if [ "$listed" != "$expected" ]; then
  echo "crds/kustomization.yaml lists:" $listed >&2
  echo "but the generator writes:" $expected >&2
  echo "make its resources exactly the generated files" >&2
  exit 1
fi
echo "crds/ is up to date ($(ls "$generated" | wc -l) files, all in crds/kustomization.yaml)"
