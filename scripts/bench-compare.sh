#!/usr/bin/env bash
# Compares the benchmarks of two builds in one run: an older revision (default: origin of the
# current branch's last merge, or the one given) and the working tree. Each benchmark runs for
# the old build, then for the new one, on the same machine minutes apart; a table of the p50
# figures and their ratio (new / old) follows. Nothing is asserted: read the ratios.
#   scripts/bench-compare.sh <old-revision>        e.g. scripts/bench-compare.sh 96f9419
#   FAASBOX_BENCH_N=300 scripts/bench-compare.sh HEAD~5
set -euo pipefail
cd "$(dirname "$0")/.."
old_rev="${1:?usage: scripts/bench-compare.sh <old-revision> (a commit, tag or branch to compare the working tree with)}"
old_commit="$(git rev-parse --verify --quiet "$old_rev^{commit}")" || {
    echo "bench-compare: '$old_rev' is not a commit of this repository (try: git log --oneline)" >&2
    exit 2
}
scripts/install-deps.sh

work="$(mktemp -d /tmp/faasbox-bench-compare.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# The old build's checkout is kept under target/ (a detached worktree), so a second comparison
# with the same commit builds nothing again; `cargo clean` removes it with the rest.
old_tree="$PWD/target/bench-compare/$old_commit"
git worktree prune
[ -d "$old_tree" ] || git worktree add --detach --quiet "$old_tree" "$old_commit"

# FAASBOX_BENCHES picks some of the benchmarks, e.g. FAASBOX_BENCHES="invoke flows".
read -r -a benches <<<"${FAASBOX_BENCHES:-invoke contracts flows}"
build() { # $1 = tree
    (cd "$1" && cargo build --release --locked -p faasbox-agent &&
        for b in "${benches[@]}"; do cargo bench --locked -p faasbox --bench "$b" --no-run; done)
}
echo "== building the old build ($old_commit) and the new one (working tree)"
build "$old_tree"
build "$PWD"

failed=()
for b in "${benches[@]}"; do
    echo "== $b: old build"
    (cd "$old_tree" && cargo bench --locked -p faasbox --bench "$b") | tee "$work/old-$b.txt" ||
        failed+=("$b (old build)")
    echo "== $b: new build"
    cargo bench --locked -p faasbox --bench "$b" | tee "$work/new-$b.txt" ||
        failed+=("$b (new build)")
done

# A figure line is "<label> <number><unit> ..." (ms, or instances/s); the first number after
# the label is compared. Labels must match between the two runs.
figures() {
    awk '
        match($0, /[0-9]+(\.[0-9]+)? ?(ms|instances\/s)/) {
            label = substr($0, 1, RSTART - 1); sub(/[ :]+$/, "", label); sub(/[ :]*p50$/, "", label); sub(/^ +/, "", label)
            if (label ~ /\(p50\)/) next
            value = substr($0, RSTART, RLENGTH); sub(/ ?(ms|instances\/s)$/, "", value)
            if (label != "" && !(label in seen)) { seen[label] = 1; print label "\t" value }
        }' "$@"
}
echo
echo "old $old_commit vs new (working tree $(git rev-parse --short HEAD)$(git diff --quiet || echo ', with changes'))"
printf '%-60s %12s %12s %8s\n' "figure (p50 where two are printed)" old new new/old
for b in "${benches[@]}"; do
    join -t $'\t' <(figures "$work/old-$b.txt" | sort -t $'\t' -k1,1) \
        <(figures "$work/new-$b.txt" | sort -t $'\t' -k1,1) |
        awk -F '\t' '{ r = ($2 > 0) ? $3 / $2 : 0; printf "%-60.60s %12s %12s %7.2fx\n", $1, $2, $3, r }'
done
echo "(for times lower is better; for instances/s higher is better)"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "bench-compare: these benchmark runs failed (their figures are missing above): ${failed[*]}" >&2
    exit 1
fi
