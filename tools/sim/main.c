/* SPDX-License-Identifier: MIT */
/*
 * corral-sim - replays a load trace against a policy plugin on a virtual
 * clock: the same .so corrald loads, the same host interface, simulated
 * workers and clients.  docs/simulator.md is the manual.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "chart.h"
#include "clock.h"
#include "connections.h"
#include "host.h"
#include "policy-loader.h"
#include "samples.h"
#include "settings.h"
#include "summary.h"
#include "trace.h"

#define USEC_PER_SEC 1000000u
#define USEC_PER_MSEC 1000u
/* The clock at simulated time 0: policies may treat a zero time as
 * "never", so the simulation does not start there. */
#define EPOCH_USEC (1000ull * USEC_PER_SEC)
#define DEFAULT_TAIL_SECS 10.0

typedef struct options {
    char *policy;
    char *config;
    char *service;
    char **assignments;
    double startup_ms;
    double duration_secs;
    double sample_ms;
    int seed;
    char *csv;
    char *svg;
    char *title;
    gboolean quiet;
    gboolean debug;
    char *trace;
} options;

/* Everything one run owns. */
typedef struct simulation {
    options opts;
    sim_trace *trace;
    sim_settings settings;
    corral_policy_loader *loader;
    corral_policy_module *module;
    corral_policy_value *values;
    sim_clock *clock;
    sim_connections *connections;
    sim_host *host;
    GArray *samples;
    uint64_t end_usec;
    size_t next_arrival;
    uint64_t sample_usec;
} simulation;

/* ------------------------------------------------------------------ */
/* Events of the run itself: arrivals and sampling.                    */

static void schedule_next_arrival(simulation *sim);

static void connection_arrives(void *data)
{
    simulation *sim = data;

    sim_connections_arrive(sim->connections, &sim->connections->all[sim->next_arrival++]);
    sim_host_connections_changed(sim->host);
    schedule_next_arrival(sim);
}

static void schedule_next_arrival(simulation *sim)
{
    uint64_t at;

    if (sim->next_arrival >= sim->connections->count)
        return;
    at = sim->connections->all[sim->next_arrival].arrival_usec;
    if (at <= sim->end_usec)
        sim_clock_at(sim->clock, at, connection_arrives, sim);
}

static void take_sample(void *data)
{
    simulation *sim = data;
    const corral_service_state *st = sim_host_state(sim->host);
    uint64_t now = sim_clock_now(sim->clock);
    sim_sample sample = {
        .seconds = (double)(now - EPOCH_USEC) / USEC_PER_SEC,
        .processes = st->process_count,
        .available = st->process_avail,
        .queued = sim_connections_queued(sim->connections),
        .busy = sim_host_busy_slots(sim->host),
    };

    g_array_append_val(sim->samples, sample);
    if (now + sim->sample_usec <= sim->end_usec)
        sim_clock_at(sim->clock, now + sim->sample_usec, take_sample, sim);
}

/* ------------------------------------------------------------------ */
/* Setting up.                                                         */

static bool parse_options(options *opts, int *argc, char ***argv, GError **error)
{
    GOptionEntry entries[] = {
        { "policy", 'p', 0, G_OPTION_ARG_STRING, &opts->policy,
          "Policy: a name looked up as corrald does, or a path to a .so "
          "(default: the service's policy, else dovecot)", "NAME|PATH" },
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &opts->config,
          "Take the service's settings from this corral configuration", "FILE" },
        { "service", 's', 0, G_OPTION_ARG_STRING, &opts->service,
          "The service in --config (default: the first)", "NAME" },
        { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opts->assignments,
          "A service or policy key, e.g. process_limit=20 or min_spare=2 (repeatable)",
          "KEY=VALUE" },
        { "startup-ms", 0, 0, G_OPTION_ARG_DOUBLE, &opts->startup_ms,
          "A new process's start-up latency (default 5)", "MS" },
        { "duration", 0, 0, G_OPTION_ARG_DOUBLE, &opts->duration_secs,
          "Simulated time (default: until the trace's last connection would end, plus 10)",
          "SECS" },
        { "sample-ms", 0, 0, G_OPTION_ARG_DOUBLE, &opts->sample_ms,
          "Sampling interval of the CSV and the chart (default 100)", "MS" },
        { "seed", 0, 0, G_OPTION_ARG_INT, &opts->seed, "Seed of corral_host.random (default 1)",
          "N" },
        { "csv", 0, 0, G_OPTION_ARG_FILENAME, &opts->csv, "Write the samples as CSV", "FILE" },
        { "svg", 0, 0, G_OPTION_ARG_FILENAME, &opts->svg, "Draw the samples as SVG", "FILE" },
        { "title", 0, 0, G_OPTION_ARG_STRING, &opts->title, "The chart's title", "TEXT" },
        { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opts->quiet, "Do not print the policy's log",
          NULL },
        { "debug", 'd', 0, G_OPTION_ARG_NONE, &opts->debug,
          "Print the policy's debug lines too", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *context = g_option_context_new("TRACE - replay a load trace against a policy");
    bool ok;

    opts->startup_ms = 5;
    opts->sample_ms = 100;
    opts->seed = 1;
    g_option_context_add_main_entries(context, entries, NULL);
    g_option_context_set_description(context,
        "TRACE has one connection per line: '<arrival seconds> <duration seconds>', '#' "
        "comments.\nThe summary goes to standard output as KEY=VALUE lines; the policy's log "
        "to standard error.\n");
    ok = g_option_context_parse(context, argc, argv, error);
    g_option_context_free(context);
    if (!ok)
        return false;
    if (*argc != 2) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "expected one TRACE file");
        return false;
    }
    if (opts->startup_ms < 0 || opts->sample_ms <= 0 || opts->duration_secs < 0) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--startup-ms, --sample-ms and --duration take positive numbers");
        return false;
    }
    opts->trace = g_strdup((*argv)[1]);
    return true;
}

static void free_options(options *opts)
{
    g_free(opts->policy);
    g_free(opts->config);
    g_free(opts->service);
    g_strfreev(opts->assignments);
    g_free(opts->csv);
    g_free(opts->svg);
    g_free(opts->title);
    g_free(opts->trace);
}

/* A path opens that file; a name is searched as corrald searches it
 * (CORRAL_POLICY_PATH, the installed folder, the build tree). */
static bool load_policy(simulation *sim, GError **error)
{
    const char *wanted = sim->opts.policy != NULL ? sim->opts.policy : sim->settings.service.policy;

    if (strchr(wanted, '/') != NULL) {
        sim->module = corral_policy_module_open(wanted, error);
    } else {
        sim->loader = corral_policy_loader_new(NULL, NULL);
        sim->module = corral_policy_loader_load(sim->loader, wanted, error);
    }
    if (sim->module == NULL)
        return false;
    g_free(sim->settings.service.policy);
    sim->settings.service.policy = g_strdup(sim->module->name);
    sim->values = corral_policy_values_parse(sim->module, &sim->settings.service, error);
    return sim->values != NULL;
}

static bool set_up(simulation *sim, GError **error)
{
    const corral_service_config *service = &sim->settings.service;
    sim_host_options host_options = {
        .startup_usec = (uint64_t)llround(sim->opts.startup_ms * USEC_PER_MSEC),
        .seed = (uint32_t)sim->opts.seed,
        .print_log = !sim->opts.quiet,
        .print_debug = sim->opts.debug,
        .epoch_usec = EPOCH_USEC,
    };
    uint64_t duration;

    sim->trace = sim_trace_load(sim->opts.trace, error);
    if (sim->trace == NULL)
        return false;
    sim_settings_init(&sim->settings);
    if (sim->opts.config != NULL &&
        !sim_settings_load(&sim->settings, sim->opts.config, sim->opts.service, error))
        return false;
    for (char **assignment = sim->opts.assignments; assignment != NULL && *assignment != NULL;
         assignment++) {
        if (!sim_settings_set(&sim->settings, *assignment, error))
            return false;
    }
    if (!sim_settings_finish(&sim->settings, error) || !load_policy(sim, error))
        return false;

    duration = sim->opts.duration_secs > 0
                   ? (uint64_t)llround(sim->opts.duration_secs * USEC_PER_SEC)
                   : sim->trace->last_finish_usec + (uint64_t)(DEFAULT_TAIL_SECS * USEC_PER_SEC);
    sim->end_usec = EPOCH_USEC + duration;
    sim->sample_usec = (uint64_t)llround(sim->opts.sample_ms * USEC_PER_MSEC);
    if (sim->sample_usec == 0)
        sim->sample_usec = 1;
    sim->clock = sim_clock_new(EPOCH_USEC);
    sim->connections = sim_connections_new(sim->trace, EPOCH_USEC,
                                           (unsigned)service->listen_backlog);
    sim->samples = sim_samples_new();
    sim->host = sim_host_new(sim->clock, sim->connections, service, sim->module->policy,
                             sim->values, &host_options, error);
    return sim->host != NULL;
}

static void tear_down(simulation *sim)
{
    /* The host first: its workers still hold clock events. */
    sim_host_free(sim->host);
    sim_clock_free(sim->clock);
    sim_connections_free(sim->connections);
    if (sim->samples != NULL)
        g_array_unref(sim->samples);
    if (sim->module != NULL) {
        corral_policy_values_free(sim->module, sim->values);
        corral_policy_module_unref(sim->module);
    }
    corral_policy_loader_free(sim->loader);
    sim_settings_clear(&sim->settings);
    sim_trace_free(sim->trace);
    free_options(&sim->opts);
}

/* ------------------------------------------------------------------ */
/* Running.                                                            */

static void run(simulation *sim)
{
    uint64_t next;

    sim_clock_at(sim->clock, EPOCH_USEC, take_sample, sim);
    schedule_next_arrival(sim);
    sim_host_start(sim->host);
    sim_host_finish_iteration(sim->host);
    while (sim_clock_next_instant(sim->clock, &next) && next <= sim->end_usec) {
        sim_clock_run_iteration(sim->clock);
        sim_host_finish_iteration(sim->host);
    }
    sim_host_stop(sim->host);
}

static bool write_outputs(simulation *sim, GError **error)
{
    const corral_service_config *service = &sim->settings.service;
    double seconds = (double)(sim->end_usec - EPOCH_USEC) / USEC_PER_SEC;
    char *trace_name = g_path_get_basename(sim->trace->path);
    sim_summary summary = {
        .policy = sim->module->name,
        .trace = trace_name,
        .seconds = seconds,
        .connections = sim->connections,
        .counters = sim_host_counters_now(sim->host),
    };
    bool ok = true;

    sim_summary_compute(&summary);
    sim_summary_print(stdout, &summary);
    if (sim->opts.csv != NULL)
        ok = sim_samples_write_csv(sim->samples, sim->opts.csv, error);
    if (ok && sim->opts.svg != NULL) {
        char *title = sim->opts.title != NULL
                          ? g_strdup(sim->opts.title)
                          : g_strdup_printf("%s on %s", sim->module->name, trace_name);
        char *subtitle = g_strdup_printf(
            "process_limit %u, client_limit %u, start-up %g ms | mean %.1f processes, "
            "p95 wait %.1f ms, %u dropped or refused, %u spawns",
            service->process_limit, service->client_limit, sim->opts.startup_ms,
            summary.mean_processes, summary.p95_wait_ms,
            sim->connections->in_fate[SIM_FATE_DROPPED] +
                sim->connections->in_fate[SIM_FATE_REFUSED],
            summary.counters->spawns);
        sim_chart chart = {
            .title = title,
            .subtitle = subtitle,
            .process_limit = service->process_limit,
            .seconds = seconds,
        };

        ok = sim_chart_write(&chart, sim->samples, sim->opts.svg, error);
        g_free(subtitle);
        g_free(title);
    }
    g_free(trace_name);
    return ok;
}

int main(int argc, char **argv)
{
    simulation sim = { 0 };
    GError *error = NULL;
    int status = 0;

    if (!parse_options(&sim.opts, &argc, &argv, &error)) {
        fprintf(stderr, "corral-sim: %s\nTry 'corral-sim --help'.\n", error->message);
        g_error_free(error);
        free_options(&sim.opts);
        return 2;
    }
    if (!set_up(&sim, &error)) {
        fprintf(stderr, "corral-sim: %s\n", error->message);
        status = 1;
    } else {
        run(&sim);
        if (!write_outputs(&sim, &error)) {
            fprintf(stderr, "corral-sim: %s\n", error->message);
            status = 1;
        }
    }
    g_clear_error(&error);
    tear_down(&sim);
    return status;
}
