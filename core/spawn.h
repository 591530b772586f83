/* SPDX-License-Identifier: MIT */
/*
 * spawn.h - starting one child process on the vfork-style path.
 *
 * Children are created with clone(CLONE_VM | CLONE_VFORK): the parent's
 * memory is not copied, so the cost stays flat however large the master
 * grows, and the parent resumes only once the child has exec()ed or failed.
 * Between clone and exec the child sets up its descriptors, limits and
 * credentials with plain system calls.
 */
#ifndef CORRAL_SPAWN_H
#define CORRAL_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct corral_spawn_request {
    const char *path;
    char *const *argv;
    char *const *envp;
    /* fd_map[i] is the master's descriptor to appear at fd i in the child,
     * or -1 to leave fd i closed.  Every other descriptor is close-on-exec. */
    const int *fd_map;
    int fd_count;
    /* RLIMIT_AS and RLIMIT_DATA in bytes; 0 leaves them alone. */
    uint64_t memory_limit;
    /* Credentials, applied only when the master runs as root.
     * (uid_t)-1 / (gid_t)-1 mean "unchanged". */
    uid_t uid;
    gid_t gid;
    const gid_t *groups;
    int group_count;     /* -1 leaves the supplementary groups alone */
    const char *chroot_dir; /* NULL for none */
    /* The child's working folder before any chroot (Dovecot's children
     * start in base_dir); NULL leaves it.  The child's umask is 0077. */
    const char *work_dir;
    /* The service's working_directory: entered after the credentials
     * change, inside any chroot; NULL leaves the child in work_dir. */
    const char *working_directory;
    /* The child leads a new session and process group (setsid()), so that
     * the master can signal it together with everything it forks. */
    bool new_session;
    /* When set, the child writes its own pid there in decimal (with a NUL,
     * within own_pid_text_size) before exec: the text may be the tail of
     * an envp entry, which is how LISTEN_PID names the child itself.  The
     * pid is not known before clone() returns, and the child shares the
     * master's memory until exec, so it fills the master's buffer. */
    char *own_pid_text;
    size_t own_pid_text_size;
} corral_spawn_request;

/* The step of the child's setup that failed, for the error message. */
typedef enum corral_spawn_step {
    CORRAL_SPAWN_STEP_NONE,
    CORRAL_SPAWN_STEP_CLONE,
    CORRAL_SPAWN_STEP_FDS,
    CORRAL_SPAWN_STEP_CHDIR,
    CORRAL_SPAWN_STEP_RLIMIT,
    CORRAL_SPAWN_STEP_GROUPS,
    CORRAL_SPAWN_STEP_SETGID,
    CORRAL_SPAWN_STEP_CHROOT,
    CORRAL_SPAWN_STEP_SETUID,
    CORRAL_SPAWN_STEP_EXEC,
    CORRAL_SPAWN_STEP_SETSID,
} corral_spawn_step;

typedef struct corral_spawn_failure {
    corral_spawn_step step;
    int error;           /* errno */
} corral_spawn_failure;

/* Returns the child's pid, or -1 with *failure filled in when no child
 * was created.  A child whose set-up or exec() failed is returned too,
 * with *failure filled in: it has exited (84 for exec(), 89 otherwise) and
 * is left to be reaped like any other. */
pid_t corral_spawn(const corral_spawn_request *request, corral_spawn_failure *failure);

const char *corral_spawn_step_name(corral_spawn_step step);

#endif
