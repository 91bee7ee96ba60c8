#!/usr/bin/env bash
# The performance benchmark in CI: runs crates/cli/benches/perf.rs in its quick mode
# (FAASBOX_BENCH_QUICK=1: short iterations, well under two minutes once built), then compares
# each of its figures with the README's table (the `BENCH <key> <value> <unit>` lines between
# `<!-- perf-table:start -->` and `<!-- perf-table:end -->`) and prints
#   REGRESSION: <figure> <readme> → <now> (+X %)
# for each that is more than 20 % worse (latencies, ratios and memory: higher is worse; rates
# and percentages of the floor: lower is worse; the floors themselves, `floor_*` and a
# variant's `<variant>_floor_*`, are not compared), or "perf: no regression over 20 % against
# the README table".
#
# Figures are printed, never asserted: this script exits 0 whatever happens (a failed build or
# benchmark is reported with the reason), so a slow or noisy CI machine never fails a build.
# Run as root (the benchmark starts a real server and runc containers).
#
# Cost: the release build of the agent, the echo function and the benchmark from an empty
# target directory took 32 min here (2026-12-06, 2 cores shared with other builds, load 7 to 8;
# 1,230 s of CPU, most of it the thin-LTO link of the faasbox binary); the quick run ~15 s.
# A machine busier than its cores makes single figures move by more than 20 % from run to run:
# the script says so when it sees such a load.
#   scripts/bench-ci.sh
#   FAASBOX_BENCH_PROFILE=profiling scripts/bench-ci.sh    a quicker build than release's
#   FAASBOX_BENCH_THRESHOLD=20                              the percentage called out
set -uo pipefail
cd "$(dirname "$0")/.."

say() { echo "bench-ci: $*"; }
profile="${FAASBOX_BENCH_PROFILE:-release}"
threshold="${FAASBOX_BENCH_THRESHOLD:-20}"
if [ "$profile" = release ]; then
  build_flags=(--release)
  bench_flags=()
else
  build_flags=(--profile "$profile")
  bench_flags=(--profile "$profile")
fi
out="$(mktemp /tmp/faasbox-bench-ci.XXXXXX)"
trap 'rm -f "$out"' EXIT

if [ "$(id -u)" != 0 ]; then
  say "not root: the performance benchmark needs root (runc, network namespaces); skipped"
  exit 0
fi

started=$(date +%s)
if ! cargo build --locked "${build_flags[@]}" -p faasbox-agent -p faasbox-echo-function -p faasbox-oci-runtime; then
  say "building the agent and the echo function failed (above): no figures (the build does not fail for it)"
  exit 0
fi
if ! cargo bench --locked "${bench_flags[@]}" -p faasbox --bench perf --no-run; then
  say "building the benchmark failed (above): no figures (the build does not fail for it)"
  exit 0
fi
say "the $profile build of the benchmark took $(($(date +%s) - started)) s"
load1="$(cut -d' ' -f1 /proc/loadavg)"
echo "bench-ci: load before the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
if awk -v l="$load1" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
  say "the machine is busier than its cores (load $load1 on $(nproc)): expect noisy figures and false call-outs"
fi

if ! FAASBOX_BENCH_QUICK=1 cargo bench --locked "${bench_flags[@]}" -p faasbox --bench perf 2>&1 | tee "$out"; then
  say "the benchmark failed (its output is above): no comparison (the build does not fail for it)"
  exit 0
fi

readme_figures="$(sed -n '/<!-- perf-table:start -->/,/<!-- perf-table:end -->/p' README.md | grep '^BENCH ' || true)"
if [ -z "$readme_figures" ]; then
  say "the README has no perf-table block with BENCH lines: nothing to compare with"
  exit 0
fi

# key value unit (old) joined with key value unit (now); the unit gives the direction.
awk -v threshold="$threshold" '
  FNR == NR { if ($1 == "BENCH") { old[$2] = $3; unit[$2] = $4 } ; next }
  $1 == "BENCH" && ($2 in old) && $2 !~ /(^|_)floor_/ {
    key = $2; was = old[key] + 0; now = $3 + 0; u = $4
    higher_is_better = (u == "/s" || u == "%")
    worse = higher_is_better ? was - now : now - was
    # Differences too small to mean anything at these magnitudes (timer and scheduler noise).
    slack = (u == "ms") ? 0.1 : (u == "KiB") ? 32 : (u == "x") ? 0.05 : 0
    if (worse <= slack) next
    base = (was < 0) ? -was : was
    if (base == 0) {
      printf "REGRESSION: %s %s → %s (was 0)\n", key, old[key], $3
      regressions++
      next
    }
    pct = 100 * worse / base
    if (pct > threshold) {
      printf "REGRESSION: %s %s → %s (+%.0f %%)\n", key, old[key], $3, pct
      regressions++
    }
  }
  END {
    if (regressions == 0) printf "perf: no regression over %s %% against the README table\n", threshold
    else printf "perf: %d figure(s) over %s %% worse than the README table (printed, not failing the build)\n", regressions, threshold
  }
' <(printf '%s\n' "$readme_figures") "$out"
exit 0
