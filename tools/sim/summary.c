/* SPDX-License-Identifier: MIT */
#include "summary.h"

#include <math.h>

#define USEC_PER_MSEC 1000.0
#define USEC_PER_SEC 1e6

static int by_value(gconstpointer a, gconstpointer b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Nearest rank, in milliseconds; 0 with no data. */
static double percentile_ms(const GArray *sorted, double fraction)
{
    size_t rank;

    if (sorted->len == 0)
        return 0;
    rank = (size_t)ceil(fraction * sorted->len);
    if (rank == 0)
        rank = 1;
    return (double)g_array_index(sorted, uint64_t, rank - 1) / USEC_PER_MSEC;
}

void sim_summary_compute(sim_summary *summary)
{
    const GArray *waits = summary->connections->waits_usec;
    GArray *sorted = g_array_sized_new(FALSE, FALSE, sizeof(uint64_t), waits->len);
    double total = 0;

    g_array_append_vals(sorted, waits->data, waits->len);
    g_array_sort(sorted, by_value);
    for (guint i = 0; i < sorted->len; i++)
        total += (double)g_array_index(sorted, uint64_t, i);

    summary->mean_wait_ms = sorted->len > 0 ? total / sorted->len / USEC_PER_MSEC : 0;
    summary->p50_wait_ms = percentile_ms(sorted, 0.50);
    summary->p95_wait_ms = percentile_ms(sorted, 0.95);
    summary->p99_wait_ms = percentile_ms(sorted, 0.99);
    summary->max_wait_ms = percentile_ms(sorted, 1.0);
    summary->mean_processes = summary->seconds > 0
        ? summary->counters->process_usec / (summary->seconds * USEC_PER_SEC) : 0;
    g_array_unref(sorted);
}

void sim_summary_print(FILE *out, const sim_summary *summary)
{
    const sim_connections *c = summary->connections;
    const sim_host_counters *n = summary->counters;

    fprintf(out, "policy=%s\n", summary->policy);
    fprintf(out, "trace=%s\n", summary->trace);
    fprintf(out, "seconds=%.3f\n", summary->seconds);
    fprintf(out, "connections=%zu\n", c->count);
    fprintf(out, "served=%u\n", c->in_fate[SIM_FATE_SERVED]);
    fprintf(out, "dropped=%u\n", c->in_fate[SIM_FATE_DROPPED]);
    fprintf(out, "refused=%u\n", c->in_fate[SIM_FATE_REFUSED]);
    fprintf(out, "aborted=%u\n", c->in_fate[SIM_FATE_ABORTED]);
    fprintf(out, "waiting_at_end=%u\n", c->in_fate[SIM_FATE_WAITING]);
    fprintf(out, "serving_at_end=%u\n", c->in_fate[SIM_FATE_SERVING]);
    fprintf(out, "not_arrived=%u\n", c->in_fate[SIM_FATE_PENDING]);
    fprintf(out, "mean_processes=%.2f\n", summary->mean_processes);
    fprintf(out, "max_processes=%u\n", n->max_processes);
    fprintf(out, "max_queue=%u\n", c->max_queued);
    fprintf(out, "mean_wait_ms=%.3f\n", summary->mean_wait_ms);
    fprintf(out, "p50_wait_ms=%.3f\n", summary->p50_wait_ms);
    fprintf(out, "p95_wait_ms=%.3f\n", summary->p95_wait_ms);
    fprintf(out, "p99_wait_ms=%.3f\n", summary->p99_wait_ms);
    fprintf(out, "max_wait_ms=%.3f\n", summary->max_wait_ms);
    fprintf(out, "spawns=%u\n", n->spawns);
    fprintf(out, "sigints=%u\n", n->sigints);
    fprintf(out, "throttles=%u\n", n->throttles);
    fprintf(out, "warnings=%u\n", n->warnings);
    fprintf(out, "refusals=%u\n", n->refusals);
    fprintf(out, "busy_loops=%u\n", n->busy_loops);
}
