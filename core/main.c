/* SPDX-License-Identifier: MIT */
/*
 * corrald - the Corral master.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <glib.h>

#include "config.h"
#include "control.h"
#include "corral-build.h"
#include "log.h"
#include "master-client.h"
#include "metrics.h"
#include "pidfile.h"
#include "sd-notify.h"
#include "socket-activation.h"
#include "supervisor.h"

/* Children inherit fds 0-2 by number, so they must be open to something. */
static void ensure_standard_fds(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int null_fd = open("/dev/null", O_RDWR);
            if (null_fd >= 0 && null_fd != fd) {
                dup2(null_fd, fd);
                close(null_fd);
            }
        }
    }
}

/* The operators' ways in: corralctl's socket, doveadm's master socket and
 * the optional HTTP metrics endpoint. */
typedef struct operator_sockets {
    corral_control *control;
    corral_master_socket *master;
    corral_metrics_http *metrics;
} operator_sockets;

static void operator_sockets_close(operator_sockets *sockets)
{
    corral_metrics_http_free(sockets->metrics);
    corral_master_socket_free(sockets->master);
    corral_control_free(sockets->control);
    *sockets = (operator_sockets){ NULL, NULL, NULL };
}

static bool operator_sockets_open(operator_sockets *sockets, corral_supervisor *supervisor,
                                  GError **error)
{
    const corral_config *config = corral_supervisor_config(supervisor);

    sockets->control = corral_control_open(supervisor, config->base_dir, error);
    if (sockets->control != NULL)
        sockets->master = corral_master_socket_open(supervisor, config->base_dir, error);
    if (sockets->master != NULL && config->metrics_address != NULL) {
        GError *local = NULL;
        sockets->metrics = corral_metrics_http_open(supervisor, config->metrics_address,
                                                    config->metrics_port, &local);
        if (sockets->metrics == NULL) {
            char *where = corral_config_where(config, "metrics_listener");
            g_set_error(error, local->domain, local->code, "%s: %s", where, local->message);
            g_free(where);
            g_error_free(local);
        }
    }
    if (sockets->control == NULL || sockets->master == NULL ||
        (config->metrics_address != NULL && sockets->metrics == NULL)) {
        operator_sockets_close(sockets);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    gboolean foreground = FALSE, show_version = FALSE, debug = FALSE, test_only = FALSE;
    char *config_path = NULL;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
          "Main configuration file (default " CORRAL_DEFAULT_CONFIG ")", "FILE" },
        { "foreground", 'F', 0, G_OPTION_ARG_NONE, &foreground,
          "Stay in the foreground instead of detaching", NULL },
        { "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "Log debug messages", NULL },
        { "test", 't', 0, G_OPTION_ARG_NONE, &test_only,
          "Read and check the configuration, then exit (0 when it is good)", NULL },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &show_version, "Print the version and exit", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *context = g_option_context_new("- supervise pre-forking network services");
    operator_sockets sockets = { NULL, NULL, NULL };
    corral_pidfile *pidfile = NULL;
    GError *error = NULL;
    corral_supervisor *supervisor;
    corral_config *config;
    int exit_code;

    g_option_context_add_main_entries(context, entries, NULL);
    g_option_context_set_description(context,
        "corrald reads FILE and the conf.d/*.conf files beside it, opens each service's\n"
        "listeners and supervises its worker processes.  SIGTERM or SIGINT stops it,\n"
        "SIGHUP reloads the configuration, SIGUSR1 reopens the log file.  corralctl(1)\n"
        "talks to it; see corrald(8).\n");
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "corrald: %s\nTry 'corrald --help'.\n", error->message);
        g_error_free(error);
        g_option_context_free(context);
        return 2;
    }
    g_option_context_free(context);
    if (show_version) {
        printf("corrald %s (policy ABI %u)\n", CORRAL_VERSION, CORRAL_POLICY_ABI_VERSION);
        g_free(config_path);
        return 0;
    }

    ensure_standard_fds();
    corral_log_init();
    corral_socket_activation_init();
    if (debug)
        corral_log_set_debug(true);

    config = corral_config_load(config_path != NULL ? config_path : CORRAL_DEFAULT_CONFIG, &error);
    g_free(config_path);
    if (config == NULL)
        goto fatal;
    if (test_only) {
        printf("%s: configuration OK, %u service%s\n", config->main_file, config->services->len,
               config->services->len == 1 ? "" : "s");
        corral_config_free(config);
        return 0;
    }
    if (config->log_path != NULL && !corral_log_open_file(config->log_path, &error)) {
        char *where = corral_config_where(config, "log_path");
        g_prefix_error(&error, "%s: ", where);
        g_free(where);
        corral_config_free(config);
        goto fatal;
    }
    /* Before any listener: a second corrald must not fight the first. */
    pidfile = corral_pidfile_claim(config->base_dir, &error);
    if (pidfile == NULL) {
        if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_EXIST)) {
            char *where = corral_config_where(config, "base_dir");
            g_prefix_error(&error, "%s: ", where);
            g_free(where);
        }
        corral_config_free(config);
        goto fatal;
    }
    supervisor = corral_supervisor_new(config, &error);
    corral_socket_activation_close_unused();
    if (supervisor == NULL)
        goto fatal;
    if (!operator_sockets_open(&sockets, supervisor, &error)) {
        corral_supervisor_free(supervisor);
        goto fatal;
    }
    /* Detach only once the configuration is known good, so that errors
     * still reach the terminal that started us. */
    if (!foreground && daemon(0, 1) < 0) {
        g_set_error(&error, G_FILE_ERROR, g_file_error_from_errno(errno), "daemon() failed: %s",
                    g_strerror(errno));
        operator_sockets_close(&sockets);
        corral_supervisor_free(supervisor);
        goto fatal;
    }
    if (!corral_pidfile_write(pidfile, &error)) {
        operator_sockets_close(&sockets);
        corral_supervisor_free(supervisor);
        goto fatal;
    }
    corral_notify_init();
    exit_code = corral_supervisor_run(supervisor);
    corral_notify_shutdown();
    operator_sockets_close(&sockets);
    corral_supervisor_free(supervisor);
    corral_pidfile_release(pidfile);
    corral_log_close_file();
    return exit_code;

fatal:
    corral_log(CORRAL_LEVEL_FATAL, "%s", error->message);
    g_error_free(error);
    corral_socket_activation_close_unused();
    corral_pidfile_release(pidfile);
    corral_log_close_file();
    return 1;
}
