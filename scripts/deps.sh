#!/bin/sh
# Installs the Debian packages Corral needs to build, run and test, if any
# are missing.  Safe to run again; does nothing when all are present.
set -eu

# Build: compiler, meson, glib, libltdl, json-glib.  Tests: cmocka, python3
# (integration harness), valgrind, curl, clang with its libFuzzer runtime,
# Debian's dovecot-core (interoperability, doveadm), xinetd and ucspi-tcp
# (benchmark contenders), groff-base and mandoc (manual page checks),
# prometheus (promtool checks the metrics exposition and tests the alert
# rules), tmux (corralctl top in a real terminal), systemd (systemd-analyze
# verify and security on the units, systemd-sysusers and systemd-tmpfiles
# on the snippets), git, build-essential, debhelper and lintian
# (scripts/package-check.sh builds and checks the Debian packages),
# python3-yaml (reads the Kubernetes example), python3-uvicorn and gunicorn
# (real servers under worker_protocol = systemd; git serves inetd's test).
packages="gcc libc6-dev meson ninja-build pkg-config libglib2.0-dev libltdl-dev
libjson-glib-dev libcmocka-dev python3 netcat-openbsd valgrind curl clang
libclang-rt-14-dev dovecot-core xinetd ucspi-tcp groff-base mandoc prometheus tmux
systemd git build-essential debhelper lintian python3-yaml python3-uvicorn gunicorn"

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
