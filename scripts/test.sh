#!/usr/bin/env bash
# test.sh is `make test`: install what the tests need, build, check formatting and vet, run
# every Go test under the race detector (unit and end-to-end), the C shim's tests, a short
# fuzzing pass over every target and the quick demo.
#
# Setup steps (deps, build) stop the run when they fail: nothing after them can pass. Every
# check after them runs even when an earlier one failed, so that one run shows every failure.
# The last line counts Go packages (go test's ok/FAIL lines), the C shim's checks and the
# other checks: "summary: N passed, M failed". The exit status is non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
log=$(mktemp -t dnscache-test.XXXXXX)
exec > >(tee "$log") 2>&1
step() { printf '\n== %s (%ds)\n' "$*" $(($(date +%s) - start)); }

checks_ok=0
checks_failed=0
failed_names=()
# check NAME CMD...: run a check, count it, and go on whatever it gives.
check() {
	local name=$1
	shift
	step "$name"
	if "$@"; then
		checks_ok=$((checks_ok + 1))
	else
		checks_failed=$((checks_failed + 1))
		failed_names+=("$name")
		echo "FAILED: $name"
	fi
}
# setup NAME CMD...: a step everything after depends on.
setup() {
	local name=$1
	shift
	step "$name"
	if ! "$@"; then
		echo "FAILED: $name"
		echo "summary: 0 passed, 1 failed"
		exit 1
	fi
}

setup deps bash scripts/deps.sh
setup build make -s build
setup "control plane binaries" make -s controlplane

gofmt_check() {
	local bad
	bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
	if [ -n "$bad" ]; then
		echo "gofmt needed:"
		echo "$bad"
		return 1
	fi
}
check gofmt gofmt_check
check "go vet" go vet ./...
check "go.mod tidy" go mod tidy -diff
check "generated files" bash -c 'cd build && go run directives_generate.go -check'
# Packages are counted from go test's own ok/FAIL lines below, not as one check.
step "go test -race"
# A failure shows as go test's "FAIL<tab>package" line, which the summary counts; a run that
# fails without one (the go command itself) counts as a failed check.
if ! go test -race -count=1 -timeout 25m ./... && ! grep -qE $'^FAIL[\t ][a-z]' "$log"; then
	checks_failed=$((checks_failed + 1))
	failed_names+=("go test")
fi

if [ -f preload/Makefile ]; then
	check "preload tests" make -s -C preload test
fi

check "fuzz, briefly" env FUZZTIME="${FUZZTIME:-3s}" bash scripts/fuzz.sh

if [ -x scripts/demo.sh ]; then
	demo_quick() {
		DEMO_QUICK=1 bash scripts/demo.sh >/tmp/dnscache-demo.out 2>&1 || { cat /tmp/dnscache-demo.out; return 1; }
		bash scripts/demo-check.sh /tmp/dnscache-demo.out
	}
	check "demo, quick" demo_quick
fi

step done
# Go packages: go test's "ok" and "FAIL\t<package>" lines; the C shim's checks print "ok   ..."
# and "FAIL ..." lines of their own.
pkg_ok=$(grep -cE '^ok( |\t)' "$log" || true)
pkg_failed=$(grep -cE $'^FAIL[\t ][a-z]' "$log" || true)
passed=$((pkg_ok + checks_ok))
failed=$((pkg_failed + checks_failed))
if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed checks: ${failed_names[*]}"
fi
grep -E $'^FAIL[\t ][a-z]' "$log" | sort -u || true
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
