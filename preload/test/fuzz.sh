#!/bin/sh
# fuzz.sh: run the reply parser's libFuzzer target for FUZZ_SECONDS (default
# 60) from a seed corpus of real replies (test/corpus), keeping new inputs in
# build/fuzz-corpus. libFuzzer's log goes to build/fuzz.log; on a crash it is
# printed and the input is left in build/ (crash-*), to become a corpus file.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(dirname "$HERE")/build
mkdir -p "$B/fuzz-corpus"
if "$B/fuzz_reply" -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096 -print_final_stats=1 \
	-artifact_prefix="$B/" "$B/fuzz-corpus" "$HERE/corpus" >"$B/fuzz.log" 2>&1; then
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/fuzz.log")
	echo "ok   fuzz: reply parser, ${runs:-?} runs in ${FUZZ_SECONDS:-60}s, no crash"
else
	cat "$B/fuzz.log"
	echo "FAIL fuzz: reply parser (log above, input in $B/)"
	exit 1
fi
