/* SPDX-License-Identifier: MIT */
#include "master-client.h"

#include <string.h>

#include "log.h"
#include "report.h"
#include "service.h"
#include "stream-server.h"
#include "tab-escape.h"

/* Dovecot's master_conn_set.input_max_size. */
#define INPUT_MAX 1024
/* Dovecot keeps these connections open indefinitely; doveadm itself gives
 * up after 5 s, so an idle client is let go a little later. */
#define IDLE_TIMEOUT_MSECS 30000

#define HANDSHAKE_OUT "VERSION\tmaster-server\t1\t0\n"

struct corral_master_socket {
    corral_supervisor *supervisor;
    corral_listener_config socket;
    corral_stream_server *server;
};

/* A client's state: whether it has sent its VERSION line. */
#define GREETED GINT_TO_POINTER(1)

/* Dovecot's t_strsplit_tabescaped(), in place. */
static char **split_tabescaped(const char *line)
{
    char **words = g_strsplit(line, "\t", -1);

    for (char **word = words; *word != NULL; word++) {
        char *in = *word, *out = *word;

        for (; *in != '\0'; in++) {
            if (*in != '\001' || in[1] == '\0') {
                *out++ = *in;
                continue;
            }
            switch (*++in) {
            case '1': *out++ = '\001'; break;
            case 't': *out++ = '\t'; break;
            case 'r': *out++ = '\r'; break;
            case 'n': *out++ = '\n'; break;
            default: *out++ = *in;
            }
        }
        *out = '\0';
    }
    return words;
}

static void service_status(corral_master_socket *master, GString *out)
{
    GPtrArray *services = corral_supervisor_services(master->supervisor);

    for (guint i = 0; i < services->len; i++) {
        corral_service_report r;

        corral_service_report_fill(g_ptr_array_index(services, i), &r);
        corral_tab_escape_append(out, r.name);
        g_string_append_printf(out,
                               "\t%u\t%u\t%u\t%u\t%u\t%" G_GINT64_FORMAT "\t%u\t%" G_GINT64_FORMAT
                               "\t%c\t%c\t%c\t%" G_GUINT64_FORMAT "\n",
                               r.process_count, r.process_avail, r.process_limit,
                               r.client_limit, r.throttle_secs, r.exit_failure_last,
                               r.exit_failures_in_sec, r.last_drop,
                               r.listen_pending ? 'y' : 'n', r.listening ? 'y' : 'n',
                               r.stopped ? 'y' : 'n', r.processes_spawned);
    }
    g_string_append_c(out, '\n');
}

static void process_status(corral_master_socket *master, char **names, GString *out)
{
    GPtrArray *services = corral_supervisor_services(master->supervisor);

    for (guint i = 0; i < services->len; i++) {
        const corral_service *svc = g_ptr_array_index(services, i);

        if (names[0] != NULL && !g_strv_contains((const char *const *)names, svc->config->name))
            continue;
        for (GList *link = svc->processes.head; link != NULL; link = link->next) {
            corral_process_report r;

            corral_process_report_fill(svc, link->data, &r);
            corral_tab_escape_append(out, r.service);
            g_string_append_printf(out,
                                   "\t%d\t%u\t%" G_GUINT64_FORMAT "\t%" G_GINT64_FORMAT
                                   "\t%" G_GINT64_FORMAT "\t%" G_GINT64_FORMAT "\n",
                                   (int)r.pid, r.available_count, r.clients_seen,
                                   r.idle_since, r.last_status, r.last_kill);
        }
    }
    g_string_append_c(out, '\n');
}

/* Like Dovecot, stops every known service and reports the last unknown. */
static void stop_services(corral_master_socket *master, corral_stream_client *client,
                          char **names, GString *out)
{
    char *unknown = NULL;

    for (char **name = names; *name != NULL; name++) {
        corral_service *svc = corral_report_find_service(master->supervisor, *name);

        if (svc == NULL) {
            g_free(unknown);
            unknown = g_strdup(*name);
            continue;
        }
        log_warning("service(%s): stopped by %s (doveadm service stop)", *name,
                    corral_stream_client_peer(client));
        corral_service_stop_by_operator(svc);
    }
    if (unknown != NULL)
        g_string_append_printf(out, "-Unknown service: %s\n", unknown);
    else
        g_string_append(out, "+\n");
    g_free(unknown);
}

/* Returns false when the connection must end. */
static bool handle_line(corral_master_socket *master, corral_stream_client *client,
                        const char *line, GString *out)
{
    char **args = split_tabescaped(line);
    bool keep = true;

    corral_supervisor_drain_status(master->supervisor);

    if (corral_stream_client_get_state(client) != GREETED) {
        if (g_strv_length(args) < 4 || strcmp(args[0], "VERSION") != 0 ||
            strcmp(args[1], "master-client") != 0 || strcmp(args[2], "1") != 0) {
            log_error("master-client: %s: not a master-client handshake: %s",
                      corral_stream_client_peer(client), line);
            keep = false;
        } else {
            corral_stream_client_set_state(client, GREETED, NULL);
        }
    } else if (args[0] == NULL || args[0][0] == '\0') {
        log_error("master-client: %s: Empty command", corral_stream_client_peer(client));
        keep = false;
    } else if (strcmp(args[0], "SERVICE-STATUS") == 0) {
        service_status(master, out);
    } else if (strcmp(args[0], "PROCESS-STATUS") == 0) {
        process_status(master, args + 1, out);
    } else if (strcmp(args[0], "STOP") == 0) {
        stop_services(master, client, args + 1, out);
    } else {
        log_error("master-client: %s: Unknown command: %s", corral_stream_client_peer(client),
                  args[0]);
        keep = false;
    }
    g_strfreev(args);
    return keep;
}

static void on_input(corral_stream_client *client, GString *input, bool eof, void *data)
{
    corral_master_socket *master = data;
    GString *out = g_string_new(NULL);
    char *newline;

    while ((newline = memchr(input->str, '\n', input->len)) != NULL) {
        char *line = g_strndup(input->str, (gsize)(newline - input->str));
        bool keep = handle_line(master, client, line, out);

        g_string_erase(input, 0, newline - input->str + 1);
        g_free(line);
        if (!keep) {
            g_string_truncate(input, 0);
            corral_stream_client_finish(client);
            break;
        }
    }
    if (out->len > 0)
        corral_stream_client_write(client, out->str, out->len);
    if (eof)
        corral_stream_client_finish(client);
    g_string_free(out, TRUE);
}

static void on_connected(corral_stream_client *client, void *data)
{
    (void)data;
    corral_stream_client_write(client, HANDSHAKE_OUT, strlen(HANDSHAKE_OUT));
}

static const corral_stream_protocol master_protocol = {
    .name = "master-client",
    .input_max = INPUT_MAX,
    .request_timeout_msecs = IDLE_TIMEOUT_MSECS,
    .connected = on_connected,
    .input = on_input,
};

corral_master_socket *corral_master_socket_open(corral_supervisor *supervisor,
                                                const char *base_dir, GError **error)
{
    corral_master_socket *master = g_new0(corral_master_socket, 1);

    master->supervisor = supervisor;
    master->socket.kind = CORRAL_LISTENER_UNIX;
    master->socket.name = g_strdup(CORRAL_MASTER_SOCKET_NAME);
    master->socket.path = g_build_filename(base_dir, CORRAL_MASTER_SOCKET_NAME, NULL);
    master->socket.mode = 0600;
    master->server = corral_stream_server_open(&master->socket, &master_protocol, master, error);
    if (master->server == NULL) {
        g_prefix_error(error, "doveadm master socket: ");
        corral_master_socket_free(master);
        return NULL;
    }
    return master;
}

void corral_master_socket_free(corral_master_socket *master)
{
    if (master == NULL)
        return;
    corral_stream_server_free(master->server);
    g_free(master->socket.name);
    g_free(master->socket.path);
    g_free(master);
}
