/*
 * peertab: the running peers as the receive and send paths use them: key ids
 * in one look-up, version 1 candidates and routes by longest prefix, and a
 * reload that keeps each remaining peer's state.
 */
#include "daemon/peertab.h"

#include "util/prefixes.h"
#include "wire/peerkeys.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#define K1 "1111111111111111111111111111111111111111111111111111111111111111"
#define K2 "2222222222222222222222222222222222222222222222222222222222222222"
#define NOW 1800000000 /* s */

static const uint8_t master[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static void parse(const char *text, struct peers_conf *pc)
{
    char err[256];
    if (peers_parse(text, strlen(text), "peers", pc, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static struct peertab *with(const char *text, const char *me)
{
    struct peers_conf pc;
    char err[256];
    parse(text, &pc);
    struct peertab *pt = peertab_new(64);
    assert_non_null(pt);
    if (peertab_apply(pt, &pc, me, master, err, sizeof err) != 0)
        fail_msg("%s", err);
    peers_free(&pc);
    return pt;
}

static struct net_addr addr(const char *host, unsigned port)
{
    struct net_addr a;
    assert_int_equal(net_addr_parse(host, port, &a), 0);
    return a;
}

static const char *const ALPHA = "[peer bravo]\n"
                                 "endpoint = 127.0.0.3:2\n"
                                 "key = derive\n"
                                 "[peer ruby]\n"
                                 "endpoint = 192.0.2.7:61773\n"
                                 "allowed = 192.0.2.0/24, 192.0.2.7\n"
                                 "key = " K1 "\n"
                                 "previous-key = " K2 "\n"
                                 "previous-key-until = 2027-02-01T00:00:00Z\n"
                                 "wire = 1\n"
                                 "[peer wide]\n"
                                 "allowed = 192.0.0.0/8\n"
                                 "key = " K2 "\n"
                                 "wire = 1\n"
                                 "roaming = yes\n";

static const char *const BRAVO = "[peer alpha]\nendpoint = 127.0.0.2:1\nkey = derive\n";

/* What alpha seals for bravo, bravo finds by its id, and the other way round; nothing else. */
static void test_ids_pair_up(void **state)
{
    (void)state;
    struct peertab *a = with(ALPHA, "alpha"), *b = with(BRAVO, "bravo");
    struct peer *ab = peertab_find(a, "bravo"), *ba = peertab_find(b, "alpha");
    assert_non_null(ab);
    assert_non_null(ba);
    assert_int_equal(peertab_count(a), 3);
    assert_true(peertab_has_v2(a));
    int which = -1;
    assert_ptr_equal(peertab_by_id(b, ab->send_id, NOW, &which), ba);
    assert_int_equal(which, 0);
    assert_ptr_equal(peertab_by_id(a, ba->send_id, NOW, &which), ab);
    /* a's own sending id is not one it receives with: a reflection finds no key */
    assert_null(peertab_by_id(a, ab->send_id, NOW, &which));
    assert_memory_not_equal(ab->send_id, ab->recv_id[0], PEERTAB_ID_BYTES);
    /* the two sides show one fingerprint for the pair */
    assert_memory_equal(ab->fingerprint, ba->fingerprint, PEERTAB_ID_BYTES);
    uint8_t unknown[PEERTAB_ID_BYTES] = {0};
    assert_null(peertab_by_id(a, unknown, NOW, &which));
    peertab_free(a);
    peertab_free(b);
}

/* Version 1: keys of the peers whose allowed hold the source, longest prefix first, capped. */
static void test_v1_candidates(void **state)
{
    (void)state;
    struct peertab *pt = with(ALPHA, "alpha");
    struct peer *ruby = peertab_find(pt, "ruby"), *wide = peertab_find(pt, "wide");
    const struct envelope_key *keys[JUDGE_TRIALS_MAX];
    struct peer *peers[JUDGE_TRIALS_MAX];
    struct net_addr in24 = addr("192.0.2.9", 1), in8 = addr("192.1.1.1", 1),
                    out = addr("198.51.100.1", 1), mapped = addr("::ffff:192.0.2.9", 1);
    int n = peertab_v1_candidates(pt, &in24, NOW, keys, peers, JUDGE_TRIALS_MAX);
    assert_int_equal(n, 3); /* ruby's key and previous key (ruby twice in allowed), then wide's */
    assert_ptr_equal(peers[0], ruby);
    assert_ptr_equal(keys[0], ruby->recv[0]);
    assert_ptr_equal(keys[1], ruby->recv[1]);
    assert_ptr_equal(peers[2], wide);
    assert_int_equal(peertab_v1_candidates(pt, &mapped, NOW, keys, peers, JUDGE_TRIALS_MAX), 3);
    /* the previous key past its deadline is no candidate */
    n = peertab_v1_candidates(pt, &in24, 1800000000 + 86400 * 365, keys, peers, JUDGE_TRIALS_MAX);
    assert_int_equal(n, 2);
    assert_ptr_equal(peers[1], wide);
    assert_int_equal(peertab_v1_candidates(pt, &in24, NOW, keys, peers, 1), 1);
    assert_int_equal(peertab_v1_candidates(pt, &in8, NOW, keys, peers, JUDGE_TRIALS_MAX), 1);
    assert_int_equal(peertab_v1_candidates(pt, &out, NOW, keys, peers, JUDGE_TRIALS_MAX), 0);
    /* bravo is version 2: never a version 1 candidate */
    struct net_addr b = addr("127.0.0.3", 2);
    assert_int_equal(peertab_v1_candidates(pt, &b, NOW, keys, peers, JUDGE_TRIALS_MAX), 0);
    assert_true(peer_allows(ruby, &in24));
    assert_false(peer_allows(ruby, &in8));
    peertab_free(pt);
}

/* A row that names an address goes to the peer at that endpoint, which roaming moves. */
static void test_endpoints(void **state)
{
    (void)state;
    struct peertab *pt = with(ALPHA, "alpha");
    struct peer *bravo = peertab_find(pt, "bravo"), *wide = peertab_find(pt, "wide");
    struct net_addr b = addr("127.0.0.3", 2), other_port = addr("127.0.0.3", 3),
                    mapped = addr("::ffff:127.0.0.3", 2), ruby = addr("192.0.2.7", 61773),
                    inside = addr("192.0.2.9", 61773), there = addr("192.1.2.3", 4);
    assert_ptr_equal(peertab_by_endpoint(pt, &b), bravo);
    assert_ptr_equal(peertab_by_endpoint(pt, &mapped), bravo);
    assert_null(peertab_by_endpoint(pt, &other_port));
    assert_ptr_equal(peertab_by_endpoint(pt, &ruby), peertab_find(pt, "ruby"));
    assert_null(peertab_by_endpoint(pt, &inside)); /* in its allowed, but not its endpoint */
    assert_null(peertab_by_endpoint(pt, &there));  /* wide has no endpoint yet */
    peertab_roam(pt, wide, &there);
    assert_ptr_equal(peertab_by_endpoint(pt, &there), wide);
    peertab_roam(pt, bravo, &other_port);
    assert_ptr_equal(peertab_by_endpoint(pt, &other_port), bravo);
    assert_null(peertab_by_endpoint(pt, &b)); /* its old endpoint is free */
    /* a reload that keeps bravo's endpoint line keeps where it roamed (roaming = no here: not) */
    struct peers_conf pc;
    char err[256];
    parse(ALPHA, &pc);
    assert_int_equal(peertab_apply(pt, &pc, "alpha", master, err, sizeof err), 0);
    peers_free(&pc);
    assert_ptr_equal(peertab_by_endpoint(pt, &b), bravo);    /* no roaming: back to the file's */
    assert_ptr_equal(peertab_by_endpoint(pt, &there), wide); /* roaming: kept */
    peertab_free(pt);
}

/* A reload keeps a remaining peer's slot and state, and removes the rest for good. */
static void test_reload_per_peer(void **state)
{
    (void)state;
    struct peertab *pt = with(ALPHA, "alpha");
    struct peer *bravo = peertab_find(pt, "bravo"), *wide = peertab_find(pt, "wide");
    int bslot = peertab_slot(pt, bravo), wslot = peertab_slot(pt, wide);
    uint32_t bgen = bravo->gen, wgen = wide->gen;
    bravo->st.stored = 5;
    wide->endpoint = addr("192.9.9.9", 7); /* roamed */
    wide->has_endpoint = 1;
    uint8_t old_id[PEERTAB_ID_BYTES];
    memcpy(old_id, bravo->recv_id[0], sizeof old_id);
    struct peers_conf pc;
    char err[256];
    /* bravo gets an explicit key, ruby goes, wide stays as it was, carol comes */
    parse("[peer wide]\nallowed = 192.0.0.0/8\nkey = " K2 "\nwire = 1\nroaming = yes\n"
          "[peer bravo]\nendpoint = 127.0.0.3:2\nkey = " K1 "\n"
          "[peer carol]\nendpoint = 127.0.0.4:3\nkey = derive\n",
          &pc);
    assert_int_equal(peertab_apply(pt, &pc, "alpha", master, err, sizeof err), 0);
    peers_free(&pc);
    assert_int_equal(peertab_count(pt), 3);
    assert_ptr_equal(peertab_get(pt, bslot, bgen), bravo);
    assert_int_equal(bravo->st.stored, 5);
    int which;
    assert_null(peertab_by_id(pt, old_id, NOW, &which)); /* the old key is gone */
    assert_ptr_equal(peertab_by_id(pt, bravo->recv_id[0], NOW, &which), bravo);
    assert_ptr_equal(peertab_get(pt, wslot, wgen), wide);
    struct net_addr roamed = addr("192.9.9.9", 7);
    assert_true(net_addr_same_peer(&wide->endpoint, &roamed));
    assert_null(peertab_find(pt, "ruby"));
    struct peer *carol = peertab_find(pt, "carol");
    assert_non_null(carol);
    /* carol may have taken ruby's slot, but under another generation */
    for (int s = 0; s < 3; s++)
        if (s != bslot && s != wslot)
            assert_null(peertab_get(pt, s, 0));
    /* an empty file removes every peer */
    struct peers_conf none = {0};
    assert_int_equal(peertab_apply(pt, &none, "alpha", master, err, sizeof err), 0);
    assert_int_equal(peertab_count(pt), 0);
    assert_null(peertab_get(pt, bslot, bgen));
    assert_false(peertab_has_v2(pt));
    peertab_free(pt);
}

/* A file that cannot be applied changes nothing. */
static void test_refused_apply(void **state)
{
    (void)state;
    struct peertab *pt = with(BRAVO, "bravo");
    struct peer *alpha = peertab_find(pt, "alpha");
    uint8_t id[PEERTAB_ID_BYTES];
    memcpy(id, alpha->recv_id[0], sizeof id);
    struct peers_conf pc;
    char err[256];
    parse("[peer delta]\nendpoint = 127.0.0.5:1\nkey = derive\n", &pc);
    assert_int_equal(peertab_apply(pt, &pc, "bravo", NULL, err, sizeof err), -1); /* no master */
    assert_non_null(strstr(err, "delta"));
    peers_free(&pc);
    int which;
    assert_ptr_equal(peertab_by_id(pt, id, NOW, &which), alpha);
    assert_int_equal(peertab_count(pt), 1);
    assert_null(peertab_find(pt, "delta"));
    peertab_free(pt);
}

/* prefixes: one probe per length in use, longest first, and a capped list per network. */
static void test_prefixes(void **state)
{
    (void)state;
    struct prefixes *px = prefixes_new(4);
    assert_non_null(px);
    struct net_prefix p8, p24, p0, v6;
    assert_int_equal(net_prefix_parse("10.0.0.0/8", &p8), 0);
    assert_int_equal(net_prefix_parse("10.1.2.0/24", &p24), 0);
    assert_int_equal(net_prefix_parse("0.0.0.0/0", &p0), 0);
    assert_int_equal(net_prefix_parse("2001:db8::/32", &v6), 0);
    assert_int_equal(prefixes_add(px, &p8, 8), 0);
    assert_int_equal(prefixes_add(px, &p0, 0), 0);
    assert_int_equal(prefixes_add(px, &p24, 24), 0);
    for (int i = 1; i < PREFIXES_PER_NET; i++)
        assert_int_equal(prefixes_add(px, &p24, 100 + i), 0);
    assert_int_equal(prefixes_add(px, &p24, 999), 1); /* the network's list is full */
    assert_int_equal(prefixes_add(px, &v6, 6), 0);
    struct net_prefix extra;
    assert_int_equal(net_prefix_parse("172.16.0.0/12", &extra), 0);
    assert_int_equal(prefixes_add(px, &extra, 12), -1); /* the set is full */
    int out[16];
    struct net_addr a = addr("10.1.2.3", 1), b = addr("10.9.9.9", 1), c = addr("2001:db8::1", 1),
                    d = addr("2001:db9::1", 1);
    assert_int_equal(prefixes_match(px, &a, out, 16), PREFIXES_PER_NET + 2);
    assert_int_equal(out[0], 24);
    assert_int_equal(out[1], 101);
    assert_int_equal(out[PREFIXES_PER_NET], 8);
    assert_int_equal(out[PREFIXES_PER_NET + 1], 0);
    assert_int_equal(prefixes_match(px, &a, out, 2), 2);
    assert_int_equal(prefixes_match(px, &b, out, 16), 2);
    assert_int_equal(out[0], 8);
    assert_int_equal(prefixes_match(px, &c, out, 16), 1);
    assert_int_equal(out[0], 6);
    assert_int_equal(prefixes_match(px, &d, out, 16), 0);
    prefixes_free(px);
}

int main(void)
{
    assert_int_equal(envelope_init(), 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_pair_up),     cmocka_unit_test(test_v1_candidates),
        cmocka_unit_test(test_reload_per_peer), cmocka_unit_test(test_refused_apply),
        cmocka_unit_test(test_prefixes),        cmocka_unit_test(test_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
