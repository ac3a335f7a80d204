#!/usr/bin/env bash
# cpuop.sh prints the CPU time (user + system, all threads: GC included) one
# iteration of a Go benchmark costs, from a compiled test binary: the
# process's CPU for N iterations minus that for 1 (the setup, seeding
# included), ÷ (N − 1). On a shared, busy machine wall-clock ns/op measures
# the other tenants as much as the code; CPU time is what the code spends.
# Compare two binaries (go test -c before and after a change) back to back,
# alternating, several times.
#
#   bash bench/cpuop.sh BINARY PKGDIR 'BenchmarkRegexp' N
set -euo pipefail
bin=$1 dir=$2 re=$3 n=$4
cpu() { # seconds of CPU for k iterations
  (cd "$dir" && /usr/bin/time -f '%U %S' "$bin" -test.run '^$' -test.bench "$re" -test.benchtime "${1}x" -test.count 1 2>&1 >/dev/null) |
    tail -1 | awk '{print $1 + $2}'
}
one=$(cpu 1) many=$(cpu "$n")
awk -v a="$one" -v b="$many" -v n="$n" 'BEGIN { printf "%.1f µs/op (CPU %.2f s for %d, %.2f s for 1)\n", (b - a) / (n - 1) * 1e6, b, n, a }'
