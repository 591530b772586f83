#!/bin/sh
# The README's run command: installs what is missing, builds, and starts
# corrald in the foreground on the shipped configuration (conf/).
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
exec build/core/corrald -F -c conf/corral.conf "$@"
