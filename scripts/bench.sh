#!/bin/sh
# The README's benchmark command: builds a release tree and runs every
# benchmark contender side by side (tests/bench/bench.py, docs/benchmarks.md),
# about 10 minutes, then draws the chart.  Needs root: dovecot and xinetd
# are started with their own users.
#
#   scripts/bench.sh [bench.py options: --quick, --sections warm,perconn, ...]
#
# BUILD_DIR (default build-bench) is the release build; results go to
# OUT_DIR (default $BUILD_DIR/bench): results.json and results.svg.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
BUILD_DIR=${BUILD_DIR:-build-bench}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/bench}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    meson setup "$BUILD_DIR" -Dwerror=true -Dbuildtype=release >/dev/null
else
    meson configure "$BUILD_DIR" -Dbuildtype=release >/dev/null
fi
ninja -C "$BUILD_DIR"
mkdir -p "$OUT_DIR"
# bench.py bounds itself (every load and wait has a deadline, and no new
# section starts after --budget seconds); this is the backstop.
timeout --kill-after=30 900 \
    python3 tests/bench/bench.py --build "$BUILD_DIR" --out "$OUT_DIR/results.json" "$@"
python3 tests/bench/chart.py "$OUT_DIR/results.json" "$OUT_DIR/results.svg"
echo "Chart: $OUT_DIR/results.svg"
