#!/usr/bin/env bash
# Installs what the tests need and runs every test: the README's second command, and what CI
# runs. Tests start real servers, real runc containers and real registries, so run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --locked --workspace --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
else
  cargo test --locked --workspace --no-fail-fast
fi
