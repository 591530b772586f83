/* SPDX-License-Identifier: MIT */
/*
 * fuzz-config.c - libFuzzer harness for the configuration loader.
 *
 * Each input becomes a real configuration tree in a private folder made
 * once per process: the text up to the first "\n---conf.d---\n" marker is
 * the main file, each further part a conf.d/NN.conf file (at most
 * MAX_CONF_D of them; later markers stay in the last file's text).  With
 * no marker there is no conf.d folder at all.  corral_config_load then
 * reads the tree, and the result is checked against the promises of
 * config.h before it is freed; corral_config_read_base_dir reads the same
 * tree and must settle on the same base_dir whenever the load succeeds.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

#define MARKER "\n---conf.d---\n"
#define MAX_CONF_D 4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_dir;       /* as created */
static char *fuzz_dir_canon; /* as the loader spells paths in it */
static char *main_path;
static char *conf_d_path;
static char *conf_d_files[MAX_CONF_D];

/* A broken promise is a finding: abort so that libFuzzer keeps the input. */
#define CHECK(condition)                                                                     \
    do {                                                                                     \
        if (!(condition)) {                                                                  \
            fprintf(stderr, "fuzz-config: %s:%d: check failed: %s\n", __FILE__, __LINE__,    \
                    #condition);                                                             \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static void remove_fuzz_dir(void)
{
    for (size_t i = 0; i < MAX_CONF_D; i++) {
        (void)g_unlink(conf_d_files[i]);
        g_free(conf_d_files[i]);
    }
    (void)g_rmdir(conf_d_path);
    (void)g_unlink(main_path);
    (void)g_rmdir(fuzz_dir);
    g_free(conf_d_path);
    g_free(main_path);
    g_free(fuzz_dir_canon);
    g_free(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    GError *error = NULL;

    (void)argc;
    (void)argv;
    fuzz_dir = g_dir_make_tmp("corral-fuzz-config-XXXXXX", &error);
    if (fuzz_dir == NULL) {
        fprintf(stderr, "fuzz-config: cannot make a temporary folder: %s\n", error->message);
        abort();
    }
    fuzz_dir_canon = g_canonicalize_filename(fuzz_dir, NULL);
    main_path = g_build_filename(fuzz_dir, "corral.conf", NULL);
    conf_d_path = g_build_filename(fuzz_dir, "conf.d", NULL);
    for (size_t i = 0; i < MAX_CONF_D; i++) {
        char name[16];

        snprintf(name, sizeof(name), "%02zu-fuzz.conf", (i + 1) * 10);
        conf_d_files[i] = g_build_filename(conf_d_path, name, NULL);
    }
    atexit(remove_fuzz_dir);
    return 0;
}

static void write_whole(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    if (fd < 0) {
        fprintf(stderr, "fuzz-config: cannot create %s: %s\n", path, g_strerror(errno));
        abort();
    }
    while (size > 0) {
        ssize_t written = write(fd, data, size);

        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0) {
            fprintf(stderr, "fuzz-config: cannot write %s: %s\n", path, g_strerror(errno));
            abort();
        }
        data += written;
        size -= (size_t)written;
    }
    close(fd);
}

/* Splits the input on MARKER and writes the tree; returns the number of
 * conf.d files written. */
static size_t write_tree(const uint8_t *data, size_t size)
{
    const size_t marker_len = strlen(MARKER);
    const uint8_t *part = data, *end = data + size;
    size_t conf_d_count = 0;

    for (size_t i = 0; i <= MAX_CONF_D; i++) {
        const uint8_t *marker =
            i < MAX_CONF_D ? memmem(part, (size_t)(end - part), MARKER, marker_len) : NULL;
        const uint8_t *part_end = marker != NULL ? marker : end;

        if (i == 0) {
            write_whole(main_path, part, (size_t)(part_end - part));
        } else {
            if (i == 1 && g_mkdir(conf_d_path, 0700) < 0 && errno != EEXIST)
                abort();
            write_whole(conf_d_files[i - 1], part, (size_t)(part_end - part));
            conf_d_count = i;
        }
        if (marker == NULL)
            break;
        part = marker + marker_len;
    }
    /* Leave nothing of the previous input behind. */
    for (size_t i = conf_d_count; i < MAX_CONF_D; i++)
        (void)g_unlink(conf_d_files[i]);
    if (conf_d_count == 0)
        (void)g_rmdir(conf_d_path);
    return conf_d_count;
}

static bool is_path_in_tree(const char *path)
{
    size_t len = strlen(fuzz_dir_canon);

    return strncmp(path, fuzz_dir_canon, len) == 0 && path[len] == '/';
}

static void check_service(const corral_config *config, const corral_service_config *service)
{
    CHECK(service->name != NULL && *service->name != '\0');
    /* Names end up in argv[0], the environment and log prefixes. */
    CHECK(service->name[strspn(service->name, "abcdefghijklmnopqrstuvwxyz"
                                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789-_.")] == '\0');
    CHECK(corral_config_find_service(config, service->name) == service);
    CHECK(service->file != NULL && is_path_in_tree(service->file));
    CHECK(service->executable != NULL && *service->executable != '\0');
    CHECK(service->policy != NULL && *service->policy != '\0');
    CHECK(strchr(service->policy, '/') == NULL);
    CHECK(service->process_limit > 0);
    CHECK(service->process_min_avail <= service->process_limit);
    CHECK(service->client_limit > 0 && service->client_limit <= INT_MAX);
    CHECK(service->service_count == 0 || service->client_limit <= service->service_count);
    CHECK(service->idle_kill_secs > 0);
    CHECK(service->first_status_timeout_msecs > 0);
    CHECK(service->listen_backlog >= 4);
    CHECK(service->policy_keys != NULL && service->key_lines != NULL);
    for (guint i = 0; i < service->listeners->len; i++) {
        const corral_listener_config *listener = g_ptr_array_index(service->listeners, i);

        CHECK(listener->name != NULL);
        if (listener->kind == CORRAL_LISTENER_UNIX) {
            CHECK(listener->path != NULL && g_path_is_absolute(listener->path));
            CHECK(strlen(listener->path) < sizeof(((struct sockaddr_un *)NULL)->sun_path));
            CHECK(listener->mode > 0 && listener->mode <= 0777);
        } else {
            CHECK(listener->kind == CORRAL_LISTENER_INET);
            CHECK(listener->address != NULL && listener->port != 0);
        }
    }
}

static void check_config(const corral_config *config, size_t conf_d_count)
{
    size_t file_count = 0;

    CHECK(config->main_file != NULL && strcmp(config->dir, fuzz_dir_canon) == 0);
    CHECK(config->files != NULL);
    while (config->files[file_count] != NULL) {
        CHECK(is_path_in_tree(config->files[file_count]));
        file_count++;
    }
    CHECK(file_count == conf_d_count + 1);
    CHECK(config->base_dir != NULL && g_path_is_absolute(config->base_dir));
    CHECK(config->policy_dir == NULL || g_path_is_absolute(config->policy_dir));
    CHECK(config->log_path == NULL || g_path_is_absolute(config->log_path));
    CHECK((config->metrics_address == NULL) == (config->metrics_port == 0));
    CHECK(config->reload_kill_timeout_msecs > 0);
    for (guint i = 0; i < config->services->len; i++)
        check_service(config, g_ptr_array_index(config->services, i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t conf_d_count = write_tree(data, size);
    GError *error = NULL, *base_dir_error = NULL;
    corral_config *config = corral_config_load(main_path, &error);
    char *base_dir = corral_config_read_base_dir(main_path, &base_dir_error);

    /* The [corral]-only reader must agree with the full load. */
    CHECK((base_dir == NULL) == (base_dir_error != NULL));
    if (base_dir_error != NULL) {
        CHECK(base_dir_error->domain == CORRAL_CONFIG_ERROR);
        CHECK(is_path_in_tree(base_dir_error->message));
        g_error_free(base_dir_error);
    }
    if (config != NULL) {
        CHECK(error == NULL);
        check_config(config, conf_d_count);
        CHECK(base_dir != NULL && strcmp(base_dir, config->base_dir) == 0);
        corral_config_free(config);
    } else {
        CHECK(error != NULL && error->domain == CORRAL_CONFIG_ERROR);
        CHECK(error->code >= CORRAL_CONFIG_ERROR_IO &&
              error->code <= CORRAL_CONFIG_ERROR_DUPLICATE);
        /* Every message starts with the file it is about. */
        CHECK(is_path_in_tree(error->message));
        g_error_free(error);
    }
    g_free(base_dir);
    return 0;
}
