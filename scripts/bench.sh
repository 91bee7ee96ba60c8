#!/usr/bin/env bash
# Runs the benchmarks (as root) and prints their figures. First the performance benchmark of
# issue 18 (crates/cli/benches/perf.rs: one table of every goal's figure next to its floor, with
# the workspace's own echo function; the README's `## Performance` block is its output), then:
# cold start and warm invoke next to
# `runc run` and a direct call to the function in its container; workflow overhead; functions
# from code (build time, cold start, warm call next to the interpreter run directly);
# asynchronous runs (acceptance rate, end-to-end throughput) next to blocking calls; a warm
# function through a public HTTP route next to the invoke API and a direct call; asynchronous
# runs with one, two and three servers on one PostgreSQL, and how soon a killed server's runs
# run elsewhere.
#   FAASBOX_BENCH_N=300 scripts/bench.sh
#   FAASBOX_BENCHES="perf" scripts/bench.sh      only some of them
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The agent and the benchmarks' function are found next to the faasbox binary of the bench
# build (target/<triple>/release: `cargo bench` builds with the release settings).
cargo build --release --locked -p faasbox-agent -p faasbox-echo-function -p faasbox-oci-runtime
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%Y-%m-%d %H:%M UTC')"
read -r -a benches <<<"${FAASBOX_BENCHES:-perf invoke contracts flows code runs routes cluster}"
for b in "${benches[@]}"; do
  cargo bench --locked -p faasbox --bench "$b"
done
