/*
 * sandbox: the filter holds. Each case runs in a child process that sets
 * no_new_privs, enters the sandbox and tries one thing; the parent judges by
 * the child's exit status (0: refused as it should be).
 */
#define _GNU_SOURCE
#include "daemon/daemon.h"
#include "daemon/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Sanitizer builds keep fork, ptrace and exec (LeakSanitizer and the symbolizer need them). */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER 1
#endif
#endif
#ifndef SANITIZER
#define SANITIZER 0
#endif

/* Runs fn in a sandboxed child; returns its wait status. */
static int in_sandbox(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        if (daemon_no_new_privs(err, sizeof err) != 0 || sandbox_enter(err, sizeof err) != 0) {
            fprintf(stderr, "%s\n", err);
            _exit(100);
        }
        _exit(fn());
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void assert_exit(int status, int code)
{
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), code);
}

/* 0 if the call failed with EPERM (as the filter answers), 1 otherwise. */
static int eperm(long r)
{
    return r == -1 && errno == EPERM ? 0 : 1;
}

static int try_exec(void)
{
    char *argv[] = {"true", NULL}, *envp[] = {NULL};
    execve("/bin/true", argv, envp);
    return 2; /* refused without being killed */
}

static int try_fork(void)
{
    pid_t p = fork();
    if (p == 0)
        _exit(0);
    return eperm(p);
}

static int try_ptrace(void)
{
    return eperm(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
}

static int try_exec_memory(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED || errno != EPERM)
        return 1;
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 3;
    return eperm(mprotect(p, 4096, PROT_READ | PROT_EXEC));
}

static int try_privileges(void)
{
    /* a no-op that would succeed anywhere without the filter */
    return eperm(syscall(SYS_setresuid, -1, -1, -1)) || eperm(syscall(SYS_unshare, 0));
}

/* What the daemon does all day still works. */
static int try_ordinary(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int ok = s >= 0 && fd >= 0 && write(fd, "x", 1) == 1 && p != MAP_FAILED &&
             mprotect(p, 4096, PROT_READ) == 0 && munmap(p, 1 << 20) == 0 && getpid() > 0;
    return ok ? 0 : 1;
}

static void test_exec_kills(void **state)
{
    (void)state;
    if (SANITIZER)
        skip();
    int status = in_sandbox(try_exec);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSYS);
}

static void test_no_new_process(void **state)
{
    (void)state;
    if (SANITIZER)
        skip();
    assert_exit(in_sandbox(try_fork), 0);
    assert_exit(in_sandbox(try_ptrace), 0);
}

static void test_no_executable_memory(void **state)
{
    (void)state;
    assert_exit(in_sandbox(try_exec_memory), 0);
}

static void test_no_privileges_or_namespaces(void **state)
{
    (void)state;
    assert_exit(in_sandbox(try_privileges), 0);
}

static void test_ordinary_calls_work(void **state)
{
    (void)state;
    assert_exit(in_sandbox(try_ordinary), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_kills),
        cmocka_unit_test(test_no_new_process),
        cmocka_unit_test(test_no_executable_memory),
        cmocka_unit_test(test_no_privileges_or_namespaces),
        cmocka_unit_test(test_ordinary_calls_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
