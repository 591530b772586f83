#!/bin/sh
# Runs one libFuzzer harness for a short, time-bounded session on a copy of
# its seed corpus, so that nothing is written into the source tree.
#   run-fuzzer.sh FUZZER SEED_CORPUS ARTIFACT_DIR [LIBFUZZER_OPTION...]
# New crash, leak or timeout inputs are kept in ARTIFACT_DIR.
set -eu
fuzzer=$1
seeds=$2
artifacts=$3
shift 3

work=$(mktemp -d "${TMPDIR:-/tmp}/corral-fuzz-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp "$seeds"/* "$work"/
mkdir -p "$artifacts"

# UBSan findings are fatal, like ASan's; leaks are reported.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS UBSAN_OPTIONS

# libFuzzer's own exit code for a finding, 77, would read as "skipped" to
# meson test.
"$fuzzer" -artifact_prefix="$artifacts/" -error_exitcode=1 -timeout_exitcode=1 \
    -print_final_stats=1 "$@" "$work"
