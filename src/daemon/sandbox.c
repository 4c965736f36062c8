/*
 * sandbox: a seccomp deny-list for the running daemon.
 *
 * Each refused call is one the daemon never makes once it has started
 * (checked with strace -f over the whole integration suite, HUP, USR1, disk
 * full and database removal included). Sanitizer builds keep what
 * LeakSanitizer needs at exit (it clones a tracer that ptraces the process)
 * and what a report needs (running the symbolizer).
 */
#define _GNU_SOURCE
#include "daemon/sandbox.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef __linux__
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif
#ifndef SANDBOX_SANITIZER
#define SANDBOX_SANITIZER 0
#endif

/* Refused with EPERM: privileges, the system's state, and ways around the filter. */
static const char *const refused[] = {
    /* privileges: dropped for good before the filter */
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capset",
    /* the system: mounts, namespaces, modules, clocks, names, power */
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "syslog",
    "vhangup",
    "mknod",
    "mknodat",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "fanotify_init",
    "personality",
    "uselib",
    /* kernel interfaces an exploit reaches for; io_uring's operations bypass seccomp */
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kcmp",
    "pidfd_getfd",
};

/* Refused with EPERM except in sanitizer builds (LeakSanitizer's tracer at exit). */
static const char *const refused_unless_sanitizer[] = {
    "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
};

/* Adds one rule for the named call; a call this architecture lacks is skipped. */
static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
                const struct scmp_arg_cmp *args)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0;
    int rc = seccomp_rule_add_array(ctx, action, nr, n, args);
    return rc == 0 || rc == -EDOM ? 0 : rc; /* EDOM: not a call of this architecture */
}

static int add_rules(scmp_filter_ctx ctx)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0] && rc == 0; i++)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), refused[i], 0, NULL);
    /* new executable memory: the code is all mapped by now (MemoryDenyWriteExecute) */
    const struct scmp_arg_cmp exec2 = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC);
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "mmap", 1, &exec2);
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "mprotect", 1, &exec2);
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "pkey_mprotect", 1, &exec2);
    if (SANDBOX_SANITIZER)
        return rc;
    /* running a program can only be an intruder's doing: end the process */
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_KILL_PROCESS, "execve", 0, NULL);
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_KILL_PROCESS, "execveat", 0, NULL);
    for (size_t i = 0;
         i < sizeof refused_unless_sanitizer / sizeof refused_unless_sanitizer[0] && rc == 0; i++)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), refused_unless_sanitizer[i], 0, NULL);
    /* a new process, but not a new thread; clone3's flags are out of the filter's reach */
    const struct scmp_arg_cmp thread0 = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &thread0);
    if (rc == 0)
        rc = rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
    return rc;
}

int sandbox_enter(char *err, size_t errlen)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        snprintf(err, errlen, "cannot set up the system call filter: out of memory");
        return -1;
    }
    int rc = add_rules(ctx);
    /* every thread, not only the caller: the store's checkpoint thread runs already */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        snprintf(err, errlen, "cannot install the system call filter: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

#else /* no seccomp on this system */

int sandbox_enter(char *err, size_t errlen)
{
    snprintf(err, errlen, "no system call filter on this system");
    return -1;
}

#endif
