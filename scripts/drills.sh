#!/usr/bin/env bash
# drills.sh runs the long forms of the fault drills (make drills; make test
# runs their short forms): 50 SIGKILLs on each store, a 10-minute soak on
# each store, PostgreSQL stopped for 30 s under load, a 30 s stalled
# database, the full-disk and read-only-file drills, and the rolling restart
# behind nginx. Each prints what it saw; the figures and the soak tables are
# written to docs/BENCHMARKS-DRILLS.md. About 25 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
pgdir=/tmp/doorman-pgdrills-$$
out=$(mktemp -d)
trap 'bash scripts/pgtest.sh stop "$pgdir" || true; rm -rf "$out"' EXIT
dsn=$(bash scripts/pgtest.sh start "$pgdir")
export DOORMAN_TEST_POSTGRES=$dsn DOORMAN_REQUIRE_POSTGRES=1
export DOORMAN_DRILL_KILLS=${DOORMAN_DRILL_KILLS:-50} DOORMAN_SOAK=${DOORMAN_SOAK:-10m}
export DOORMAN_DRILL_PG_DOWN=${DOORMAN_DRILL_PG_DOWN:-30s} DOORMAN_DRILL_STALL=${DOORMAN_DRILL_STALL:-30s}
export DOORMAN_SOAK_REPORT=$out/soak.md
run() { # package, tests: run verbosely, keep the log
  go test -count=1 -timeout 90m -v -run "^($2)\$" "$1" 2>&1 | tee -a "$out/log" | grep -v '^=== '
}
run . 'TestKillDashNine|TestKillDashNinePostgres|TestSoak|TestSoakPostgres'
run ./handlers/ 'TestPostgresGoneAndBack|TestSlowDatabaseSheds|TestDiskFull|TestReadOnlyDatabaseFile'
run ./e2e/ 'TestRollingRestart'

report=docs/BENCHMARKS-DRILLS.md
{
  echo "# Fault drills: the long forms"
  echo
  echo "Written by \`make drills\` (scripts/drills.sh) on $(nproc) cores, $(go env GOVERSION), PostgreSQL"
  echo "$(ls /usr/lib/postgresql | sort -V | tail -1) (a local throwaway cluster, fsync off), SQLite in WAL mode. Settings:"
  echo "DOORMAN_DRILL_KILLS=$DOORMAN_DRILL_KILLS, DOORMAN_SOAK=$DOORMAN_SOAK, DOORMAN_DRILL_PG_DOWN=$DOORMAN_DRILL_PG_DOWN,"
  echo "DOORMAN_DRILL_STALL=$DOORMAN_DRILL_STALL. What each drill guarantees: [DEPLOY.md](DEPLOY.md#faults-what-is-guaranteed-and-the-drill-that-proves-it)."
  echo
  echo "## What each drill printed"
  echo
  echo '```'
  grep -E '^(--- |    [a-z_]+_test\.go:[0-9]+: )' "$out/log" | grep -v -E '_test\.go:[0-9]+: +(([0-9]+m)?[0-9]+s|at|idle|after) ' | sed -E 's/^    //'
  echo '```'
  echo
  echo "## Soaks"
  cat "$out/soak.md"
} > "$report"
echo "drills: done; wrote $report"
