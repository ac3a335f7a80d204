#!/usr/bin/env bash
# run.sh is `make bench`: the Go benchmarks, then the load test against the
# real binary, written up in docs/BENCHMARKS.md. Not part of `make test`.
# Needs what `make setup` installs (the GeoIP data) and wrk (installed here
# from Debian's packages if missing). Takes about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: apt-get install wrk"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
mkdir -p bench/out
export DOORMAN_GEOIP_DIR="${DOORMAN_GEOIP_DIR:-$PWD/data}"
count="${BENCH_COUNT:-6}"
echo "bench: go test -bench (count $count)"
go test -run '^$' -bench . -benchmem -count "$count" ./handlers ./db ./device ./geo | tee bench/out/gobench.txt
# What one read costs through database/sql and the driver (bench/NOTES.md).
go test -run '^$' -bench ReadFloor -benchmem -count "$count" ./db/sqlite | tee -a bench/out/gobench.txt
go build -o bench/out/doorman .
go run ./bench/load -bin bench/out/doorman -gobench bench/out/gobench.txt -geoip-dir "$DOORMAN_GEOIP_DIR" \
  -out docs/BENCHMARKS.md -cmd "make bench" "$@"
echo "bench: wrote docs/BENCHMARKS.md"
