#!/usr/bin/env bash
# compare.sh OLD_REV: the Go benchmarks of OLD_REV and of the working tree,
# built once each and run in turn (old, new, old, new …, 8 rounds), then
# compared with benchstat. Taking turns spreads whatever else the machine
# is doing over both sides; on a busy machine trust the allocations and
# the direction of large changes, not small timing differences.
# Not part of make test or make bench.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?usage: bench/compare.sh OLD_REV}
rounds=${ROUNDS:-8}
out=$(mktemp -d)
trap 'git worktree remove --force "$out/old" >/dev/null 2>&1 || true' EXIT
git worktree add -q --detach "$out/old" "$old"
(cd "$out/old" && go test -c -o "$out/old-handlers.test" ./handlers && go test -c -o "$out/old-sqlite.test" ./db/sqlite)
go test -c -o "$out/new-handlers.test" ./handlers
go test -c -o "$out/new-sqlite.test" ./db/sqlite
export DOORMAN_GEOIP_DIR="${DOORMAN_GEOIP_DIR:-$PWD/data}"
for i in $(seq "$rounds"); do
  for v in old new; do
    "$out/$v-handlers.test" -test.run '^$' -test.bench 'SessionCheck/sessions=(1k|100k)|SecurityPage' -test.benchmem -test.count 1 >> "$out/$v-handlers.txt"
    "$out/$v-sqlite.test" -test.run '^$' -test.bench 'RevokeSession|RevokeOther|ListSessions|MailLifecycle' -test.benchmem -test.count 1 >> "$out/$v-sqlite.txt"
  done
  echo "compare: round $i of $rounds done"
done
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out/old-handlers.txt" "$out/new-handlers.txt"
go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$out/old-sqlite.txt" "$out/new-sqlite.txt"
echo "compare: raw results in $out"
