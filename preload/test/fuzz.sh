#!/bin/sh
# fuzz.sh: run the reply parser's libFuzzer target for FUZZ_SECONDS (default
# 60) from a seed corpus of real replies (test/corpus), keeping new inputs in
# build/fuzz-corpus.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(dirname "$HERE")/build
mkdir -p "$B/fuzz-corpus"
exec "$B/fuzz_reply" -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096 -print_final_stats=1 \
	-artifact_prefix="$B/" "$B/fuzz-corpus" "$HERE/corpus"
