#!/usr/bin/env bash
# Installs what the tests need and runs every test: the README's second command, and what CI
# runs. Tests start real servers, real runc containers and real registries, so run as root.
# A test that cannot run here (not root, a tool missing) fails with the reason when `CI` is
# set and says `SKIPPED: <reason>` otherwise (faasbox_test_registry::cannot_run); this script
# counts those and prints how many tests ran and how many were skipped, and fails under `CI`
# if any was skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --locked --workspace --bins
# The workspace lints and clippy hold rules the tests cannot (docs, SAFETY comments, no dbg!).
if cargo clippy --version >/dev/null 2>&1; then
  cargo clippy --locked --workspace --all-targets -- -D warnings
else
  echo "test.sh: cargo clippy is missing (rustup component add clippy): lints NOT checked" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Every skipped test appends one line here.
export FAASBOX_SKIP_LOG="$work/skipped"
: >"$FAASBOX_SKIP_LOG"

status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast 2>&1 | tee "$work/output" || status=$?
  ran=$(grep -E '^ *Summary \[' "$work/output" | grep -oE '[0-9]+ tests? run' | grep -oE '^[0-9]+' | tail -n 1 || true)
else
  cargo test --locked --workspace --no-fail-fast 2>&1 | tee "$work/output" || status=$?
  ran=$(grep -oE '^test result: .* ([0-9]+) passed; ([0-9]+) failed' "$work/output" |
    sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed/\1 \2/' | awk '{n += $1 + $2} END {print n + 0}')
fi

skipped=$(wc -l <"$FAASBOX_SKIP_LOG")
echo
echo "tests run: ${ran:-unknown}; of them skipped (could not run here): $skipped"
if [ "$skipped" -gt 0 ]; then
  sed 's/^/  /' "$FAASBOX_SKIP_LOG"
  if [ -n "${CI:-}" ]; then
    echo "CI is set: a skipped test fails the run (install what the lines above name, run as root)" >&2
    status=1
  fi
fi
exit "$status"
