#!/usr/bin/env bash
# Every check a change must pass, cheapest first: formatting, lints, the API docs' links, the test suite (the
# README's test command), and the CRD drift check. .ci/run calls this; run it locally before pushing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# The tests render deploy/ with `kubectl kustomize` and run the alert rules through `promtool`; here they must
# find both (SEI_OPERATOR_REQUIRE_TOOLS makes a missing one a test failure instead of a skip). Installed from the
# Debian packages when absent: kubectl (or kubernetes-client, which ships it), and prometheus, which ships promtool.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The package lists only when no candidate is known yet (a fresh image has none).
  if ! apt-cache show "$@" >/dev/null 2>&1; then
    $sudo apt-get update -qq
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! command -v kubectl >/dev/null; then
  step "installing kubectl"
  apt_install kubectl || apt_install kubernetes-client
fi
if ! command -v promtool >/dev/null; then
  step "installing promtool (Debian's prometheus package)"
  apt_install prometheus
fi
export SEI_OPERATOR_REQUIRE_TOOLS=1

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken or private intra-doc links are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

step "cargo test --workspace"
cargo test --workspace --locked

step "crds/ matches the Rust types"
ci/check-crds.sh

step "all checks passed"
