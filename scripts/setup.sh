#!/usr/bin/env bash
# setup.sh installs everything the tests need on a fresh Debian machine, and is
# cheap (about a second) when it has already run. Called by `make setup` and
# therefore by `make test`. See docs/ (and the README) for why each step is done
# this way: the machine reaches only apt, the npm registry and the Go proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
[ -e /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] || need_apt+=(fonts-liberation)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# nginx terminates TLS in front of two instances in the deployment test
# (e2e/proxy_test.go); openssl makes its certificate. PostgreSQL is
# installed by scripts/pgtest.sh when the tests start it.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Packages must not start their services here (nginx would take port 80):
  # policy-rc.d answering 101 tells invoke-rc.d not to, for this install only.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  [ -z "$policy" ] || $sudo rm -f "$policy"
fi

# The playwright driver folder playwright-go expects, pinned to the version the
# module in go.mod was built for (it refuses any other).
go mod download github.com/playwright-community/playwright-go
pwdir=$(go list -m -f '{{.Dir}}' github.com/playwright-community/playwright-go)
pwver=$(sed -n 's/^const playwrightCliVersion = "\(.*\)"$/\1/p' "$pwdir/run.go")
[ -n "$pwver" ] || { echo "setup: cannot read playwright driver version from $pwdir/run.go" >&2; exit 1; }
drv="$root/.pwdriver"
if [ ! -f "$drv/npm/node_modules/playwright-core/package.json" ] || \
   ! grep -q "\"version\": \"$pwver\"" "$drv/npm/node_modules/playwright-core/package.json"; then
  echo "setup: playwright-core $pwver"
  rm -rf "$drv" && mkdir -p "$drv/npm"
  printf '{"private":true,"dependencies":{"playwright-core":"%s","axe-core":"4.10.3"}}\n' "$pwver" > "$drv/npm/package.json"
  (cd "$drv/npm" && npm install --no-audit --no-fund --silent)
fi
ln -sfn npm/node_modules/playwright-core "$drv/package"
ln -sfn "$(command -v node)" "$drv/node"

# DB-IP City Lite (CC-BY-4.0) into the gitignored data/ folder.
bash scripts/geoip.sh data
echo "setup: ok"
