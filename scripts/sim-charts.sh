#!/bin/sh
# Runs corral-sim for the dovecot, dynamic and queue policies on the
# steady, burst and diurnal traces, writes docs/sim/POLICY-TRACE.svg and
# docs/sim/summary.md, and copies the table into docs/simulator.md.
# Builds what it needs first, in build/ (or $CORRAL_BUILD_DIR).
set -eu
cd "$(dirname "$0")/.."
build=${CORRAL_BUILD_DIR:-build}
out=docs/sim

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dwerror=true >/dev/null
fi
ninja -C "$build" tools/sim/corral-sim plugins/dovecot/dovecot.so plugins/dynamic/dynamic.so \
    plugins/queue/queue.so >/dev/null

# One service for all: 40 processes of one slot, each taking 50 ms to
# start; each policy tuned as an operator would for it.
common="--set process_limit=40 --set client_limit=1 --startup-ms 50 --duration 300 --sample-ms 500"
settings_dovecot="--set process_min_avail=2 --set idle_kill=10s"
settings_dynamic="--set min_spare=2 --set max_spare=8 --set start_servers=4"
settings_queue="--set min_spare=2 --set shrink_after=10s"

mkdir -p "$out"
summary=$out/summary.md
{
    echo "<!-- Written by scripts/sim-charts.sh; do not edit. -->"
    echo "| Trace | Policy | Mean processes | Max processes | Max queue | p95 wait (ms) | p99 wait (ms) | Dropped | Refused | Spawns | SIGINTs |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$summary"

for trace in steady burst diurnal; do
    for policy in dovecot dynamic queue; do
        eval "settings=\$settings_$policy"
        # shellcheck disable=SC2086 # the settings are words on purpose
        "$build/tools/sim/corral-sim" --quiet --policy "$policy" $common $settings \
            --svg "$out/$policy-$trace.svg" "tools/sim/traces/$trace.trace" >"$out/.figures"
        awk -F= -v trace="$trace" '
            { figure[$1] = $2 }
            END {
                printf "| %s | %s | %s | %s | %s | %.1f | %.1f | %s | %s | %s | %s |\n",
                    trace, figure["policy"], figure["mean_processes"], figure["max_processes"],
                    figure["max_queue"], figure["p95_wait_ms"], figure["p99_wait_ms"],
                    figure["dropped"], figure["refused"], figure["spawns"], figure["sigints"]
            }' "$out/.figures" >>"$summary"
        echo "$out/$policy-$trace.svg"
    done
done
rm -f "$out/.figures"
echo "$summary"

# The same table in docs/simulator.md, between its summary markers.
awk -v table="$summary" '
    /^<!-- summary:/ { print; while ((getline line < table) > 0) if (line !~ /^<!--/) print line; skip = 1; next }
    /^<!-- end of summary -->/ { skip = 0 }
    !skip' docs/simulator.md >docs/simulator.md.new
mv docs/simulator.md.new docs/simulator.md
echo docs/simulator.md
