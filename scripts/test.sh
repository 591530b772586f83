#!/bin/sh
# The README's test command: installs what is missing, builds, and runs the
# whole suite: a normal build (unit, integration, operations, interop with
# real Dovecot, SDK, simulator, man pages, install, monitoring), the
# integration and operations suites again with corrald under valgrind,
# everything but interop in an ASan+UBSan build, a short fuzzing session,
# and last the Debian packages (built from a clean clone, lintian,
# installed, checked and purged).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
meson test -C build --print-errorlogs --num-processes 2

# The integration suite once more with corrald under valgrind: any leak or
# memory error makes corrald exit 99, which fails the test that ran it.
CORRAL_TEST_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99" \
    meson test -C build --suite integration --suite operations --print-errorlogs

if [ ! -f build-sanitize/build.ninja ]; then
    meson setup build-sanitize -Dwerror=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dbuildtype=debug >/dev/null
fi
ninja -C build-sanitize
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-sanitize --print-errorlogs --num-processes 2 --no-suite interop

# A short libFuzzer session per fuzzer (configuration loader, status reader,
# child-log parser) in a separate clang ASan+UBSan build: the fuzzers need
# clang's -fsanitize=fuzzer, which gcc lacks.  See docs/fuzzing.md.
if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Dwerror=true -Db_sanitize=address,undefined \
        -Db_lundef=false >/dev/null
fi
meson test -C build-fuzz --suite fuzz --print-errorlogs

# Last, so that the installed packages can disturb nothing else: build the
# Debian packages from a clean clone of HEAD, lintian, install them, check
# the packaged corrald on its packaged configuration, purge them.
scripts/package-check.sh
