/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "corral-build.h"
#include "log.h"
#include "report.h"
#include "service.h"
#include "stream-server.h"

#define HTTP_REQUEST_MAX 8192
#define HTTP_REQUEST_TIMEOUT_MSECS 5000
#define EXPOSITION_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ------------------------------------------------------------------ */
/* The exposition.                                                      */

typedef enum { GAUGE, COUNTER } metric_type;

typedef struct service_metric {
    const char *name;
    metric_type type;
    const char *help;
    double (*value)(const corral_service_report *report);
} service_metric;

#define REPORT_VALUE(fn, expr)                                   \
    static double fn(const corral_service_report *r)             \
    {                                                            \
        return (double)(expr);                                   \
    }

REPORT_VALUE(processes, r->process_count)
REPORT_VALUE(processes_available, r->process_avail)
REPORT_VALUE(process_limit, r->process_limit)
REPORT_VALUE(client_limit, r->client_limit)
REPORT_VALUE(process_min_avail, r->process_min_avail)
REPORT_VALUE(stopped, r->stopped)
REPORT_VALUE(throttled, r->throttled)
REPORT_VALUE(throttled_until, r->throttled_until)
REPORT_VALUE(listening, r->listening)
REPORT_VALUE(listen_pending, r->listen_pending)
REPORT_VALUE(queued, r->queued)
REPORT_VALUE(queued_max, r->queued_max)
REPORT_VALUE(process_limit_reached, r->process_limit_reached)
REPORT_VALUE(processes_spawned, r->processes_spawned)
REPORT_VALUE(connections_dropped, r->connections_dropped)
REPORT_VALUE(last_drop, r->last_drop)
REPORT_VALUE(exit_failures, r->exit_failures)
REPORT_VALUE(exit_failures_in_sec, r->exit_failures_in_sec)
REPORT_VALUE(status_records, r->status_records)
REPORT_VALUE(status_reads, r->status_reads)

static const service_metric service_metrics[] = {
    { "corral_service_processes", GAUGE, "Processes of the service that are alive.", processes },
    { "corral_service_processes_available", GAUGE,
      "Processes that can take another client.", processes_available },
    { "corral_service_process_limit", GAUGE, "The service's process_limit.", process_limit },
    { "corral_service_client_limit", GAUGE, "The service's client_limit.", client_limit },
    { "corral_service_process_min_avail", GAUGE, "The service's process_min_avail.",
      process_min_avail },
    { "corral_service_stopped", GAUGE, "1 while an operator has stopped the service.", stopped },
    { "corral_service_throttled", GAUGE, "1 while spawning is throttled after failures.",
      throttled },
    { "corral_service_throttled_until_timestamp_seconds", GAUGE,
      "When the current throttle ends (unix time); 0 when not throttled.", throttled_until },
    { "corral_service_listening", GAUGE,
      "1 while the master watches the listeners for a client no process can take.", listening },
    { "corral_service_listen_pending", GAUGE,
      "1 while every process is busy at process_limit and new clients wait in the queue.",
      listen_pending },
    { "corral_service_queued_clients", GAUGE,
      "Clients waiting in the accept queues of the service's TCP listeners.", queued },
    { "corral_service_queued_clients_max", GAUGE,
      "The most clients seen waiting in those queues (sampled every second and when full).",
      queued_max },
    { "corral_service_process_limit_reached_total", COUNTER,
      "Times every process became busy at process_limit, so new clients had to wait.",
      process_limit_reached },
    { "corral_service_processes_spawned_total", COUNTER, "Processes started.",
      processes_spawned },
    { "corral_service_connections_dropped_total", COUNTER,
      "Queued client connections accepted and closed unserved.", connections_dropped },
    { "corral_service_last_drop_timestamp_seconds", GAUGE,
      "When a queued connection was last dropped (unix time); 0 if never.", last_drop },
    { "corral_service_exit_failures_total", COUNTER,
      "Processes that exited with a non-zero status or were killed by a signal.", exit_failures },
    { "corral_service_exit_storm_failures", GAUGE,
      "Failed exits the exit-storm rule counted in the last second that had any.",
      exit_failures_in_sec },
    { "corral_service_status_records_total", COUNTER,
      "Status records read from the service's processes.", status_records },
    { "corral_service_status_reads_total", COUNTER,
      "Reads of the status pipe that returned records; under load one read takes many.",
      status_reads },
};

static void append_family(GString *out, const char *name, metric_type type, const char *help)
{
    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
                           type == COUNTER ? "counter" : "gauge");
}

/* Label values escape \, " and newlines. */
static void append_label_value(GString *out, const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(out, '\\');
        if (*p == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *p);
    }
}

/* Integral values print as integers, others in a locale-proof way. */
static void append_value(GString *out, double value)
{
    char text[G_ASCII_DTOSTR_BUF_SIZE];

    if (value == (double)(int64_t)value)
        g_string_append_printf(out, "%" G_GINT64_FORMAT "\n", (int64_t)value);
    else
        g_string_append_printf(out, "%s\n", g_ascii_formatd(text, sizeof(text), "%.6f", value));
}

/* Resident memory from /proc/self/statm, in bytes; 0 if unreadable. */
static double resident_bytes(void)
{
    unsigned long size, resident;
    FILE *statm = fopen("/proc/self/statm", "re");
    bool ok;

    if (statm == NULL)
        return 0;
    ok = fscanf(statm, "%lu %lu", &size, &resident) == 2;
    fclose(statm);
    return ok ? (double)resident * (double)sysconf(_SC_PAGESIZE) : 0;
}

static double timeval_secs(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static void append_master(GString *out)
{
    struct rusage usage;

    if (getrusage(RUSAGE_SELF, &usage) == 0) {
        append_family(out, "corral_master_cpu_seconds_total", COUNTER,
                      "CPU time the master has used.");
        g_string_append(out, "corral_master_cpu_seconds_total{mode=\"user\"} ");
        append_value(out, timeval_secs(&usage.ru_utime));
        g_string_append(out, "corral_master_cpu_seconds_total{mode=\"system\"} ");
        append_value(out, timeval_secs(&usage.ru_stime));
    }
    append_family(out, "corral_master_resident_memory_bytes", GAUGE,
                  "Resident memory of the master.");
    g_string_append(out, "corral_master_resident_memory_bytes ");
    append_value(out, resident_bytes());
}

static void append_gauge(GString *out, const char *name, const char *help, double value)
{
    append_family(out, name, GAUGE, help);
    g_string_append_printf(out, "%s ", name);
    append_value(out, value);
}

/* Each process's memory and CPU time, labelled with its service and pid. */
static void append_processes(GString *out, GPtrArray *services)
{
    static const char *const names[] = { "corral_process_resident_memory_bytes",
                                         "corral_process_cpu_seconds_total" };
    static const char *const helps[] = { "Resident memory of a worker process (from /proc).",
                                         "CPU time, user and system, a worker process has used." };

    for (size_t m = 0; m < G_N_ELEMENTS(names); m++) {
        append_family(out, names[m], m == 0 ? GAUGE : COUNTER, helps[m]);
        for (guint i = 0; i < services->len; i++) {
            const corral_service *svc = g_ptr_array_index(services, i);

            for (GList *link = svc->processes.head; link != NULL; link = link->next) {
                corral_process_report r;

                corral_process_report_fill(svc, link->data, &r);
                g_string_append_printf(out, "%s{service=\"", names[m]);
                append_label_value(out, r.service);
                g_string_append_printf(out, "\",pid=\"%d\"} ", (int)r.pid);
                append_value(out, m == 0 ? (double)r.rss_bytes : (double)r.cpu_usecs / 1e6);
            }
        }
    }
}

/* corrald itself: build, start, the last reload (named as Prometheus
 * names its own), and which policy each service runs. */
static void append_daemon(GString *out, corral_supervisor *supervisor,
                          const corral_service_report *reports, guint count)
{
    corral_reload_outcome reload;

    corral_supervisor_last_reload(supervisor, &reload);
    append_family(out, "corral_build_info", GAUGE, "Always 1; the version of this corrald.");
    g_string_append(out, "corral_build_info{version=\"");
    append_label_value(out, CORRAL_VERSION);
    g_string_append(out, "\"} 1\n");
    append_gauge(out, "corral_start_time_seconds", "When corrald started (unix time).",
                 (double)corral_supervisor_start_usec(supervisor) / G_USEC_PER_SEC);
    append_gauge(out, "corral_config_last_reload_successful",
                 "1 if the last configuration reload succeeded (or none was tried), else 0.",
                 reload.ok);
    append_gauge(out, "corral_config_last_reload_success_timestamp_seconds",
                 "When the configuration was last loaded successfully (unix time).",
                 (double)reload.success_usec / G_USEC_PER_SEC);
    append_family(out, "corral_service_policy_info", GAUGE,
                  "Always 1; the policy plugin each service runs.");
    for (guint i = 0; i < count; i++) {
        g_string_append(out, "corral_service_policy_info{service=\"");
        append_label_value(out, reports[i].name);
        g_string_append(out, "\",policy=\"");
        append_label_value(out, reports[i].policy);
        g_string_append(out, "\"} 1\n");
    }
}

char *corral_metrics_render(corral_supervisor *supervisor)
{
    GPtrArray *services = corral_supervisor_services(supervisor);
    corral_service_report *reports;
    GString *out = g_string_new(NULL);

    corral_supervisor_drain_status(supervisor);
    reports = g_new(corral_service_report, MAX(services->len, 1));

    for (guint i = 0; i < services->len; i++)
        corral_service_report_fill(g_ptr_array_index(services, i), &reports[i]);
    for (size_t m = 0; m < G_N_ELEMENTS(service_metrics); m++) {
        const service_metric *metric = &service_metrics[m];

        append_family(out, metric->name, metric->type, metric->help);
        for (guint i = 0; i < services->len; i++) {
            g_string_append_printf(out, "%s{service=\"", metric->name);
            append_label_value(out, reports[i].name);
            g_string_append(out, "\"} ");
            append_value(out, metric->value(&reports[i]));
        }
    }
    append_processes(out, services);
    append_daemon(out, supervisor, reports, services->len);
    append_master(out);
    g_free(reports);
    return g_string_free(out, FALSE);
}

/* ------------------------------------------------------------------ */
/* GET /metrics.                                                        */

struct corral_metrics_http {
    corral_supervisor *supervisor;
    corral_listener_config socket;
    corral_stream_server *server;
};

static void respond(corral_stream_client *client, const char *status, const char *extra_headers,
                    const char *body, bool send_body)
{
    char *head = g_strdup_printf("HTTP/1.1 %s\r\n"
                                 "Content-Type: %s\r\n"
                                 "Content-Length: %zu\r\n"
                                 "%s"
                                 "Connection: close\r\n\r\n",
                                 status,
                                 strcmp(status, "200 OK") == 0 ? EXPOSITION_CONTENT_TYPE
                                                              : "text/plain; charset=utf-8",
                                 strlen(body), extra_headers);

    corral_stream_client_write(client, head, strlen(head));
    if (send_body)
        corral_stream_client_write(client, body, strlen(body));
    corral_stream_client_finish(client);
    g_free(head);
}

/* The request line is "METHOD TARGET HTTP/1.x"; headers are not needed. */
static void handle_request(corral_metrics_http *http, corral_stream_client *client,
                           const char *request_line)
{
    char **parts = g_strsplit(request_line, " ", -1);
    bool well_formed = g_strv_length(parts) == 3 && g_str_has_prefix(parts[2], "HTTP/1.");
    bool head = well_formed && strcmp(parts[0], "HEAD") == 0;
    char *path;

    if (!well_formed) {
        log_debug("metrics: %s: not an HTTP/1.x request", corral_stream_client_peer(client));
        respond(client, "400 Bad Request", "", "bad request\n", true);
    } else if (strcmp(parts[0], "GET") != 0 && !head) {
        respond(client, "405 Method Not Allowed", "Allow: GET, HEAD\r\n",
                "only GET and HEAD are served\n", true);
    } else {
        path = g_strndup(parts[1], strcspn(parts[1], "?#"));
        if (strcmp(path, "/metrics") == 0) {
            char *text = corral_metrics_render(http->supervisor);
            respond(client, "200 OK", "", text, !head);
            g_free(text);
        } else {
            respond(client, "404 Not Found", "", "not found; try /metrics\n", !head);
        }
        g_free(path);
    }
    g_strfreev(parts);
}

static void on_http_input(corral_stream_client *client, GString *input, bool eof, void *data)
{
    corral_metrics_http *http = data;
    char *line_end;

    /* The answer needs only the request line, but the whole head is read
     * so that the client is not cut off while still sending it. */
    bool complete = strstr(input->str, "\r\n\r\n") != NULL || strstr(input->str, "\n\n") != NULL;

    if (!complete && input->len >= HTTP_REQUEST_MAX) {
        respond(client, "431 Request Header Fields Too Large", "", "request too large\n", true);
        return;
    }
    if (!complete && !eof)
        return;
    if (input->len == 0)
        return; /* connected and left without a word */
    line_end = input->str + strcspn(input->str, "\r\n");
    *line_end = '\0';
    handle_request(http, client, input->str);
    g_string_truncate(input, 0);
}

static const corral_stream_protocol http_protocol = {
    .name = "metrics_listener",
    /* Room for one more read past the cap, which the handler answers. */
    .input_max = HTTP_REQUEST_MAX + 4096,
    .request_timeout_msecs = HTTP_REQUEST_TIMEOUT_MSECS,
    .input = on_http_input,
};

corral_metrics_http *corral_metrics_http_open(corral_supervisor *supervisor,
                                              const char *address, guint16 port,
                                              GError **error)
{
    corral_metrics_http *http = g_new0(corral_metrics_http, 1);

    http->supervisor = supervisor;
    http->socket.kind = CORRAL_LISTENER_INET;
    http->socket.name = g_strdup("metrics");
    http->socket.address = g_strdup(address);
    http->socket.port = port;
    http->server = corral_stream_server_open(&http->socket, &http_protocol, http, error);
    if (http->server == NULL) {
        corral_metrics_http_free(http);
        return NULL;
    }
    log_info("metrics: serving GET /metrics on %s%s%s:%u",
             strchr(address, ':') != NULL ? "[" : "", address,
             strchr(address, ':') != NULL ? "]" : "", port);
    return http;
}

void corral_metrics_http_free(corral_metrics_http *http)
{
    if (http == NULL)
        return;
    corral_stream_server_free(http->server);
    g_free(http->socket.name);
    g_free(http->socket.address);
    g_free(http);
}
