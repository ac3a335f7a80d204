#!/usr/bin/env bash
# test-under-load.sh (make test-under-load) runs the whole of make test
# beside two busy loops, as on a shared 2-core machine whose other work
# keeps both cores busy, and prints how long it took. No test may assert a
# speed, so the suite must pass here too, only slower. The loops end when
# this script ends, however it ends: done, failed, or interrupted.
set -uo pipefail
cd "$(dirname "$0")/.."
loops=()
stop() {
	if [ ${#loops[@]} -gt 0 ]; then
		kill "${loops[@]}" 2>/dev/null
		wait "${loops[@]}" 2>/dev/null
		loops=()
	fi
}
trap stop EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap 'stop; exit 129' HUP
for _ in 1 2; do
	sh -c 'while :; do :; done' &
	loops+=($!)
done
echo "test-under-load: two busy loops running (pids ${loops[*]}); load average $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
status=0
"${MAKE:-make}" --no-print-directory test || status=$?
took=$(($(date +%s) - start))
stop
printf 'test-under-load: make test beside two busy loops took %dm%02ds (exit status %d); load average %s\n' \
	$((took / 60)) $((took % 60)) "$status" "$(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
