#!/usr/bin/env bash
# test.sh is `make test`: install what the tests need, build, check formatting and vet, run
# every Go test under the race detector (unit and end-to-end), the C shim's tests, a short
# fuzzing pass over every target and the quick demo.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
log=$(mktemp -t dnscache-test.XXXXXX)
exec > >(tee "$log") 2>&1
step() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - start)); }

step deps
bash scripts/deps.sh

step build
make -s build

step control plane binaries
make -s controlplane

step gofmt
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$bad" ]; then
	echo "gofmt needed:"
	echo "$bad"
	exit 1
fi

step go vet
go vet ./...

step generated files
(cd build && go run directives_generate.go -check)

step go test -race
go test -race -count=1 -timeout 20m ./...

if [ -f preload/Makefile ]; then
	step preload tests
	make -s -C preload test
fi

step fuzz, briefly
FUZZTIME=${FUZZTIME:-3s} bash scripts/fuzz.sh

if [ -x scripts/demo.sh ]; then
	step demo, quick
	DEMO_QUICK=1 bash scripts/demo.sh >/tmp/dnscache-demo.out 2>&1 || { cat /tmp/dnscache-demo.out; exit 1; }
	bash scripts/demo-check.sh /tmp/dnscache-demo.out
fi

step done
# Go packages that passed (go test's "ok" lines) and the C shim's checks ("ok   ..." lines);
# any failure has stopped this script before here.
passed=$(grep -cE '^ok( |\t)' "$log" || true)
echo "summary: $passed passed, 0 failed"
