/* SPDX-License-Identifier: MIT */
/*
 * corrald - the Corral master.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "config-check.h"
#include "config-dump.h"
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

    sockets->control = corral_control_open(supervisor, config->base_dir, config->control_group,
                                           error);
    /* Its control_group messages name the key; add the file and group. */
    if (sockets->control == NULL && g_str_has_prefix((*error)->message, "control_group:"))
        g_prefix_error(error, "%s: [corral] ", config->main_file);
    if (sockets->control != NULL)
        sockets->master = corral_master_socket_open(supervisor, config->base_dir, error);
    if (sockets->master != NULL && config->metrics_address != NULL) {
        GError *local = NULL;
        sockets->metrics = corral_metrics_http_open(supervisor, config->metrics_address,
                                                    config->metrics_port, &local);
        if (sockets->metrics == NULL) {
            g_set_error(error, local->domain, local->code, "%s: [corral] metrics_listener: %s",
                        config->main_file, local->message);
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

/* corrald -t, -n and -a: loads and checks the whole configuration, binds
 * and starts nothing.  Exit 0 when it is good, else 1 with every problem
 * on stderr. */
static int check_configuration(const char *path, bool test, bool print_all)
{
    GError *error = NULL;
    corral_config *config = corral_config_load(path, &error);
    corral_config_check *check;
    bool ok;

    if (config == NULL) {
        fprintf(stderr, "corrald: %s\ncorrald: configuration %s test failed\n", error->message,
                path);
        g_error_free(error);
        return 1;
    }
    check = corral_config_check_new(config);
    ok = corral_config_check_ok(check);
    for (guint i = 0; i < check->problems->len; i++)
        fprintf(stderr, "corrald: %s\n", (const char *)g_ptr_array_index(check->problems, i));
    if (!ok) {
        fprintf(stderr, "corrald: configuration %s test failed\n", config->main_file);
    } else if (test) {
        printf("corrald: configuration %s is ok (%u service%s)\n", config->main_file,
               config->services->len, config->services->len == 1 ? "" : "s");
    } else {
        char *text = corral_config_dump(check, print_all ? CORRAL_DUMP_ALL : CORRAL_DUMP_CHANGED);

        fputs(text, stdout);
        g_free(text);
    }
    corral_config_check_free(check);
    corral_config_free(config);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    gboolean foreground = FALSE, show_version = FALSE, debug = FALSE;
    gboolean test = FALSE, print_changed = FALSE, print_all = FALSE;
    char *config_path = NULL;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
          "Main configuration file (default " CORRAL_DEFAULT_CONFIG ")", "FILE" },
        { "foreground", 'F', 0, G_OPTION_ARG_NONE, &foreground,
          "Stay in the foreground instead of detaching", NULL },
        { "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "Log debug messages", NULL },
        { "test", 't', 0, G_OPTION_ARG_NONE, &test,
          "Check the configuration, policies included, and exit", NULL },
        { "print-changed", 'n', 0, G_OPTION_ARG_NONE, &print_changed,
          "Print the settings that differ from the defaults and exit", NULL },
        { "print-all", 'a', 0, G_OPTION_ARG_NONE, &print_all,
          "Print every setting, policy keys included, and exit", NULL },
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

    /* The user's charset for --help (GLib writes "…" in UTF-8); numbers in
     * logs, metrics and dumps stay in the C form whatever the locale. */
    setlocale(LC_ALL, "");
    setlocale(LC_NUMERIC, "C");
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
    if (argc > 1 || test + print_changed + print_all > 1) {
        if (argc > 1)
            fprintf(stderr, "corrald: unexpected argument '%s'\n", argv[1]);
        else
            fprintf(stderr, "corrald: -t, -n and -a exclude each other\n");
        fprintf(stderr, "Try 'corrald --help'.\n");
        g_free(config_path);
        return 2;
    }
    if (show_version) {
        printf("corrald %s (policy ABI %u)\n", CORRAL_VERSION, CORRAL_POLICY_ABI_VERSION);
        g_free(config_path);
        return 0;
    }

    if (test || print_changed || print_all) {
        corral_log_init();
        exit_code = check_configuration(config_path != NULL ? config_path : CORRAL_DEFAULT_CONFIG,
                                        test, print_all);
        g_free(config_path);
        return exit_code;
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
    corral_log_set_level((corral_level)config->log_level);
    if (config->log_path != NULL && !corral_log_open_file(config->log_path, &error)) {
        g_prefix_error(&error, "%s: [corral] log_path: ", config->main_file);
        corral_config_free(config);
        goto fatal;
    }
    /* Before any listener: a second corrald must not fight the first. */
    pidfile = corral_pidfile_claim(config->base_dir, &error);
    if (pidfile == NULL) {
        if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_EXIST))
            g_prefix_error(&error, "%s: [corral] base_dir: ", config->main_file);
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
    /* The last line, so that a log shows a stop as plainly as a start. */
    log_info("corrald stopped%s", exit_code == 0 ? "" : " after an error");
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
