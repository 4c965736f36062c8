/* statsfile: atomic writes that never follow a planted link. */
#include "daemon/statsfile.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

struct fx {
    char dir[64];
    char path[128]; /* the stats file */
    char tmp[128];  /* its temporary name */
    char victim[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/sg-test-statsfile.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/x.stats", f->dir);
    snprintf(f->tmp, sizeof f->tmp, "%s/x.stats.tmp", f->dir);
    snprintf(f->victim, sizeof f->victim, "%s/victim", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    unlink(f->path);
    unlink(f->tmp);
    unlink(f->victim);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void put(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* The file's whole text (small files only). */
static const char *slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static int is_link(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode);
}

/* Written whole, replaced whole, and no temporary file is left behind. */
static void test_write_and_replace(void **state)
{
    struct fx *f = *state;
    char buf[64];
    assert_int_equal(statsfile_write(f->path, "one\n"), 0);
    assert_string_equal(slurp(f->path, buf, sizeof buf), "one\n");
    assert_int_equal(statsfile_write(f->path, "two\n"), 0);
    assert_string_equal(slurp(f->path, buf, sizeof buf), "two\n");
    assert_int_equal(access(f->tmp, F_OK), -1);
}

/* A link at the temporary name is neither followed nor removed; the write fails. */
static void test_link_at_tmp_is_not_followed(void **state)
{
    struct fx *f = *state;
    char buf[64];
    put(f->victim, "precious\n");
    assert_int_equal(symlink(f->victim, f->tmp), 0);
    assert_int_equal(statsfile_write(f->path, "counters\n"), -1);
    assert_string_equal(slurp(f->victim, buf, sizeof buf), "precious\n");
    assert_true(is_link(f->tmp));
    assert_int_equal(access(f->path, F_OK), -1);
}

/* A dangling link at the temporary name does not create its target either. */
static void test_dangling_link_at_tmp(void **state)
{
    struct fx *f = *state;
    assert_int_equal(symlink(f->victim, f->tmp), 0);
    assert_int_equal(statsfile_write(f->path, "counters\n"), -1);
    assert_int_equal(access(f->victim, F_OK), -1);
}

/* A regular temporary file of ours, left by a crash, is replaced. */
static void test_stale_tmp_is_replaced(void **state)
{
    struct fx *f = *state;
    char buf[64];
    put(f->tmp, "half a line from an earlier run");
    assert_int_equal(statsfile_write(f->path, "fresh\n"), 0);
    assert_string_equal(slurp(f->path, buf, sizeof buf), "fresh\n");
    assert_int_equal(access(f->tmp, F_OK), -1);
}

/* A link at the stats file itself is replaced by the new file, its target untouched. */
static void test_link_at_path_is_replaced(void **state)
{
    struct fx *f = *state;
    char buf[64];
    put(f->victim, "precious\n");
    assert_int_equal(symlink(f->victim, f->path), 0);
    assert_int_equal(statsfile_write(f->path, "counters\n"), 0);
    assert_false(is_link(f->path));
    assert_string_equal(slurp(f->path, buf, sizeof buf), "counters\n");
    assert_string_equal(slurp(f->victim, buf, sizeof buf), "precious\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_at_tmp_is_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_link_at_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_tmp_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_at_path_is_replaced, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
