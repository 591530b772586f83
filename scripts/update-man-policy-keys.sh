#!/bin/sh
# Regenerates the policy keys section of docs/man/corral.conf.5 from the
# shipped plugins' own declarations, between the BEGIN and END POLICY KEYS
# comments.  With --check it changes nothing and fails when the page
# differs (the docs test suite runs it that way).
#
#   scripts/update-man-policy-keys.sh [--check] [TOOL PAGE PLUGIN.so...]
#
# Without paths it uses build/ and the page in the source tree.
set -eu
check=no
if [ "${1:-}" = "--check" ]; then
    check=yes
    shift
fi
if [ $# -eq 0 ]; then
    cd "$(dirname "$0")/.."
    ninja -C build tools/policy-keys/corral-policy-keys >/dev/null
    set -- build/tools/policy-keys/corral-policy-keys docs/man/corral.conf.5 \
        build/plugins/dovecot/dovecot.so build/plugins/dynamic/dynamic.so \
        build/plugins/ondemand/ondemand.so build/plugins/queue/queue.so \
        build/plugins/static/static.so
fi
tool=$1
page=$2
shift 2

generated=$(mktemp)
updated=$(mktemp)
trap 'rm -f "$generated" "$updated"' EXIT
"$tool" "$@" >"$generated"
awk -v generated="$generated" '
    /^\.\\" BEGIN POLICY KEYS/ { print; while ((getline line < generated) > 0) print line; skip = 1; next }
    /^\.\\" END POLICY KEYS/ { skip = 0 }
    !skip { print }
' "$page" >"$updated"
if cmp -s "$page" "$updated"; then
    exit 0
fi
if [ "$check" = yes ]; then
    echo "$page: the policy keys section differs from the plugins; run $0" >&2
    diff -u "$page" "$updated" >&2 || true
    exit 1
fi
cp "$updated" "$page"
echo "updated $page"
