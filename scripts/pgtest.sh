#!/usr/bin/env bash
# pgtest.sh brings up a real, throwaway PostgreSQL server for the tests and
# tears it down again: no Docker, no downloads but Debian's apt, and it never
# touches (or needs) the package's own system cluster or systemd.
#
#   scripts/pgtest.sh start DIR   # prints one line on stdout: the DSN
#   scripts/pgtest.sh stop DIR    # stops the server and removes DIR
#
# The one-line manual equivalent for a developer:
#   dsn=$(scripts/pgtest.sh start /tmp/pg) && DOORMAN_TEST_POSTGRES=$dsn go test ./... ; scripts/pgtest.sh stop /tmp/pg
#
# start installs Debian's `postgresql` if no server binaries exist, runs initdb
# (trust auth, user postgres, no fsync) as the postgres system user in DIR/data,
# starts it on a free port on 127.0.0.1 (written to DIR/port, socket in DIR,
# log in DIR/log) and creates the database doorman_test. Everything but the
# DSN goes to stderr. Starting into a DIR whose server is still running reuses
# it; any other existing DIR is wiped first. DIR must be one that the postgres
# user can reach (e.g. under /tmp, not under /root).
set -euo pipefail

PGUSER_SYS=postgres
DBNAME=doorman_test

log() { echo "pgtest: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  echo "usage: $0 start|stop DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
case $cmd in start|stop) ;; *) usage ;; esac
[ -n "$dir" ] || usage
# Absolute, normalised path (DIR need not exist yet).
case $dir in /*) ;; *) dir="$(pwd)/$dir" ;; esac
dir=$(realpath -m -- "$dir")
[ "$dir" != "/" ] || die "refusing to use / as DIR"

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# Newest /usr/lib/postgresql/N/bin holding a server; empty if none.
find_bindir() {
  local d best=""
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && best=$d
  done
  echo "$best"
}

# Run a command as the postgres system user, from / (root's working directory
# may be unreadable to it, which makes initdb and pg_ctl complain).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u "$PGUSER_SYS" -- "$@")
  else
    (cd / && sudo -u "$PGUSER_SYS" -- "$@")
  fi
}

running() { # running BINDIR: does the server of $dir answer on its port?
  # (Not `pg_ctl status`: it also says yes for a crashed, not yet reaped one.)
  [ -f "$dir/data/postmaster.pid" ] && [ -s "$dir/port" ] &&
    "$1/pg_isready" -q -h 127.0.0.1 -p "$(cat "$dir/port")" -t 5
}

# A free TCP port on 127.0.0.1: the kernel's pick for port 0, or else (no
# python3) a random one that nothing answers on (bash's /dev/tcp).
free_port() {
  local p
  if command -v python3 >/dev/null 2>&1 &&
     p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null) &&
     [ -n "$p" ]; then
    echo "$p"; return
  fi
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 40000 ))
    if ! (: <"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"; return
    fi
  done
  die "no free TCP port found"
}

dsn() { echo "postgres://postgres@127.0.0.1:$1/$DBNAME?sslmode=disable"; }

do_stop() {
  [ -e "$dir" ] || return 0
  local bin
  bin=$(find_bindir)
  if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ] && getent passwd "$PGUSER_SYS" >/dev/null; then
    log "stopping server in $dir"
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1; then
      # Not running (stale pid file) or would not stop in time: make sure.
      as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
    fi
  fi
  $sudo rm -rf -- "$dir"
}

do_start() {
  local bin port
  bin=$(find_bindir)
  if [ -z "$bin" ]; then
    log "installing PostgreSQL from apt"
    $sudo apt-get update -qq >&2
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2 </dev/null
    bin=$(find_bindir)
    [ -n "$bin" ] || die "no PostgreSQL server found under /usr/lib/postgresql after installing"
  fi
  if ! getent passwd "$PGUSER_SYS" >/dev/null; then
    log "creating system user $PGUSER_SYS"
    $sudo useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash "$PGUSER_SYS"
  fi

  # Reuse a server that is already up in DIR.
  if running "$bin"; then
    port=$(cat "$dir/port")
    log "reusing running server in $dir on port $port"
    as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -XtAqc \
      "select 1 from pg_database where datname = '$DBNAME'" | grep -q 1 ||
      as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DBNAME"
    dsn "$port"
    return
  fi

  [ -e "$dir" ] && do_stop
  $sudo mkdir -p -- "$dir"
  $sudo chown "$PGUSER_SYS:" "$dir"
  $sudo chmod 0755 "$dir"
  as_pg test -w "$dir" || die "$dir is not reachable by user $PGUSER_SYS (pick a DIR under /tmp)"

  log "initdb ($("$bin/postgres" --version)) in $dir/data"
  local out
  out=$(as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --no-locale 2>&1) ||
    { echo "$out" >&2; die "initdb failed"; }

  # A port picked as free can be taken before the server binds it: retry.
  local try
  for try in 1 2 3 4 5; do
    port=$(free_port)
    log "starting on 127.0.0.1:$port"
    if as_pg "$bin/pg_ctl" -D "$dir/data" \
         -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
         -l "$dir/log" -w -t 60 start >/dev/null; then
      break
    fi
    [ "$try" -lt 5 ] || { cat "$dir/log" >&2 2>/dev/null || true; die "server did not start (log: $dir/log)"; }
    log "start failed, retrying with another port"
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  done
  # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner sh
  as_pg sh -c 'echo "$1" > "$2"' sh "$port" "$dir/port"

  as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DBNAME"
  dsn "$port"
}

case $cmd in
  start) do_start ;;
  stop) do_stop ;;
esac
