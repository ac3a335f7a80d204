#!/usr/bin/env bash
# test.sh runs every Go test (make test calls it after setup and lint): it
# brings up a throwaway PostgreSQL server (scripts/pgtest.sh) for the
# PostgreSQL store's tests, runs the whole suite on the embedded SQLite
# store, then the handler and browser tests again on PostgreSQL (the store
# matrix), and removes the server whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
pgdir=/tmp/doorman-pgtest-$$
trap 'bash scripts/pgtest.sh stop "$pgdir" || true' EXIT
dsn=$(bash scripts/pgtest.sh start "$pgdir")
export DOORMAN_TEST_POSTGRES=$dsn DOORMAN_REQUIRE_POSTGRES=1
# -timeout only catches a hang: go test's default (10 minutes a package)
# is within reach of the browser suite on a busy 2-core machine (make
# test-under-load), where slower must not mean red.
go test -count=1 -timeout 30m ./...
echo "test: the handler and browser tests again, on PostgreSQL"
DOORMAN_TEST_STORE=postgres go test -count=1 -timeout 30m ./handlers/ ./e2e/
