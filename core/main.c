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
#include "corral-build.h"
#include "log.h"
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

int main(int argc, char **argv)
{
    gboolean foreground = FALSE, show_version = FALSE, debug = FALSE;
    char *config_path = NULL;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
          "Main configuration file (default " CORRAL_DEFAULT_CONFIG ")", "FILE" },
        { "foreground", 'F', 0, G_OPTION_ARG_NONE, &foreground,
          "Stay in the foreground instead of detaching", NULL },
        { "debug", 'd', 0, G_OPTION_ARG_NONE, &debug, "Log debug messages", NULL },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &show_version, "Print the version and exit", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *context = g_option_context_new("- supervise pre-forking network services");
    GError *error = NULL;
    corral_supervisor *supervisor;
    corral_config *config;
    int exit_code;

    g_option_context_add_main_entries(context, entries, NULL);
    g_option_context_set_description(context,
        "corrald reads FILE and the conf.d/*.conf files beside it, opens each service's\n"
        "listeners and supervises its worker processes.  SIGTERM or SIGINT stops it.\n");
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
    if (debug)
        corral_log_set_debug(true);

    config = corral_config_load(config_path != NULL ? config_path : CORRAL_DEFAULT_CONFIG, &error);
    g_free(config_path);
    if (config == NULL) {
        corral_log(CORRAL_LEVEL_FATAL, "%s", error->message);
        g_error_free(error);
        return 1;
    }
    supervisor = corral_supervisor_new(config, &error);
    if (supervisor == NULL) {
        corral_log(CORRAL_LEVEL_FATAL, "%s", error->message);
        g_error_free(error);
        return 1;
    }
    /* Detach only once the configuration is known good, so that errors
     * still reach the terminal that started us. */
    if (!foreground && daemon(0, 1) < 0) {
        corral_log(CORRAL_LEVEL_FATAL, "daemon() failed: %s", g_strerror(errno));
        corral_supervisor_free(supervisor);
        return 1;
    }
    exit_code = corral_supervisor_run(supervisor);
    corral_supervisor_free(supervisor);
    return exit_code;
}
