#!/usr/bin/env bash
# Every check a change must pass, cheapest first: formatting, lints, the test suite (the README's test command),
# and the CRD drift check. .ci/run calls this; run it locally before pushing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace"
cargo test --workspace --locked

step "crds/ matches the Rust types"
ci/check-crds.sh

step "all checks passed"
