/* SPDX-License-Identifier: MIT */
#include "spawn.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* What the child reads and writes.  CLONE_VM shares this memory with the
 * parent, which is how the child reports a failed step back. */
typedef struct spawn_context {
    const corral_spawn_request *request;
    int staging_base;
    volatile corral_spawn_step failed_step;
    volatile int failed_errno;
} spawn_context;

#define CHILD_STACK_SIZE (64 * 1024)

static _Noreturn void child_fail(spawn_context *ctx, corral_spawn_step step)
{
    ctx->failed_errno = errno;
    ctx->failed_step = step;
    /* Dovecot's "exec() failed", or its "Fatal failure" for the set-up
     * before it. */
    _exit(step == CORRAL_SPAWN_STEP_EXEC ? 84 : 89);
}

/* Moves every source to a staging range above all sources and targets
 * first, so that no dup2() can overwrite a source still to be placed; the
 * second dup2() also clears close-on-exec when source and target match. */
static bool child_arrange_fds(const spawn_context *ctx)
{
    const corral_spawn_request *req = ctx->request;
    int i;

    for (i = 0; i < req->fd_count; i++) {
        if (req->fd_map[i] >= 0 && dup2(req->fd_map[i], ctx->staging_base + i) < 0)
            return false;
    }
    for (i = 0; i < req->fd_count; i++) {
        if (req->fd_map[i] < 0) {
            (void)close(i);
            continue;
        }
        if (dup2(ctx->staging_base + i, i) < 0)
            return false;
    }
    /* Also takes the staging copies, and any descriptor corrald itself
     * inherited without close-on-exec. */
    return close_range((unsigned)req->fd_count, ~0U, 0) == 0;
}

/* Formats without the C library, which this child must not enter with
 * locks the parent may hold. */
static void write_decimal(char *out, size_t size, long value)
{
    char digits[24];
    size_t count = 0;

    if (size == 0)
        return;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && count < sizeof(digits));
    if (count + 1 > size)
        count = 0; /* does not fit: leave the text empty rather than wrong */
    for (size_t i = 0; i < count; i++)
        out[i] = digits[count - 1 - i];
    out[count] = '\0';
}

/* Uses raw system calls for credentials: glibc's wrappers would signal the
 * master's other threads, which this child shares memory with. */
static int child_main(void *arg)
{
    spawn_context *ctx = arg;
    const corral_spawn_request *req = ctx->request;
    struct sigaction dfl = { .sa_handler = SIG_DFL };
    sigset_t none;
    int signo;

    /* Default dispositions, but SIGPIPE stays ignored as Dovecot's
     * children inherit it: a worker writing to a gone client gets EPIPE. */
    for (signo = 1; signo < NSIG; signo++) {
        if (signo != SIGKILL && signo != SIGSTOP && signo != SIGPIPE)
            (void)sigaction(signo, &dfl, NULL);
    }
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);

    if (req->own_pid_text != NULL)
        write_decimal(req->own_pid_text, req->own_pid_text_size, syscall(SYS_getpid));
    if (req->new_session && setsid() < 0)
        child_fail(ctx, CORRAL_SPAWN_STEP_SETSID);
    if (!child_arrange_fds(ctx))
        child_fail(ctx, CORRAL_SPAWN_STEP_FDS);
    /* The process state Dovecot's master gives its children. */
    (void)umask(0077);
    if (req->work_dir != NULL && chdir(req->work_dir) < 0)
        child_fail(ctx, CORRAL_SPAWN_STEP_CHDIR);

    if (req->memory_limit != 0) {
        struct rlimit limit = { req->memory_limit, req->memory_limit };
        if (setrlimit(RLIMIT_AS, &limit) < 0 || setrlimit(RLIMIT_DATA, &limit) < 0)
            child_fail(ctx, CORRAL_SPAWN_STEP_RLIMIT);
    }
    if (req->group_count >= 0 &&
        syscall(SYS_setgroups, (size_t)req->group_count, req->groups) < 0)
        child_fail(ctx, CORRAL_SPAWN_STEP_GROUPS);
    if (req->gid != (gid_t)-1 && syscall(SYS_setresgid, req->gid, req->gid, req->gid) < 0)
        child_fail(ctx, CORRAL_SPAWN_STEP_SETGID);
    if (req->chroot_dir != NULL && (chroot(req->chroot_dir) < 0 || chdir("/") < 0))
        child_fail(ctx, CORRAL_SPAWN_STEP_CHROOT);
    if (req->uid != (uid_t)-1 && syscall(SYS_setresuid, req->uid, req->uid, req->uid) < 0)
        child_fail(ctx, CORRAL_SPAWN_STEP_SETUID);
    if (req->working_directory != NULL && chdir(req->working_directory) < 0)
        child_fail(ctx, CORRAL_SPAWN_STEP_CHDIR);

    execve(req->path, req->argv, req->envp);
    child_fail(ctx, CORRAL_SPAWN_STEP_EXEC);
}

static int highest_fd(const corral_spawn_request *req)
{
    int highest = req->fd_count;

    for (int i = 0; i < req->fd_count; i++) {
        if (req->fd_map[i] > highest)
            highest = req->fd_map[i];
    }
    return highest;
}

pid_t corral_spawn(const corral_spawn_request *request, corral_spawn_failure *failure)
{
    /* One stack serves every spawn: CLONE_VFORK keeps the parent waiting
     * until the child has left it. */
    static void *child_stack;
    spawn_context ctx = { .request = request };
    sigset_t all, saved;
    pid_t pid;

    failure->step = CORRAL_SPAWN_STEP_NONE;
    failure->error = 0;
    if (child_stack == NULL) {
        child_stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (child_stack == MAP_FAILED) {
            child_stack = NULL;
            failure->step = CORRAL_SPAWN_STEP_CLONE;
            failure->error = errno;
            return -1;
        }
    }
    ctx.staging_base = highest_fd(request) + 1;

    /* No signal handler of the master may run in the child before its
     * dispositions are reset. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid = clone(child_main, (char *)child_stack + CHILD_STACK_SIZE,
                CLONE_VM | CLONE_VFORK | SIGCHLD, &ctx);
    if (pid < 0) {
        failure->step = CORRAL_SPAWN_STEP_CLONE;
        failure->error = errno;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (pid < 0)
        return -1;

    /* A child that failed after the clone is a process all the same, as a
     * forked Dovecot child is: it has exited, and is reaped as any other. */
    failure->step = ctx.failed_step;
    failure->error = ctx.failed_errno;
    return pid;
}

const char *corral_spawn_step_name(corral_spawn_step step)
{
    switch (step) {
    case CORRAL_SPAWN_STEP_NONE: return "spawn";
    case CORRAL_SPAWN_STEP_CLONE: return "clone()";
    case CORRAL_SPAWN_STEP_FDS: return "dup2()";
    case CORRAL_SPAWN_STEP_CHDIR: return "chdir()";
    case CORRAL_SPAWN_STEP_RLIMIT: return "setrlimit()";
    case CORRAL_SPAWN_STEP_GROUPS: return "setgroups()";
    case CORRAL_SPAWN_STEP_SETGID: return "setgid()";
    case CORRAL_SPAWN_STEP_CHROOT: return "chroot()";
    case CORRAL_SPAWN_STEP_SETUID: return "setuid()";
    case CORRAL_SPAWN_STEP_EXEC: return "execve()";
    case CORRAL_SPAWN_STEP_SETSID: return "setsid()";
    }
    return "spawn";
}
