/* SPDX-License-Identifier: MIT */
/*
 * test-config.c - the keyfile loader: defaults, paths, listeners, conf.d
 * order and the messages for bad input.
 *
 * Every test writes its configuration into a fresh temporary folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

#define MIB (G_GUINT64_CONSTANT(1) << 20)

/* A valid service whose next line is line 3. */
#define ECHO_SERVICE "[service echo]\nexecutable = /usr/libexec/echo-server\n"

#define assert_contains(haystack, needle)                                                  \
    do {                                                                                   \
        if (strstr((haystack), (needle)) == NULL)                                          \
            fail_msg("\"%s\" does not contain \"%s\"", (haystack), (needle));              \
    } while (0)

typedef struct fixture {
    char *dir;
    char *main_file; /* dir/corral.conf */
} fixture;

static void remove_tree(const char *path)
{
    GDir *dir = g_dir_open(path, 0, NULL);

    if (dir != NULL) {
        const char *name;

        while ((name = g_dir_read_name(dir)) != NULL) {
            char *child = g_build_filename(path, name, NULL);

            remove_tree(child);
            g_free(child);
        }
        g_dir_close(dir);
    }
    g_remove(path);
}

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);

    f->dir = g_dir_make_tmp("corral-config-XXXXXX", NULL);
    assert_non_null(f->dir);
    f->main_file = g_build_filename(f->dir, "corral.conf", NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    remove_tree(f->dir);
    g_free(f->dir);
    g_free(f->main_file);
    g_free(f);
    return 0;
}

/* Writes `text` to `relative` inside the test folder; returns the full path. */
static char *write_file(const fixture *f, const char *relative, const char *text)
{
    char *path = g_build_filename(f->dir, relative, NULL);
    char *parent = g_path_get_dirname(path);

    assert_int_equal(g_mkdir_with_parents(parent, 0700), 0);
    assert_true(g_file_set_contents(path, text, -1, NULL));
    g_free(parent);
    return path;
}

static corral_config *load_ok(const fixture *f, const char *main_text)
{
    GError *error = NULL;
    corral_config *config;

    g_free(write_file(f, "corral.conf", main_text));
    config = corral_config_load(f->main_file, &error);
    if (config == NULL)
        fail_msg("load failed: %s", error->message);
    return config;
}

static GError *load_failure(const fixture *f, const char *main_text, CorralConfigError code)
{
    GError *error = NULL;
    corral_config *config;

    g_free(write_file(f, "corral.conf", main_text));
    config = corral_config_load(f->main_file, &error);
    if (config != NULL)
        fail_msg("loading succeeded, expected error code %d", code);
    assert_non_null(error);
    if (!g_error_matches(error, CORRAL_CONFIG_ERROR, (gint)code))
        fail_msg("expected code %d, got %d: %s", code, error->code, error->message);
    return error;
}

/* The message must start with "<main file>:<line>: [<group>] <key>: ". */
static void assert_failure_at(const fixture *f, const char *main_text, CorralConfigError code,
                              unsigned line, const char *group, const char *key)
{
    GError *error = load_failure(f, main_text, code);
    char *place = key != NULL
                      ? g_strdup_printf("%s:%u: [%s] %s: ", f->main_file, line, group, key)
                      : g_strdup_printf("%s:%u: [%s]: ", f->main_file, line, group);

    if (!g_str_has_prefix(error->message, place))
        fail_msg("\"%s\" does not start with \"%s\"", error->message, place);
    g_free(place);
    g_error_free(error);
}

static const corral_listener_config *listener_at(const corral_service_config *service,
                                                 guint index)
{
    assert_true(index < service->listeners->len);
    return g_ptr_array_index(service->listeners, index);
}

/* ------------------------------------------------------------------ */
/* Valid configurations                                                */

static void test_minimal_service_gets_every_default(void **state)
{
    fixture *f = *state;
    corral_config *config = load_ok(f, ECHO_SERVICE);
    const corral_service_config *echo;
    char *run_dir = g_build_filename(f->dir, "run", NULL);

    assert_string_equal(config->main_file, f->main_file);
    assert_string_equal(config->dir, f->dir);
    assert_string_equal(config->base_dir, run_dir);
    assert_null(config->policy_dir);
    assert_string_equal(config->files[0], f->main_file);
    assert_null(config->files[1]);
    assert_int_equal(config->services->len, 1);

    echo = g_ptr_array_index(config->services, 0);
    assert_string_equal(echo->name, "echo");
    assert_string_equal(echo->file, f->main_file);
    assert_string_equal(echo->executable, "/usr/libexec/echo-server");
    assert_int_equal(echo->type, CORRAL_SERVICE_DEFAULT);
    assert_string_equal(echo->policy, "dovecot");
    assert_int_equal(echo->process_min_avail, 0);
    assert_int_equal(echo->process_limit, 100);
    assert_int_equal(echo->client_limit, 1000);
    assert_int_equal(echo->service_count, 0);
    assert_int_equal(echo->idle_kill_secs, 60);
    assert_true(echo->vsz_limit == 256 * MIB);
    assert_int_equal(echo->first_status_timeout_msecs, 30000);
    assert_int_equal(echo->status_batch_msecs, 5);
    assert_int_equal(echo->listen_backlog, 65535);
    assert_null(echo->user);
    assert_null(echo->group);
    assert_null(echo->extra_groups);
    assert_null(echo->chroot);
    assert_int_equal(echo->listeners->len, 0);
    assert_int_equal(g_hash_table_size(echo->policy_keys), 0);

    g_free(run_dir);
    corral_config_free(config);
}

static void test_full_service_keeps_every_value(void **state)
{
    fixture *f = *state;
    corral_config *config = load_ok(f, "# a complete service\n"
                                       "[corral]\n"
                                       "base_dir = /var/run/corral-test\n"
                                       "policy_dir = /usr/lib/corral/policies\n"
                                       "\n"
                                       "[service imap]\n"
                                       "executable = /usr/libexec/imap -v\n"
                                       "type = login\n"
                                       "policy = spare\n"
                                       "process_min_avail = 2\n"
                                       "process_limit = 50\n"
                                       "client_limit = 10\n"
                                       "idle_kill = 2m\n"
                                       "vsz_limit = 1G\n"
                                       "user = imapd\n"
                                       "group = mail\n"
                                       "extra_groups = ssl-cert,adm\n"
                                       "chroot = /var/empty\n"
                                       "first_status_timeout = 5s\n"
                                       "status_batch_interval = 20\n"
                                       "listen_backlog = 64\n"
                                       "inet_listener = 127.0.0.1:143\n"
                                       "unix_listener = imap-master\n"
                                       "unix_listener_mode = 0660\n"
                                       "unix_listener_user = dovecot\n"
                                       "unix_listener_group = mail\n");
    const corral_service_config *imap = corral_config_find_service(config, "imap");
    const corral_listener_config *unix_listener, *inet_listener;

    assert_string_equal(config->base_dir, "/var/run/corral-test");
    assert_string_equal(config->policy_dir, "/usr/lib/corral/policies");
    assert_non_null(imap);
    assert_string_equal(imap->executable, "/usr/libexec/imap -v");
    assert_int_equal(imap->type, CORRAL_SERVICE_LOGIN);
    assert_string_equal(imap->policy, "spare");
    assert_int_equal(imap->process_min_avail, 2);
    assert_int_equal(imap->process_limit, 50);
    assert_int_equal(imap->client_limit, 10);
    assert_int_equal(imap->idle_kill_secs, 120);
    assert_true(imap->vsz_limit == 1024 * MIB);
    assert_string_equal(imap->user, "imapd");
    assert_string_equal(imap->group, "mail");
    assert_string_equal(imap->extra_groups, "ssl-cert,adm");
    assert_string_equal(imap->chroot, "/var/empty");
    assert_int_equal(imap->first_status_timeout_msecs, 5000);
    assert_int_equal(imap->status_batch_msecs, 20); /* bare numbers are ms here */
    assert_int_equal(imap->listen_backlog, 64);

    assert_int_equal(imap->listeners->len, 2);
    unix_listener = listener_at(imap, 0);
    assert_int_equal(unix_listener->kind, CORRAL_LISTENER_UNIX);
    assert_string_equal(unix_listener->path, "/var/run/corral-test/imap-master");
    assert_string_equal(unix_listener->name, "imap-master");
    assert_int_equal(unix_listener->mode, 0660);
    assert_string_equal(unix_listener->user, "dovecot");
    assert_string_equal(unix_listener->group, "mail");
    inet_listener = listener_at(imap, 1);
    assert_int_equal(inet_listener->kind, CORRAL_LISTENER_INET);
    assert_string_equal(inet_listener->name, "imap");
    assert_string_equal(inet_listener->address, "127.0.0.1");
    assert_int_equal(inet_listener->port, 143);
    assert_int_equal(g_hash_table_size(imap->policy_keys), 0);

    corral_config_free(config);
}

static void test_zero_means_default(void **state)
{
    corral_config *config = load_ok(*state, ECHO_SERVICE "process_limit = 0\n"
                                                         "client_limit = 0\n"
                                                         "idle_kill = 0\n"
                                                         "vsz_limit = 0\n");
    const corral_service_config *echo = corral_config_find_service(config, "echo");

    assert_int_equal(echo->process_limit, 100);
    assert_int_equal(echo->client_limit, 1000);
    assert_int_equal(echo->idle_kill_secs, 60);
    assert_true(echo->vsz_limit == 0); /* 0 is "no limit", not the default */
    corral_config_free(config);
}

static void test_client_limit_capped_at_service_count(void **state)
{
    corral_config *config = load_ok(*state, "[service capped]\n"
                                            "executable = /bin/a\n"
                                            "client_limit = 50\n"
                                            "service_count = 1\n"
                                            "[service default_limit]\n"
                                            "executable = /bin/b\n"
                                            "service_count = 7\n"
                                            "[service below]\n"
                                            "executable = /bin/c\n"
                                            "client_limit = 3\n"
                                            "service_count = 7\n");

    assert_int_equal(corral_config_find_service(config, "capped")->client_limit, 1);
    assert_int_equal(corral_config_find_service(config, "capped")->service_count, 1);
    assert_int_equal(corral_config_find_service(config, "default_limit")->client_limit, 7);
    assert_int_equal(corral_config_find_service(config, "below")->client_limit, 3);
    corral_config_free(config);
}

static void test_listen_backlog_bounds(void **state)
{
    corral_config *config = load_ok(*state, "[service tiny]\n"
                                            "executable = /bin/a\n"
                                            "process_limit = 1\n"
                                            "client_limit = 1\n"
                                            "[service set_low]\n"
                                            "executable = /bin/a\n"
                                            "listen_backlog = 2\n"
                                            "[service set_high]\n"
                                            "executable = /bin/a\n"
                                            "listen_backlog = 65535\n"
                                            "[service huge]\n"
                                            "executable = /bin/a\n"
                                            "process_limit = 1000000\n"
                                            "client_limit = 2147483647\n");

    assert_int_equal(corral_config_find_service(config, "tiny")->listen_backlog, 4);
    assert_int_equal(corral_config_find_service(config, "set_low")->listen_backlog, 4);
    assert_int_equal(corral_config_find_service(config, "set_high")->listen_backlog, 65535);
    assert_int_equal(corral_config_find_service(config, "huge")->listen_backlog, 65535);
    corral_config_free(config);
}

static void test_inet_listeners(void **state)
{
    corral_config *config =
        load_ok(*state, ECHO_SERVICE "inet_listener = 127.0.0.1:7000; [::1]:7000 ;*:25;"
                                     "[::]:110;[0:0::0:1]:8000;10.0.0.1:0;\n");
    const corral_service_config *echo = corral_config_find_service(config, "echo");
    static const struct {
        const char *address;
        unsigned port;
    } expected[] = {
        { "127.0.0.1", 7000 }, { "::1", 7000 }, { "*", 25 }, { "::", 110 }, { "::1", 8000 },
    };

    /* Port 0 turns 10.0.0.1:0 off; "[0:0::0:1]" is written the short way. */
    assert_int_equal(echo->listeners->len, G_N_ELEMENTS(expected));
    for (guint i = 0; i < G_N_ELEMENTS(expected); i++) {
        const corral_listener_config *listener = listener_at(echo, i);

        assert_int_equal(listener->kind, CORRAL_LISTENER_INET);
        assert_string_equal(listener->name, "echo");
        assert_string_equal(listener->address, expected[i].address);
        assert_int_equal(listener->port, expected[i].port);
        assert_null(listener->path);
    }
    corral_config_free(config);
}

static void test_unix_listeners_come_first(void **state)
{
    fixture *f = *state;
    corral_config *config =
        load_ok(f, ECHO_SERVICE "inet_listener = *:7\n"
                                "unix_listener = echo-a;sub/echo-b;/tmp/echo-c\n");
    const corral_service_config *echo = corral_config_find_service(config, "echo");
    char *expected_a = g_build_filename(f->dir, "run", "echo-a", NULL);
    char *expected_b = g_build_filename(f->dir, "run", "sub", "echo-b", NULL);

    assert_int_equal(echo->listeners->len, 4);
    assert_string_equal(listener_at(echo, 0)->path, expected_a);
    assert_string_equal(listener_at(echo, 0)->name, "echo-a");
    assert_string_equal(listener_at(echo, 1)->path, expected_b);
    assert_string_equal(listener_at(echo, 1)->name, "echo-b");
    assert_string_equal(listener_at(echo, 2)->path, "/tmp/echo-c");
    for (guint i = 0; i < 3; i++) {
        assert_int_equal(listener_at(echo, i)->kind, CORRAL_LISTENER_UNIX);
        assert_int_equal(listener_at(echo, i)->mode, 0600);
        assert_null(listener_at(echo, i)->user);
        assert_null(listener_at(echo, i)->group);
    }
    assert_int_equal(listener_at(echo, 3)->kind, CORRAL_LISTENER_INET);

    g_free(expected_a);
    g_free(expected_b);
    corral_config_free(config);
}

static void test_unix_listener_mode_zero_disables(void **state)
{
    corral_config *config = load_ok(*state, ECHO_SERVICE "unix_listener = echo\n"
                                                         "unix_listener_mode = 0\n"
                                                         "inet_listener = *:7\n");
    const corral_service_config *echo = corral_config_find_service(config, "echo");

    assert_int_equal(echo->listeners->len, 1);
    assert_int_equal(listener_at(echo, 0)->kind, CORRAL_LISTENER_INET);
    corral_config_free(config);
}

static void test_relative_paths_resolve(void **state)
{
    fixture *f = *state;
    corral_config *config = load_ok(f, "[corral]\n"
                                       "base_dir = state/run\n"
                                       "policy_dir = ./policies/\n"
                                       "[service jailed]\n"
                                       "executable = /bin/a\n"
                                       "chroot = jail/\n"
                                       "unix_listener = ../sockets/jailed\n"
                                       "[service rooted]\n"
                                       "executable = /bin/a\n"
                                       "chroot = /srv/jail//\n");
    char *base_dir = g_build_filename(f->dir, "state", "run", NULL);
    char *policy_dir = g_build_filename(f->dir, "policies", NULL);
    char *chroot_dir = g_build_filename(base_dir, "jail", NULL);
    char *socket = g_build_filename(f->dir, "state", "sockets", "jailed", NULL);
    const corral_service_config *jailed = corral_config_find_service(config, "jailed");

    assert_string_equal(config->base_dir, base_dir);
    assert_string_equal(config->policy_dir, policy_dir);
    assert_string_equal(jailed->chroot, chroot_dir);
    assert_string_equal(listener_at(jailed, 0)->path, socket);
    assert_string_equal(corral_config_find_service(config, "rooted")->chroot, "/srv/jail");

    g_free(base_dir);
    g_free(policy_dir);
    g_free(chroot_dir);
    g_free(socket);
    corral_config_free(config);
}

static void test_main_file_given_relative(void **state)
{
    fixture *f = *state;
    char *old_cwd = g_get_current_dir();
    char *run_dir = g_build_filename(f->dir, "run", NULL);
    GError *error = NULL;
    corral_config *config;

    g_free(write_file(f, "corral.conf", ECHO_SERVICE));
    assert_int_equal(chdir(f->dir), 0);
    config = corral_config_load("corral.conf", &error);
    assert_int_equal(chdir(old_cwd), 0);

    assert_non_null(config);
    assert_string_equal(config->main_file, f->main_file);
    assert_string_equal(config->dir, f->dir);
    assert_string_equal(config->base_dir, run_dir);

    g_free(old_cwd);
    g_free(run_dir);
    corral_config_free(config);
}

static void test_conf_d_lexical_order_and_later_wins(void **state)
{
    fixture *f = *state;
    char *first = write_file(f, "conf.d/10-b.conf", "[corral]\nbase_dir = /from/10\n"
                                                    "[service b]\nexecutable = /bin/b\n");
    char *second = write_file(f, "conf.d/20-a.conf", "[service a]\nexecutable = /bin/a\n");
    char *third = write_file(f, "conf.d/9-c.conf", "[corral]\nbase_dir = /from/9\n"
                                                   "policy_dir = /from/9/policies\n"
                                                   "[service c]\nexecutable = /bin/c\n");
    corral_config *config = load_ok(f, "[corral]\n"
                                       "base_dir = /from/main\n"
                                       "policy_dir = /from/main/policies\n"
                                       "[service main]\n"
                                       "executable = /bin/main\n");
    static const char *const service_order[] = { "main", "b", "a", "c" };

    /* strcmp order: "10-b" < "20-a" < "9-c". */
    assert_string_equal(config->files[0], f->main_file);
    assert_string_equal(config->files[1], first);
    assert_string_equal(config->files[2], second);
    assert_string_equal(config->files[3], third);
    assert_null(config->files[4]);
    assert_int_equal(config->services->len, G_N_ELEMENTS(service_order));
    for (guint i = 0; i < G_N_ELEMENTS(service_order); i++) {
        const corral_service_config *service = g_ptr_array_index(config->services, i);

        assert_string_equal(service->name, service_order[i]);
    }
    assert_string_equal(corral_config_find_service(config, "b")->file, first);
    assert_string_equal(config->base_dir, "/from/9");
    assert_string_equal(config->policy_dir, "/from/9/policies");

    g_free(first);
    g_free(second);
    g_free(third);
    corral_config_free(config);
}

static void test_conf_d_reads_only_conf_files(void **state)
{
    fixture *f = *state;
    char *wanted = write_file(f, "conf.d/echo.conf", ECHO_SERVICE);
    corral_config *config;

    g_free(write_file(f, "conf.d/README", "not a keyfile\n"));
    g_free(write_file(f, "conf.d/echo.conf.disabled", "not a keyfile\n"));
    g_free(write_file(f, "conf.d/.hidden.conf", "not a keyfile\n"));
    config = load_ok(f, "# nothing here\n");

    assert_string_equal(config->files[1], wanted);
    assert_null(config->files[2]);
    assert_non_null(corral_config_find_service(config, "echo"));
    g_free(wanted);
    corral_config_free(config);
}

static void test_policy_keys_kept_for_the_policy(void **state)
{
    corral_config *config = load_ok(*state, ECHO_SERVICE "policy = spare\n"
                                                         "spare = 3\n"
                                                         "ramp_interval = 1500ms \n"
                                                         "Process_limit = 5\n");
    const corral_service_config *echo = corral_config_find_service(config, "echo");

    assert_int_equal(g_hash_table_size(echo->policy_keys), 3);
    assert_string_equal(g_hash_table_lookup(echo->policy_keys, "spare"), "3");
    assert_string_equal(g_hash_table_lookup(echo->policy_keys, "ramp_interval"), "1500ms");
    /* Key names are case-sensitive: this is not process_limit. */
    assert_string_equal(g_hash_table_lookup(echo->policy_keys, "Process_limit"), "5");
    assert_int_equal(echo->process_limit, 100);
    assert_null(g_hash_table_lookup(echo->policy_keys, "policy"));
    corral_config_free(config);
}

static void test_key_lines_recorded(void **state)
{
    corral_config *config = load_ok(*state, "# comment\n"
                                            "\n" ECHO_SERVICE "  # indented comment\n"
                                            "spare = 3\n");
    const corral_service_config *echo = corral_config_find_service(config, "echo");

    assert_int_equal(GPOINTER_TO_UINT(g_hash_table_lookup(echo->key_lines, "executable")), 4);
    assert_int_equal(GPOINTER_TO_UINT(g_hash_table_lookup(echo->key_lines, "spare")), 6);
    corral_config_free(config);
}

static void test_comments_and_repeated_keys(void **state)
{
    corral_config *config = load_ok(*state, "# leading comment\n"
                                            "[service echo]\n"
                                            "# executable = /bin/commented-out\n"
                                            "executable = /bin/first\n"
                                            "process_limit = 5\n"
                                            "   # indented comment\n"
                                            "executable = /bin/second\n");
    const corral_service_config *echo = corral_config_find_service(config, "echo");

    assert_string_equal(echo->executable, "/bin/second");
    assert_int_equal(echo->process_limit, 5);
    assert_int_equal(GPOINTER_TO_UINT(g_hash_table_lookup(echo->key_lines, "executable")), 7);
    corral_config_free(config);
}

static void test_idle_kill_forms(void **state)
{
    static const struct {
        const char *text;
        unsigned secs;
    } cases[] = {
        { "60", 60 },           { "60s", 60 },
        { "2m", 120 },          { "1h", 3600 },
        { "500ms", 1 },         { "1500ms", 2 },
        { "1 min", 60 },        { "infinite", CORRAL_IDLE_KILL_NEVER },
        { "never", CORRAL_IDLE_KILL_NEVER }, { "4294967295", CORRAL_IDLE_KILL_NEVER },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *text = g_strdup_printf(ECHO_SERVICE "idle_kill = %s\n", cases[i].text);
        corral_config *config = load_ok(*state, text);

        assert_int_equal(corral_config_find_service(config, "echo")->idle_kill_secs,
                         cases[i].secs);
        corral_config_free(config);
        g_free(text);
    }
}

static void test_service_types(void **state)
{
    corral_config *config = load_ok(*state, "[service l]\nexecutable = /l\ntype = login\n"
                                            "[service w]\nexecutable = /w\ntype = worker\n"
                                            "[service s]\nexecutable = /s\ntype = startup\n"
                                            "[service d]\nexecutable = /d\ntype =\n");

    assert_int_equal(corral_config_find_service(config, "l")->type, CORRAL_SERVICE_LOGIN);
    assert_int_equal(corral_config_find_service(config, "w")->type, CORRAL_SERVICE_WORKER);
    assert_int_equal(corral_config_find_service(config, "s")->type, CORRAL_SERVICE_STARTUP);
    assert_int_equal(corral_config_find_service(config, "d")->type, CORRAL_SERVICE_DEFAULT);
    assert_null(corral_config_find_service(config, "missing"));
    assert_null(corral_config_find_service(NULL, "l"));
    corral_config_free(config);
}

/* ------------------------------------------------------------------ */
/* The shared value parsers                                            */

static void test_parse_uint(void **state)
{
    guint64 value = 0;
    char *problem = NULL;

    (void)state;
    assert_true(corral_parse_uint("0", 10, &value, NULL));
    assert_true(value == 0);
    assert_true(corral_parse_uint("18446744073709551615", G_MAXUINT64, &value, NULL));
    assert_true(value == G_MAXUINT64);

    assert_false(corral_parse_uint("18446744073709551616", G_MAXUINT64, &value, &problem));
    assert_contains(problem, "too large");
    g_clear_pointer(&problem, g_free);
    assert_false(corral_parse_uint("11", 10, &value, &problem));
    assert_string_equal(problem, "'11' is too large (maximum 10)");
    g_clear_pointer(&problem, g_free);
    assert_false(corral_parse_uint("-1", 10, &value, &problem));
    assert_string_equal(problem, "'-1' is negative");
    g_clear_pointer(&problem, g_free);
    assert_false(corral_parse_uint("12abc", 100, &value, &problem));
    assert_string_equal(problem, "'12abc' is not a number");
    g_clear_pointer(&problem, g_free);
    assert_false(corral_parse_uint("", 100, &value, &problem));
    assert_contains(problem, "empty");
    g_clear_pointer(&problem, g_free);
    assert_false(corral_parse_uint("+5", 100, &value, NULL));
    assert_false(corral_parse_uint("0x10", 100, &value, NULL));
    assert_false(corral_parse_uint(" 5", 100, &value, NULL));
    assert_true(value == G_MAXUINT64); /* failures leave the output alone */
}

static void test_parse_duration(void **state)
{
    static const struct {
        const char *text;
        guint64 msecs;
    } good[] = {
        { "60", 60000 },    { "60s", 60000 }, { "500ms", 500 },     { "2m", 120000 },
        { "1h", 3600000 },  { "1d", 86400000 }, { "3 secs", 3000 }, { "1W", 604800000 },
    };
    static const char *const bad[] = {
        "", "s", "-5s", "1.5s", "10x", "5 parsecs", "99999999999999999999", "18446744073709552s",
    };
    guint64 msecs = 0;
    char *problem = NULL;

    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        assert_true(corral_parse_duration_msecs(good[i].text, 1000, &msecs, NULL));
        assert_true(msecs == good[i].msecs);
    }
    assert_true(corral_parse_duration_msecs("250", 1, &msecs, NULL));
    assert_true(msecs == 250); /* a bare number is in the caller's unit */
    assert_false(corral_parse_duration_msecs("250", 0, &msecs, &problem));
    assert_contains(problem, "needs a unit");
    g_clear_pointer(&problem, g_free);

    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (corral_parse_duration_msecs(bad[i], 1000, &msecs, &problem))
            fail_msg("'%s' was accepted as a duration", bad[i]);
        assert_non_null(problem);
        g_clear_pointer(&problem, g_free);
    }
    assert_false(corral_parse_duration_msecs("10x", 1000, &msecs, &problem));
    assert_string_equal(problem, "'10x' is not a duration (unknown unit 'x')");
    g_free(problem);
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *text;
        guint64 bytes;
    } good[] = {
        { "0", 0 },         { "1024", 1024 },        { "512k", 512 * 1024 },
        { "256M", 256 * MIB }, { "2G", 2048 * MIB }, { "1 TB", 1024 * 1024 * MIB },
        { "64b", 64 },      { "3mb", 3 * MIB },
    };
    static const char *const bad[] = { "", "M", "-1M", "1.5G", "12Q", "17179869184G" };
    guint64 bytes = 0;
    char *problem = NULL;

    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        assert_true(corral_parse_size(good[i].text, &bytes, NULL));
        assert_true(bytes == good[i].bytes);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        if (corral_parse_size(bad[i], &bytes, &problem))
            fail_msg("'%s' was accepted as a size", bad[i]);
        assert_non_null(problem);
        g_clear_pointer(&problem, g_free);
    }
}

static void test_parse_bool(void **state)
{
    static const char *const truths[] = { "yes", "YES", "true", "1" };
    static const char *const lies[] = { "no", "False", "false", "0" };
    bool value;
    char *problem = NULL;

    (void)state;
    for (size_t i = 0; i < G_N_ELEMENTS(truths); i++) {
        value = false;
        assert_true(corral_parse_bool(truths[i], &value, NULL));
        assert_true(value);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(lies); i++) {
        value = true;
        assert_true(corral_parse_bool(lies[i], &value, NULL));
        assert_false(value);
    }
    assert_false(corral_parse_bool("maybe", &value, &problem));
    assert_string_equal(problem, "'maybe' is not a boolean (use yes or no)");
    g_free(problem);
    assert_false(corral_parse_bool("", &value, NULL));
}

/* ------------------------------------------------------------------ */
/* Bad input                                                           */

static void test_error_unknown_group(void **state)
{
    assert_failure_at(*state, ECHO_SERVICE "[listener echo]\nport = 7\n",
                      CORRAL_CONFIG_ERROR_KEY, 3, "listener echo", NULL);
    assert_failure_at(*state, "[Corral]\nbase_dir = /x\n", CORRAL_CONFIG_ERROR_KEY, 1, "Corral",
                      NULL);
    assert_failure_at(*state, "[service]\nexecutable = /x\n", CORRAL_CONFIG_ERROR_KEY, 1,
                      "service", NULL);
    assert_failure_at(*state, "[service a/b]\nexecutable = /x\n", CORRAL_CONFIG_ERROR_KEY, 1,
                      "service a/b", NULL);
}

static void test_error_unknown_corral_key(void **state)
{
    GError *error = load_failure(*state, "[corral]\nbase_dir = /x\nbasedir = /y\n",
                                 CORRAL_CONFIG_ERROR_KEY);

    assert_contains(error->message, "corral.conf:3: [corral] basedir: unknown key");
    g_error_free(error);
}

static void test_log_level_and_control_group(void **state)
{
    corral_config *config = load_ok(*state, "[corral]\nlog_level = Warning\n"
                                             "control_group = corral-view\n");

    assert_int_equal(config->log_level, CORRAL_LEVEL_WARNING);
    assert_string_equal(config->control_group, "corral-view");
    corral_config_free(config);
    config = load_ok(*state, "[corral]\ncontrol_group =\n");
    assert_int_equal(config->log_level, CORRAL_LEVEL_INFO);
    assert_null(config->control_group);
    corral_config_free(config);
    assert_failure_at(*state, "[corral]\nlog_level = loud\n", CORRAL_CONFIG_ERROR_VALUE, 2,
                      "corral", "log_level");
    assert_failure_at(*state, "[corral]\nlog_level = fatal\n", CORRAL_CONFIG_ERROR_VALUE, 2,
                      "corral", "log_level");
}

static void test_error_duplicate_service_same_file(void **state)
{
    fixture *f = *state;
    GError *error = load_failure(f, ECHO_SERVICE "\n[service other]\nexecutable = /x\n"
                                                 "[service  echo ]\nprocess_limit = 3\n",
                                 CORRAL_CONFIG_ERROR_DUPLICATE);
    char *expected = g_strdup_printf("%s:6: [service echo]: service 'echo' is already "
                                     "defined at %s:1",
                                     f->main_file, f->main_file);

    assert_string_equal(error->message, expected);
    g_free(expected);
    g_error_free(error);
}

static void test_error_duplicate_service_across_files(void **state)
{
    fixture *f = *state;
    char *other = write_file(f, "conf.d/50-echo.conf", "# again\n" ECHO_SERVICE);
    GError *error = load_failure(f, "\n" ECHO_SERVICE, CORRAL_CONFIG_ERROR_DUPLICATE);
    char *expected = g_strdup_printf("%s:2: [service echo]: service 'echo' is already "
                                     "defined at %s:2",
                                     other, f->main_file);

    assert_string_equal(error->message, expected);
    g_free(expected);
    g_free(other);
    g_error_free(error);
}

static void test_error_missing_or_empty_executable(void **state)
{
    assert_failure_at(*state, "[service echo]\nprocess_limit = 3\n", CORRAL_CONFIG_ERROR_VALUE,
                      1, "service echo", "executable");
    assert_failure_at(*state, "[service echo]\nexecutable =   \n", CORRAL_CONFIG_ERROR_VALUE, 2,
                      "service echo", "executable");
}

static void test_error_bad_number_in_conf_d(void **state)
{
    fixture *f = *state;
    char *path = write_file(f, "conf.d/10-echo.conf", "# echo\n"
                                                      "\n"
                                                      "[service echo]\n"
                                                      "executable = /bin/echo\n"
                                                      "process_min_avail = 1\n"
                                                      "client_limit = 5\n"
                                                      "process_limit = abc\n");
    GError *error = load_failure(f, "", CORRAL_CONFIG_ERROR_VALUE);
    char *expected =
        g_strdup_printf("%s:7: [service echo] process_limit: 'abc' is not a number", path);

    assert_string_equal(error->message, expected);
    g_free(expected);
    g_free(path);
    g_error_free(error);
}

static void test_error_negative_overflow_and_bounds(void **state)
{
    static const struct {
        const char *line;
        const char *key;
        const char *problem;
    } cases[] = {
        { "process_limit = -5", "process_limit", "'-5' is negative" },
        { "client_limit = 99999999999999999999", "client_limit", "too large" },
        { "process_limit = 1000001", "process_limit", "maximum 1000000" },
        { "client_limit = 2147483648", "client_limit", "maximum 2147483647" },
        { "service_count = 4294967296", "service_count", "maximum 4294967295" },
        { "process_min_avail =", "process_min_avail", "empty" },
        { "listen_backlog = 12 ", "listen_backlog", NULL },
        { "unix_listener_mode = 0800", "unix_listener_mode", "octal" },
        { "unix_listener_mode = 01777", "unix_listener_mode", "octal" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *text = g_strdup_printf(ECHO_SERVICE "%s\n", cases[i].line);

        if (cases[i].problem == NULL) { /* trailing blanks are not junk */
            corral_config_free(load_ok(*state, text));
        } else {
            GError *error = load_failure(*state, text, CORRAL_CONFIG_ERROR_VALUE);

            assert_contains(error->message, "corral.conf:3: [service echo] ");
            assert_contains(error->message, cases[i].key);
            assert_contains(error->message, cases[i].problem);
            g_error_free(error);
        }
        g_free(text);
    }
}

static void test_error_bad_duration(void **state)
{
    GError *error = load_failure(*state, ECHO_SERVICE "idle_kill = 5 fortnights\n",
                                 CORRAL_CONFIG_ERROR_VALUE);

    assert_contains(error->message, "corral.conf:3: [service echo] idle_kill: ");
    assert_contains(error->message, "unknown unit 'fortnights'");
    g_error_free(error);

    assert_failure_at(*state, ECHO_SERVICE "first_status_timeout = 0\n",
                      CORRAL_CONFIG_ERROR_VALUE, 3, "service echo", "first_status_timeout");
    assert_failure_at(*state, ECHO_SERVICE "first_status_timeout = 60d\n",
                      CORRAL_CONFIG_ERROR_VALUE, 3, "service echo", "first_status_timeout");
    assert_failure_at(*state, ECHO_SERVICE "idle_kill = 4294967296\n",
                      CORRAL_CONFIG_ERROR_VALUE, 3, "service echo", "idle_kill");
    assert_failure_at(*state, ECHO_SERVICE "status_batch_interval = 2s\n",
                      CORRAL_CONFIG_ERROR_VALUE, 3, "service echo", "status_batch_interval");
    assert_failure_at(*state, ECHO_SERVICE "status_batch_interval = soon\n",
                      CORRAL_CONFIG_ERROR_VALUE, 3, "service echo", "status_batch_interval");
}

static void test_error_bad_size(void **state)
{
    GError *error = load_failure(*state, ECHO_SERVICE "vsz_limit = 512k\n",
                                 CORRAL_CONFIG_ERROR_VALUE);

    assert_contains(error->message, "corral.conf:3: [service echo] vsz_limit: '512k' is too low");
    g_error_free(error);

    assert_failure_at(*state, ECHO_SERVICE "vsz_limit = lots\n", CORRAL_CONFIG_ERROR_VALUE, 3,
                      "service echo", "vsz_limit");
    assert_failure_at(*state, ECHO_SERVICE "vsz_limit = 1048575\n", CORRAL_CONFIG_ERROR_VALUE, 3,
                      "service echo", "vsz_limit");
}

static void test_error_bad_listener_address(void **state)
{
    static const struct {
        const char *value;
        const char *problem;
    } cases[] = {
        { "localhost:25", "'localhost' is not a numeric IPv4 address" },
        { "256.0.0.1:25", "not a numeric IPv4 address" },
        { "[::g]:25", "'::g' is not a numeric IPv6 address" },
        { "[127.0.0.1]:25", "not a numeric IPv6 address" },
        { "::1:25", "in brackets" },
        { "[::1:25", "no ']'" },
        { "127.0.0.1", "no port" },
        { "[::1]", "no port" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *text = g_strdup_printf(ECHO_SERVICE "inet_listener = *:7;%s\n", cases[i].value);
        GError *error = load_failure(*state, text, CORRAL_CONFIG_ERROR_VALUE);

        assert_contains(error->message, "corral.conf:3: [service echo] inet_listener: ");
        assert_contains(error->message, cases[i].problem);
        g_error_free(error);
        g_free(text);
    }
}

static void test_error_bad_listener_port(void **state)
{
    static const struct {
        const char *value;
        const char *problem;
    } cases[] = {
        { "*:65536", "port '65536' is too large (maximum 65535)" },
        { "*:http", "port 'http' is not a number" },
        { "[::]:-1", "port '-1' is negative" },
        { "*:", "no port" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *text = g_strdup_printf(ECHO_SERVICE "inet_listener = %s\n", cases[i].value);
        GError *error = load_failure(*state, text, CORRAL_CONFIG_ERROR_VALUE);

        assert_contains(error->message, "corral.conf:3: [service echo] inet_listener: ");
        assert_contains(error->message, cases[i].problem);
        g_error_free(error);
        g_free(text);
    }
}

static void test_error_duplicate_listener(void **state)
{
    assert_failure_at(*state, ECHO_SERVICE "inet_listener = *:7;127.0.0.1:8;*:7\n",
                      CORRAL_CONFIG_ERROR_DUPLICATE, 3, "service echo", "inet_listener");
    assert_failure_at(*state, ECHO_SERVICE "inet_listener = [::1]:7;[0::1]:7\n",
                      CORRAL_CONFIG_ERROR_DUPLICATE, 3, "service echo", "inet_listener");
    assert_failure_at(*state, ECHO_SERVICE "unix_listener = echo;./echo\n",
                      CORRAL_CONFIG_ERROR_DUPLICATE, 3, "service echo", "unix_listener");
}

static void test_error_min_avail_above_limit(void **state)
{
    GError *error = load_failure(*state, ECHO_SERVICE "process_limit = 3\n"
                                                      "process_min_avail = 4\n",
                                 CORRAL_CONFIG_ERROR_VALUE);

    assert_contains(error->message, "corral.conf:4: [service echo] process_min_avail: "
                                    "process_min_avail is higher than process_limit");
    g_error_free(error);

    /* Against the default limit of 100. */
    assert_failure_at(*state, ECHO_SERVICE "process_min_avail = 101\n",
                      CORRAL_CONFIG_ERROR_VALUE, 3, "service echo", "process_min_avail");
}

static void test_error_bad_type_or_policy(void **state)
{
    GError *error = load_failure(*state, ECHO_SERVICE "type = anvil\n", CORRAL_CONFIG_ERROR_VALUE);

    assert_contains(error->message, "corral.conf:3: [service echo] type: "
                                    "type 'anvil' is not supported");
    g_error_free(error);

    error = load_failure(*state, ECHO_SERVICE "type = Login\n", CORRAL_CONFIG_ERROR_VALUE);
    assert_contains(error->message, "corral.conf:3: [service echo] type: "
                                    "unknown service type 'Login'");
    g_error_free(error);

    assert_failure_at(*state, ECHO_SERVICE "policy = ../evil\n", CORRAL_CONFIG_ERROR_VALUE, 3,
                      "service echo", "policy");
    assert_failure_at(*state, ECHO_SERVICE "policy =\n", CORRAL_CONFIG_ERROR_VALUE, 3,
                      "service echo", "policy");
}

static void test_error_syntax_names_line(void **state)
{
    fixture *f = *state;
    GError *error = load_failure(f, ECHO_SERVICE "this line is not a key\n",
                                 CORRAL_CONFIG_ERROR_SYNTAX);
    char *place = g_strdup_printf("%s:3: ", f->main_file);

    assert_true(g_str_has_prefix(error->message, place));
    g_free(place);
    g_error_free(error);

    error = load_failure(f, "executable = /bin/x\n", CORRAL_CONFIG_ERROR_SYNTAX);
    assert_contains(error->message, "corral.conf:1: ");
    g_error_free(error);
}

static void test_error_unreadable_files(void **state)
{
    fixture *f = *state;
    GError *error = NULL;
    char *missing = g_build_filename(f->dir, "absent.conf", NULL);

    assert_null(corral_config_load(missing, &error));
    assert_true(g_error_matches(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_IO));
    assert_contains(error->message, missing);
    assert_contains(error->message, "No such file");
    g_clear_error(&error);

    /* A folder that ends in .conf is not a configuration file. */
    g_free(write_file(f, "conf.d/20-dir.conf/inner", "x"));
    error = load_failure(f, ECHO_SERVICE, CORRAL_CONFIG_ERROR_IO);
    assert_contains(error->message, "conf.d/20-dir.conf: ");
    g_error_free(error);
    g_free(missing);
}

static void test_error_absurd_listen_backlog(void **state)
{
    assert_failure_at(*state, ECHO_SERVICE "listen_backlog = 99999999999\n",
                      CORRAL_CONFIG_ERROR_VALUE, 3, "service echo", "listen_backlog");
}

static void test_where_names_file_line_group_and_key(void **state)
{
    corral_config *config = load_ok(*state, "[service where]\n"
                                            "executable = /bin/a\n"
                                            "user = nobody\n");
    const corral_service_config *service = corral_config_find_service(config, "where");
    char *user = corral_service_config_where(service, "user");
    char *group = corral_service_config_where(service, "group");
    char *base_dir = corral_config_where(config, "base_dir");
    char *expected_user = g_strdup_printf("%s:3: [service where] user", service->file);
    char *expected_group = g_strdup_printf("%s: [service where] group", service->file);
    char *expected_base_dir = g_strdup_printf("%s: [corral] base_dir", config->main_file);

    assert_string_equal(user, expected_user);
    assert_string_equal(group, expected_group);        /* not set: no line */
    assert_string_equal(base_dir, expected_base_dir);  /* the default */
    g_free(user);
    g_free(group);
    g_free(base_dir);
    g_free(expected_user);
    g_free(expected_group);
    g_free(expected_base_dir);
    corral_config_free(config);
}

static void test_error_bad_escape_names_key(void **state)
{
    assert_failure_at(*state, ECHO_SERVICE "user = a\\qb\n", CORRAL_CONFIG_ERROR_VALUE, 3,
                      "service echo", "user");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_minimal_service_gets_every_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_service_keeps_every_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_means_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_limit_capped_at_service_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_listen_backlog_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inet_listeners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_listeners_come_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_listener_mode_zero_disables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relative_paths_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_main_file_given_relative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf_d_lexical_order_and_later_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_conf_d_reads_only_conf_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_keys_kept_for_the_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_lines_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_comments_and_repeated_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_kill_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_types, setup, teardown),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test_setup_teardown(test_error_unknown_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unknown_corral_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_level_and_control_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_duplicate_service_same_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_duplicate_service_across_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_missing_or_empty_executable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_number_in_conf_d, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_negative_overflow_and_bounds, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_duration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_listener_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_listener_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_duplicate_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_min_avail_above_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_type_or_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_syntax_names_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_unreadable_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_bad_escape_names_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_absurd_listen_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_where_names_file_line_group_and_key, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
