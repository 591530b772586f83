#!/bin/sh
# Installs the Debian packages Corral needs to build, run and test, if any
# are missing.  Safe to run again; does nothing when all are present.
set -eu

# Build: compiler, meson, glib, libltdl, json-glib.  Tests: cmocka, python3
# (integration harness), valgrind, curl, clang with its libFuzzer runtime,
# Debian's dovecot-core (interoperability, doveadm), xinetd and ucspi-tcp
# (benchmark contenders), groff-base (manual page checks), python3-uvicorn,
# gunicorn and git (real servers under worker_protocol = systemd and inetd).
packages="gcc libc6-dev meson ninja-build pkg-config libglib2.0-dev libltdl-dev
libjson-glib-dev libcmocka-dev python3 netcat-openbsd valgrind curl clang
libclang-rt-14-dev dovecot-core xinetd ucspi-tcp groff-base python3-uvicorn gunicorn git"

missing=""
for pkg in $packages; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $pkg"
    fi
done
[ -z "$missing" ] && exit 0

echo "Installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
