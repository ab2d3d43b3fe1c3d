#!/bin/sh
# run.sh: the shim's latency figure for make bench (see test/sections.sh t_bench).
exec "$(dirname "$0")/../test/run.sh" bench
