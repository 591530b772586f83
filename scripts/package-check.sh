#!/bin/sh
# Builds the Debian packages from a clean clone of HEAD in a temporary
# folder, fails on any lintian error, installs corral with apt, checks the
# packaged unit with systemd-analyze, checks that the packaged corrald
# accepts its packaged configuration and starts on it,
# and purges the packages again so that nothing else sees them.
# scripts/test.sh runs it last.  Needs root (or sudo) for apt.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_get() {
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 -y -qq "$@"
}

work=$(mktemp -d /tmp/corral-deb.XXXXXX)
corrald_pid=""
cleanup() {
    [ -z "$corrald_pid" ] || kill "$corrald_pid" 2>/dev/null || true
    installed=""
    for pkg in corral-sim libcorral-dev corral libcorral-worker0; do
        if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
            installed="$installed $pkg"
        fi
    done
    # shellcheck disable=SC2086
    [ -z "$installed" ] || apt_get purge $installed >/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "package-check: packaging HEAD; uncommitted changes are not in the packages"
fi
git clone -q --no-hardlinks "$top" "$work/corral"

# The suite runs from the source tree, so the package build skips it.
echo "package-check: dpkg-buildpackage -us -uc -b"
if ! (cd "$work/corral" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
        dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1); then
    tail -n 60 "$work/build.log"
    exit 1
fi
(cd "$work" && ls -l ./*.deb)

echo "package-check: lintian"
lintian --fail-on error "$work"/corral_*.changes

echo "package-check: apt install ./corral_*.deb"
(cd "$work" && apt_get install ./corral_*.deb >/dev/null)
[ -d /etc/corral/conf.d ]
grep -q '^base_dir = /run/corral$' /etc/corral/corral.conf

echo "package-check: the packaged unit verifies; its exposure is at most 5.0"
systemd-analyze verify --man=no /lib/systemd/system/corrald.service
exposure=$(systemd-analyze security --offline=true --no-pager /lib/systemd/system/corrald.service |
    sed -n 's/.*Overall exposure level for corrald.service: \([0-9.]*\).*/\1/p')
echo "package-check: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 5.0) }'

echo "package-check: corrald -t on the packaged configuration"
/usr/sbin/corrald -t -c /etc/corral/corral.conf

# Start it as systemd would (minus the sandbox), see it answer corralctl,
# and stop it.  Every wait is bounded.
echo "package-check: the packaged corrald starts and answers corralctl"
$SUDO mkdir -p /run/corral
$SUDO /usr/sbin/corrald -F -c /etc/corral/corral.conf >"$work/corrald.log" 2>&1 &
corrald_pid=$!
tries=0
until $SUDO /usr/bin/corralctl status >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ] || ! kill -0 "$corrald_pid" 2>/dev/null; then
        cat "$work/corrald.log"
        exit 1
    fi
    sleep 0.1
done
kill "$corrald_pid"
wait "$corrald_pid"
corrald_pid=""
grep -q "starting up with 0 services" "$work/corrald.log" || { cat "$work/corrald.log"; exit 1; }

echo "package-check: apt install the other packages; a worker built against libcorral-dev"
(cd "$work" && apt_get install ./libcorral-worker0_*.deb ./libcorral-dev_*.deb \
    ./corral-sim_*.deb >/dev/null)
# The worked example of corral/worker.h, compiled and linked as its users would.
sed -n '/^ \* Worked example/,/^ \* Under a master/{s/^ \*   //p;s/^ \*$//p;}' \
    /usr/include/corral/worker.h >"$work/hello.c"
# shellcheck disable=SC2046
cc -Werror -o "$work/hello" "$work/hello.c" $(pkg-config --cflags --libs corral-worker)
ldd "$work/hello" | grep -q "libcorral-worker.so.0 => /.*lib/"
pkg-config --variable=policydir corral-policy | grep -q "/corral/policies$"
corral-sim -q /usr/share/doc/corral-sim/examples/steady.trace | grep -q '^served=[1-9]'
echo "package-check: OK"
