#!/usr/bin/env bash
# drills.sh runs the long forms of the fault drills (make drills; make test
# runs their short forms): 50 SIGKILLs on each store, a 10-minute soak on
# each store, PostgreSQL stopped for 30 s under load, a 30 s stalled
# database, and the rolling restart behind nginx. Each prints what it saw;
# the soak tables are written to bench/out/soak.md (copied into
# docs/BENCHMARKS.md by hand when they are worth recording). ~25 min.
set -euo pipefail
cd "$(dirname "$0")/.."
pgdir=/tmp/doorman-pgdrills-$$
trap 'bash scripts/pgtest.sh stop "$pgdir" || true' EXIT
dsn=$(bash scripts/pgtest.sh start "$pgdir")
mkdir -p bench/out
rm -f bench/out/soak.md
export DOORMAN_TEST_POSTGRES=$dsn DOORMAN_REQUIRE_POSTGRES=1
export DOORMAN_DRILL_KILLS=${DOORMAN_DRILL_KILLS:-50} DOORMAN_SOAK=${DOORMAN_SOAK:-10m}
export DOORMAN_DRILL_PG_DOWN=${DOORMAN_DRILL_PG_DOWN:-30s} DOORMAN_DRILL_STALL=${DOORMAN_DRILL_STALL:-30s}
export DOORMAN_SOAK_REPORT=$PWD/bench/out/soak.md
go test -count=1 -timeout 90m -v -run '^(TestKillDashNine|TestKillDashNinePostgres|TestSoak|TestSoakPostgres)$' . | grep -v '^=== '
go test -count=1 -timeout 30m -v -run '^(TestPostgresGoneAndBack|TestSlowDatabaseSheds|TestDiskFull|TestReadOnlyDatabaseFile)$' ./handlers/ | grep -v '^=== '
go test -count=1 -timeout 30m -v -run '^TestRollingRestart$' ./e2e/ | grep -v '^=== '
echo "drills: done; soak tables in bench/out/soak.md"
