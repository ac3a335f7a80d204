#!/usr/bin/env bash
# fixture.sh makes the upgrade fixture db/sqlite/testdata/TAG.sql: a text SQL
# dump of a database that the release TAG (default v0.1.0) created and filled
# with its own code, so TestUpgradeFromThePreviousRelease upgrades exactly
# what that release leaves behind, not our idea of it.
#
#   scripts/fixture.sh [TAG]      # or: make fixtures
#
# It checks TAG out into a temporary git worktree, builds that release's
# server, runs it with -demo on a fresh database (the demo account and its
# sample sessions), and drives it over HTTP with curl as browsers would: two
# sign-ups, a sign-out, sign-ins on a second device, a wrong password and a
# password typed into the email field (both recorded as failed sign-ins). Then
# it stops the server with SIGINT (its graceful shutdown) and dumps the
# database with scripts/sqldump. Everything built or written goes to a
# temporary folder; the worktree and that folder are removed on exit, failed
# or not. Needs git, go and curl.
#
# Two runs give the same file apart from what the old release makes up
# afresh each time: timestamps, session ids, secret and password hashes, and
# the application secret.
set -euo pipefail

tag=${1:-v0.1.0}
cd "$(dirname "$0")/.."
root=$(pwd)
out=$root/db/sqlite/testdata/$tag.sql

log() { echo "fixture: $*" >&2; }
die() { log "$*"; exit 1; }

command -v curl >/dev/null || die "curl is needed"
commit=$(git rev-parse --verify --quiet "$tag^{commit}") || die "no such tag or commit: $tag"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/doorman-fixture.XXXXXX")
wt=$tmp/src
pid=
cleanup() {
  local rc=$?
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [[ -d $wt ]]; then
    git -C "$root" worktree remove --force "$wt" >/dev/null 2>&1 || true
  fi
  git -C "$root" worktree prune
  if [[ $rc -ne 0 && -s $tmp/server.log ]]; then
    log "the old server's log:"
    tail -n 20 "$tmp/server.log" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT

log "checking out $tag (${commit:0:7}) into a temporary worktree"
git worktree add --detach --quiet "$wt" "$commit"

log "building $tag and the dumper"
(cd "$wt" && go build -o "$tmp/doorman-old" .)
go build -o "$tmp/sqldump" ./scripts/sqldump

# The old server reads DOORMAN_* from the environment: none of ours may leak
# in. An empty GeoIP folder keeps locations the same on every machine.
for v in $(compgen -e); do
  [[ $v == DOORMAN_* ]] && unset "$v"
done
mkdir "$tmp/geoip"

log "starting $tag with -demo"
(cd "$tmp" && exec ./doorman-old -demo -db "$tmp/old.db" -addr 127.0.0.1:0 -geoip-dir "$tmp/geoip" \
  >"$tmp/server.out" 2>"$tmp/server.log") &
pid=$!
base=
for _ in $(seq 1 300); do
  base=$(sed -n 's/^Doorman is running at \(http:\/\/[^ ]*\)$/\1/p' "$tmp/server.out")
  [[ -n $base ]] && break
  kill -0 "$pid" 2>/dev/null || die "the old server exited before it was running"
  sleep 0.1
done
[[ -n $base ]] || die "the old server did not say it was running within 30 s"
log "running at $base"

# Browser-like user agents, so the sessions carry the device labels the old
# release derived from them.
ua_mac='Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
ua_phone='Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'
ua_linux='Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0'

# request JAR UA WANT METHOD PATH [FIELD=VALUE...]: one request with the
# browser's cookie jar; fails unless the status is WANT. A POST first loads
# the form page (GET /login) for the CSRF cookie, then sends its value in the
# "csrf" field, as the old release's forms do.
request() {
  local who=$1 jar=$tmp/$1.jar ua=$2 want=$3 method=$4 path=$5
  shift 5
  local args=(-sS -o /dev/null -w '%{http_code}' -A "$ua" -b "$jar" -c "$jar")
  if [[ $method == POST ]]; then
    local code
    code=$(curl "${args[@]}" "$base/login")
    [[ $code == 200 || $code == 303 ]] || die "GET /login for the CSRF cookie: $code"
    local token
    token=$(awk '$6 == "doorman_csrf" { print $7 }' "$jar")
    [[ -n $token ]] || die "no CSRF cookie in $jar"
    args+=(--data-urlencode "csrf=$token")
    for f in "$@"; do args+=(--data-urlencode "$f"); done
  fi
  local got
  got=$(curl "${args[@]}" "$base$path")
  [[ $got == "$want" ]] || die "$who: $method $path: status $got, want $want"
}

log "signing up, in and out"
# Alice signs up on her Mac, then signs in on her phone.
request alice-mac "$ua_mac" 303 POST /signup email=alice@example.com password=alice-password-1
request alice-phone "$ua_phone" 303 POST /login email=alice@example.com password=alice-password-1
request alice-phone "$ua_phone" 200 GET /settings/security
# Bob signs up, signs out (a revoked row), and signs in again.
request bob "$ua_linux" 303 POST /signup email=Bob@Example.com password=bob-password-22
request bob "$ua_linux" 303 POST /logout
request bob "$ua_linux" 303 POST /login email=bob@example.com password=bob-password-22
# The demo account signs in from a real browser too.
request demo "$ua_mac" 303 POST /login email=demo@doorman.test password=doorman-demo
# Failed sign-ins, after the successful ones (a success clears the
# account's failures): a wrong password, and a password typed into the email
# field, which this release stored as typed (lower-cased) in login_failures.
request stranger "$ua_linux" 401 POST /login email=alice@example.com password=not-her-password
request stranger "$ua_linux" 401 POST /login 'email=Tr0ub4dor&3-MyRealPassword' password=alice-password-1

log "stopping the old server (SIGINT)"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[[ $rc -eq 0 ]] || die "the old server exited with status $rc on SIGINT"

log "dumping the database"
{
  echo "-- A database made by Doorman $tag (commit $commit) itself:"
  echo "-- generated by scripts/fixture.sh $tag; do not edit, run it again to refresh."
  "$tmp/sqldump" "$tmp/old.db"
} >"$tmp/dump.sql"
mkdir -p "$(dirname "$out")"
mv "$tmp/dump.sql" "$out"
log "wrote ${out#"$root"/} ($(grep -c '^INSERT' "$out") rows)"
