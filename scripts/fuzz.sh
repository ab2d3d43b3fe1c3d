#!/usr/bin/env bash
# fuzz.sh runs every Go fuzz target (func FuzzXxx in a _test.go file) and the C reply-parser
# target for FUZZTIME each (default 30s). `go test` alone replays the seed corpora and
# testdata/fuzz; this script searches for new inputs. A crash fails the run and leaves its
# input under the package's testdata/fuzz, which then becomes a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}

status=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	echo "fuzz: $pkg $name ($FUZZTIME)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/dnscache-fuzz.log 2>&1; then
		cat /tmp/dnscache-fuzz.log
		status=1
	fi
done < <(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' --exclude-dir=.git . | sed -E 's#^\./##; s#:func #:#' | sort)

if [ -f preload/Makefile ]; then
	secs=${FUZZTIME%s}
	echo "fuzz: preload reply parser (${secs}s)"
	make -s -C preload fuzz FUZZ_SECONDS="$secs" || status=1
fi
exit $status
