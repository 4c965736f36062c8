/* hex: encode and exact-length decode, and the digits-only check. */
#include "util/hex.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

static void test_encode(void **state)
{
    (void)state;
    const uint8_t b[] = {0x00, 0x01, 0xab, 0xff, 0x7f};
    char out[11];
    assert_int_equal(hex_encode(out, sizeof out, b, sizeof b), 0);
    assert_string_equal(out, "0001abff7f");
    assert_int_equal(hex_encode(out, 1, b, 0), 0);
    assert_string_equal(out, "");
    memset(out, '#', sizeof out);
    assert_int_equal(hex_encode(out, 10, b, sizeof b), -1); /* no room for the NUL */
    assert_string_equal(out, "");
    assert_int_equal(hex_encode(out, 0, b, 1), -1);
}

static void test_decode(void **state)
{
    (void)state;
    uint8_t out[4];
    assert_int_equal(hex_decode(out, 4, "00aBfF7f", 8), 0);
    assert_int_equal(out[0], 0x00);
    assert_int_equal(out[1], 0xab);
    assert_int_equal(out[2], 0xff);
    assert_int_equal(out[3], 0x7f);
    /* anything but exactly 2n digits fails, and leaves out zeroed */
    const char *bad[] = {"00abff7", "00abff7f0", "00abff7g", " 0abff7f", "0xabff7f", "00ab ff7"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(out, 0x55, sizeof out);
        assert_int_equal(hex_decode(out, 4, bad[i], strlen(bad[i])), -1);
        assert_int_equal(out[0] | out[1] | out[2] | out[3], 0);
    }
    /* a NUL inside the given length is not a digit */
    assert_int_equal(hex_decode(out, 2, "ab\0d", 4), -1);
    /* a round trip over every byte value */
    uint8_t all[256], back[256];
    char text[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    assert_int_equal(hex_encode(text, sizeof text, all, sizeof all), 0);
    assert_int_equal(hex_decode(back, sizeof back, text, 512), 0);
    assert_memory_equal(all, back, sizeof all);
}

static void test_digits_only(void **state)
{
    (void)state;
    assert_int_equal(hex_digits_only("", 0), 1);
    assert_int_equal(hex_digits_only("a", 1), 1);
    assert_int_equal(hex_digits_only("g", 1), 0);
    assert_int_equal(hex_digits_only("0123456789abcdefABCDEF", 22), 1);
    assert_int_equal(hex_digits_only("0123456789abcdefABCDE", 21), 1);
    assert_int_equal(hex_digits_only("012345678 abcdef", 16), 0);
    /* longer than the scratch buffer, odd, the bad digit last */
    char s[201];
    memset(s, 'f', 200);
    s[200] = '\0';
    assert_int_equal(hex_digits_only(s, 200), 1);
    assert_int_equal(hex_digits_only(s, 199), 1);
    s[198] = 'x';
    assert_int_equal(hex_digits_only(s, 199), 0);
    assert_int_equal(hex_digits_only(s, 198), 1);
    s[198] = 'f';
    s[130] = 'z';
    assert_int_equal(hex_digits_only(s, 200), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_digits_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
