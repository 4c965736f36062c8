/*
 * sandbox: the system call filter (seccomp, through libseccomp) the daemon
 * runs under once it has started. The only file that includes <seccomp.h>.
 *
 * It is a deny-list, not an allow-list: every call the daemon, SQLite,
 * libsodium, syslog and the sanitizers make stays allowed, and what a
 * compromised daemon would need to get further is refused: running a
 * program, making a process, tracing one, new executable memory, privileges,
 * mounts, namespaces, kernel modules and keys, bpf, io_uring. docs/design.md
 * says why.
 */
#ifndef SG_SANDBOX_H
#define SG_SANDBOX_H

#include <stddef.h>

/*
 * Installs the filter for the rest of the process's life; no_new_privs must
 * be set already (daemon_no_new_privs). execve and execveat kill the process;
 * the other refused calls fail with EPERM (clone3 with ENOSYS, so a thread
 * library falls back to clone, whose thread-making form stays allowed).
 * Returns 0, or -1 with err (the kernel or the library lacks seccomp; the
 * process is then as it was).
 */
__attribute__((warn_unused_result)) int sandbox_enter(char *err, size_t errlen);

#endif
