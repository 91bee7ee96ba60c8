#!/usr/bin/env bash
# Fuzzes the front ends that read what users send: flow YAML (flow_yaml), jq templates and
# expressions (jq_template) and function specs (function_spec), each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 seconds, all targets)
#
# cargo fuzz builds with nightly-only flags (-Zsanitizer=address and friends). On a stable
# toolchain (this project builds with stable Rust) RUSTC_BOOTSTRAP=1 lets stable rustc accept
# them; that is what this script sets. cargo fuzz also sets RUSTFLAGS, which replaces the
# project's static-linking flag from .cargo/config.toml (AddressSanitizer needs a dynamic
# binary). Inputs that crash land in fuzz/artifacts/<target>/; re-run one with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>` in fuzz/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(flow_yaml jq_template function_spec)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "== fuzzing $target for ${seconds}s"
  # seeds/<target> holds small valid inputs to start from; new finds go to corpus/<target>.
  cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536
done
