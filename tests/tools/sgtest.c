/*
 * sgtest: a scriptable peer for the integration tests and the benchmark.
 *
 *   sgtest peer HOST PORT KEYHEX STEP...   run steps on one UDP socket:
 *       msg:JSON            seal JSON with the current time and send it
 *       skew:SECS:JSON      seal with the time shifted by SECS (may be negative)
 *       wrongkey:JSON       seal with a random key
 *       raw:HEX             send these bytes as they are
 *       rand:N              send N random bytes
 *       big:N:ID            send a message with message_id ID padded to N bytes of JSON
 *       again               send the previous datagram again, byte for byte (a replay)
 *       ack:ID:MS           wait up to MS ms for an ACK of ID; fail on any other reply
 *       silence:MS          fail if anything arrives within MS ms
 *       capture:MS          wait up to MS ms for any datagram; it becomes the previous one
 *                           (for again); prints "captured" and, if it opens, its JSON
 *       save / sendsaved    keep the previous datagram aside / send the kept one
 *       waitfile:PATH:MS    wait up to MS ms until PATH exists (to line up with the script)
 *       touch:PATH          create PATH (the socket is bound: the script may go on)
 *       answer:ID:MS        send the ACK of ID, and again for every datagram that arrives
 *                           within MS ms (a peer answering each retransmission)
 *   sgtest rtt HOST PORT KEYHEX N     N messages one at a time; prints p50/p99 of
 *                                     datagram-out to ACK-verified, in microseconds
 *                                     (resending after 200 ms without an ACK)
 *   sgtest flood HOST PORT KEYHEX N KIND  send N datagrams of KIND (random, short,
 *                                     wrongkey) as fast as possible, then exit
 *   sgtest seal KEYHEX TS_NS JSON     print the sealed datagram as hex
 *   sgtest open KEYHEX HEX            print TS_NS and the JSON, or exit 1
 *   sgtest sealfile KEYHEX TS_NS JSON FILE   write the sealed datagram's bytes to FILE
 *   sgtest plainfile TS_NS JSON FILE  write nonce(0) || ts || JSON || tag(0) (fuzz seeds
 *                                     for the build that skips authentication)
 *   sgtest hexfile HEX FILE           write the bytes of HEX to FILE
 *   sgtest freeport [6]               print a UDP port that is free on 127.0.0.1 (or ::1)
 *   sgtest memgrep PID HEX            count copies of HEX (as text, and as the bytes it
 *                                     encodes) in the readable memory of process PID;
 *                                     prints "text N bytes M", each hit's region on stderr
 *   sgtest flood ... ack                 valid ACKs of random (unknown) message ids
 *   sgtest parts-flood HOST PORT PAIRKEY FROM TO N LENGTH [PART_SIZE [PER_SEC]]
 *                                     version 2, as host FROM to host TO (direction key and
 *                                     key id derived from the pair key, docs/wire.md "Keys"):
 *                                     N messages of LENGTH bytes (N at most 1,000,000), each
 *                                     with a fresh random id, of which only the first part
 *                                     (index 0, PART_SIZE bytes, default 1,140) is sent: N
 *                                     partial messages. Paced at PER_SEC datagrams a second
 *                                     (default 20,000; at most 1,000,000); replies are read
 *                                     and counted, never answered. Prints "sent N part_acks M ms
 * T". sgtest parts-send HOST PORT PAIRKEY FROM TO ID LENGTH [PART_SIZE [MS]] every part of one
 * message {"message_id":ID,"pad":...} of LENGTH bytes (60 to 16 MiB), then waits up to MS ms
 *                                     (default 10,000) for its ACK, sending again the parts
 *                                     the last part ACK does not name after 300 ms without
 *                                     news. Prints "ack ID parts N sent M"; exit 1 without it.
 * SGTEST_SRC=ADDR sends from that local address (e.g. 127.0.0.2); SGTEST_PORT=P binds
 * the peer's socket to local port P (to stand in for a peer a daemon sends to).
 * Exit status 0 when every step succeeded.
 */
#include "wire/envelope.h"
#include "wire/envelope_v2.h"
#include "wire/message.h"
#include "wire/parts.h"
#include "wire/peerkeys.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/net.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Decodes hex (an even number of hex digits, at most 2 x cap) into out; sets *len. 0 or -1. */
static int hex_to_bytes(const char *hex, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap || hex_decode(out, n / 2, hex, n) != 0)
        return -1;
    *len = n / 2;
    return 0;
}

struct peer {
    int fd;
    struct net_addr to;
    struct envelope_key *key;
    uint8_t buf[ENVELOPE_MAX_DATAGRAM + 1];
    uint8_t plain[ENVELOPE_MAX_DATAGRAM + 1];
    uint8_t last[ENVELOPE_MAX_DATAGRAM + 1];
    size_t last_len;
    uint8_t saved[ENVELOPE_MAX_DATAGRAM + 1];
    size_t saved_len;
};

static int send_bytes(struct peer *p, const uint8_t *b, size_t n)
{
    if (b != p->last) {
        memcpy(p->last, b, n);
        p->last_len = n;
    }
    if (sendto(p->fd, b, n, 0, &p->to.u.sa, p->to.len) < 0) {
        fprintf(stderr, "sgtest: send: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int send_sealed(struct peer *p, const struct envelope_key *key, uint64_t ts,
                       const char *json, size_t len)
{
    size_t n = envelope_seal(key, ts, json, len, p->buf, sizeof p->buf);
    if (n == 0) {
        fprintf(stderr, "sgtest: cannot seal %zu bytes\n", len);
        return -1;
    }
    return send_bytes(p, p->buf, n);
}

/* Waits up to ms for one datagram; returns its length, 0 on timeout, -1 on error. */
static ssize_t wait_reply(struct peer *p, int ms)
{
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    int r = poll(&pfd, 1, ms);
    if (r <= 0)
        return r;
    return recv(p->fd, p->buf, sizeof p->buf, 0);
}

/* Opens a reply; returns 1 if it is the ACK of id. */
static int is_ack_of(struct peer *p, size_t n, const char *id)
{
    uint64_t ts;
    const char *json;
    size_t len;
    struct message_in m;
    if (envelope_open(p->key, p->buf, n, p->plain, &ts, &json, &len) != ENVELOPE_OK)
        return 0;
    return message_classify(json, len, &m) == MESSAGE_VALID && m.kind == MESSAGE_ACK &&
           strcmp(m.id, id) == 0;
}

/* SGTEST_SLOW=N stretches every wait for an ACK N times (daemons under valgrind). */
static int slow(void)
{
    const char *s = getenv("SGTEST_SLOW");
    int n = s != NULL ? atoi(s) : 1;
    return n >= 1 && n <= 100 ? n : 1;
}

static int step_ack(struct peer *p, const char *arg)
{
    char id[MESSAGE_ID_LEN + 1];
    int ms = 0;
    if (sscanf(arg, "%24[0-9a-f]:%d", id, &ms) != 2)
        return -1;
    ms *= slow();
    int64_t deadline = clock_mono_us() + (int64_t)ms * 1000;
    for (;;) {
        int64_t t = clock_mono_us();
        if (t >= deadline) {
            printf("no ACK for %s within %d ms\n", id, ms);
            return -1;
        }
        ssize_t n = wait_reply(p, (int)((deadline - t + 999) / 1000));
        if (n < 0)
            return -1;
        if (n == 0)
            continue;
        if (is_ack_of(p, (size_t)n, id)) {
            printf("ack %s\n", id);
            return 0;
        }
        printf("unexpected reply of %zd bytes while waiting for the ACK of %s\n", n, id);
        return -1;
    }
}

/* ---- steps for reflection tests: capture what a daemon sends, keep it, send it back ---- */

static int step_capture(struct peer *p, int ms)
{
    ssize_t n = wait_reply(p, ms * slow());
    if (n <= 0) {
        printf("nothing to capture within %d ms\n", ms);
        return -1;
    }
    memcpy(p->last, p->buf, (size_t)n);
    p->last_len = (size_t)n;
    uint64_t ts;
    const char *json;
    size_t len;
    if (envelope_open(p->key, p->last, (size_t)n, p->plain, &ts, &json, &len) == ENVELOPE_OK)
        printf("captured %.*s\n", (int)len, json);
    else
        printf("captured %zd bytes\n", n);
    fflush(stdout);
    return 0;
}

static int step_waitfile(const char *arg)
{
    char path[4096];
    int ms = 0;
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || (size_t)(colon - arg) >= sizeof path)
        return -1;
    memcpy(path, arg, (size_t)(colon - arg));
    path[colon - arg] = '\0';
    ms = atoi(colon + 1) * slow();
    int64_t deadline = clock_mono_us() + (int64_t)ms * 1000;
    while (access(path, F_OK) != 0) {
        if (clock_mono_us() >= deadline) {
            printf("%s did not appear within %d ms\n", path, ms);
            return -1;
        }
        poll(NULL, 0, 5);
    }
    return 0;
}

static int step_answer(struct peer *p, const char *arg)
{
    char id[MESSAGE_ID_LEN + 1], ack[MESSAGE_ACK_MAX];
    int ms = 0;
    if (sscanf(arg, "%24[0-9a-f]:%d", id, &ms) != 2)
        return -1;
    size_t n = message_ack_text(id, ack);
    int64_t deadline = clock_mono_us() + (int64_t)(ms * slow()) * 1000;
    if (send_sealed(p, p->key, clock_real_ns(), ack, n) != 0)
        return -1;
    for (int64_t t; (t = clock_mono_us()) < deadline;) {
        ssize_t got = wait_reply(p, (int)((deadline - t + 999) / 1000));
        if (got < 0)
            return -1;
        if (got > 0 && send_sealed(p, p->key, clock_real_ns(), ack, n) != 0)
            return -1;
    }
    return 0;
}

static int step(struct peer *p, const char *s)
{
    if (strncmp(s, "answer:", 7) == 0)
        return step_answer(p, s + 7);
    if (strncmp(s, "capture:", 8) == 0)
        return step_capture(p, atoi(s + 8));
    if (strcmp(s, "save") == 0) {
        memcpy(p->saved, p->last, p->last_len);
        p->saved_len = p->last_len;
        return 0;
    }
    if (strcmp(s, "sendsaved") == 0)
        return send_bytes(p, p->saved, p->saved_len);
    if (strncmp(s, "waitfile:", 9) == 0)
        return step_waitfile(s + 9);
    if (strncmp(s, "touch:", 6) == 0) {
        int fd = open(s + 6, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return -1;
        close(fd);
        return 0;
    }
    if (strncmp(s, "msg:", 4) == 0)
        return send_sealed(p, p->key, clock_real_ns(), s + 4, strlen(s + 4));
    if (strncmp(s, "skew:", 5) == 0) {
        char *end = NULL;
        double secs = strtod(s + 5, &end);
        if (end == NULL || *end != ':')
            return -1;
        int64_t shift = (int64_t)(secs * 1e9);
        return send_sealed(p, p->key, (uint64_t)((int64_t)clock_real_ns() + shift), end + 1,
                           strlen(end + 1));
    }
    if (strncmp(s, "wrongkey:", 9) == 0) {
        char hex[65];
        envelope_random_hex(hex, 32);
        struct envelope_key *k = envelope_key_from_hex(hex);
        int r = send_sealed(p, k, clock_real_ns(), s + 9, strlen(s + 9));
        envelope_key_free(k);
        return r;
    }
    if (strncmp(s, "raw:", 4) == 0) {
        size_t n;
        if (hex_to_bytes(s + 4, p->plain, sizeof p->plain, &n) != 0)
            return -1;
        return send_bytes(p, p->plain, n);
    }
    if (strncmp(s, "rand:", 5) == 0) {
        size_t n = (size_t)atol(s + 5);
        char hex[2 * 70000 + 1];
        if (n > 65507)
            return -1;
        envelope_random_hex(hex, n);
        size_t got;
        if (hex_to_bytes(hex, p->plain, sizeof p->plain, &got) != 0)
            return -1;
        return send_bytes(p, p->plain, got);
    }
    if (strncmp(s, "big:", 4) == 0) {
        char id[MESSAGE_ID_LEN + 1];
        size_t n = 0;
        if (sscanf(s + 4, "%zu:%24[0-9a-f]", &n, id) != 2 || n < 60 || n > ENVELOPE_MAX_DATAGRAM)
            return -1;
        char *json = malloc(n + 1);
        int head = snprintf(json, n + 1, "{\"message_id\":\"%s\",\"pad\":\"", id);
        memset(json + head, 'x', n - (size_t)head - 2);
        memcpy(json + n - 2, "\"}", 3);
        int r = send_sealed(p, p->key, clock_real_ns(), json, n);
        free(json);
        return r;
    }
    if (strcmp(s, "again") == 0)
        return send_bytes(p, p->last, p->last_len);
    if (strncmp(s, "ack:", 4) == 0)
        return step_ack(p, s + 4);
    if (strncmp(s, "silence:", 8) == 0) {
        ssize_t n = wait_reply(p, atoi(s + 8));
        if (n != 0) {
            printf("unexpected reply of %zd bytes\n", n);
            return -1;
        }
        return 0;
    }
    return -1;
}

static int open_peer(struct peer *p, const char *host, const char *port, const char *key)
{
    p->key = envelope_key_from_hex(key);
    if (p->key == NULL || net_addr_parse(host, (unsigned)atoi(port), &p->to) != 0) {
        fprintf(stderr, "sgtest: bad key or address\n");
        return -1;
    }
    p->fd = socket(p->to.u.sa.sa_family, SOCK_DGRAM, 0);
    const char *src = getenv("SGTEST_SRC"), *lport = getenv("SGTEST_PORT");
    if (src == NULL && lport != NULL)
        src = p->to.u.sa.sa_family == AF_INET ? "127.0.0.1" : "::1";
    unsigned lp = lport != NULL ? (unsigned)atoi(lport) : 1;
    struct net_addr from;
    if (src != NULL) {
        int ok = net_addr_parse(src, lp, &from) == 0;
        if (ok && lport == NULL) { /* any port */
            if (from.u.sa.sa_family == AF_INET)
                from.u.v4.sin_port = 0;
            else
                from.u.v6.sin6_port = 0;
        }
        if (!ok || bind(p->fd, &from.u.sa, from.len) != 0) {
            fprintf(stderr, "sgtest: cannot send from %s port %u: %s\n", src, lp, strerror(errno));
            return -1;
        }
    }
    int big = 4 << 20;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    return p->fd < 0 ? -1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* N messages one at a time; a message without an ACK in 200 ms is sealed and sent again, as a
 * daemon would. */
static int cmd_rtt(struct peer *p, int n)
{
    uint64_t *us = calloc((size_t)n, sizeof *us);
    int resent = 0;
    for (int i = 0; i < n; i++) {
        char id[MESSAGE_ID_LEN + 1], json[128];
        envelope_random_hex(id, MESSAGE_ID_LEN / 2);
        int len = snprintf(json, sizeof json, "{\"message_id\":\"%s\",\"content\":\"rtt\"}", id);
        int64_t t0 = clock_mono_us();
        int acked = 0;
        for (int attempt = 0; attempt < 25 && !acked; attempt++) {
            if (attempt > 0)
                resent++;
            if (send_sealed(p, p->key, clock_real_ns(), json, (size_t)len) != 0)
                return 1;
            int64_t until = clock_mono_us() + 200000 * (int64_t)slow();
            while (!acked && clock_mono_us() < until) {
                ssize_t r = wait_reply(p, (int)((until - clock_mono_us()) / 1000) + 1);
                if (r < 0)
                    return 1;
                if (r > 0 && is_ack_of(p, (size_t)r, id))
                    acked = 1;
            }
        }
        if (!acked) {
            fprintf(stderr, "sgtest: no ACK for message %d after 25 tries\n", i);
            free(us);
            return 1;
        }
        us[i] = (uint64_t)(clock_mono_us() - t0);
    }
    qsort(us, (size_t)n, sizeof *us, cmp_u64);
    printf("{\"n\":%d,\"p50_us\":%llu,\"p99_us\":%llu,\"max_us\":%llu,\"resent\":%d}\n", n,
           (unsigned long long)us[n / 2], (unsigned long long)us[(size_t)(n * 99) / 100],
           (unsigned long long)us[n - 1], resent);
    free(us);
    return 0;
}

static int cmd_flood(struct peer *p, long n, const char *kind)
{
    char hex[65];
    envelope_random_hex(hex, 32);
    struct envelope_key *wrong = envelope_key_from_hex(hex);
    uint8_t junk[200];
    for (long i = 0; i < n; i++) {
        size_t len;
        if (strcmp(kind, "wrongkey") == 0) {
            static const char json[] = "{\"message_id\":\"0123456789abcdef01234567\",\"x\":1}";
            len =
                envelope_seal(wrong, clock_real_ns(), json, sizeof json - 1, p->buf, sizeof p->buf);
        } else if (strcmp(kind, "ack") == 0) {
            char id[MESSAGE_ID_LEN + 1], json[MESSAGE_ACK_MAX];
            envelope_random_hex(id, MESSAGE_ID_LEN / 2);
            size_t tlen = message_ack_text(id, json);
            len = envelope_seal(p->key, clock_real_ns(), json, tlen, p->buf, sizeof p->buf);
        } else {
            len = strcmp(kind, "short") == 0 ? (size_t)(i % 28) : 28 + (size_t)(i % 150);
            envelope_random_hex(hex, 16);
            for (size_t k = 0; k < len; k++)
                junk[k] = (uint8_t)(hex[k % 32] ^ (uint8_t)(i + (long)k));
            memcpy(p->buf, junk, len);
        }
        if (sendto(p->fd, p->buf, len, 0, &p->to.u.sa, p->to.len) < 0 && errno != EAGAIN &&
            errno != ENOBUFS)
            return 1;
    }
    envelope_key_free(wrong);
    return 0;
}

/* ---- version 2: messages in parts, sealed with the direction keys of a pair key ---- */

#define V2_FLOOD_MAX 1000000L
#define V2_DEFAULT_PART 1140 /* part_size_for_mtu(1280), the daemon's default */

struct v2 {
    struct envelope_key *out, *in; /* K(FROM->TO), to seal; K(TO->FROM), to open replies */
    uint8_t out_id[PEERKEYS_ID_BYTES];
    uint8_t body[ENVELOPE_V2_MAX_BODY];
};

static int v2_keys(struct v2 *v, const char *pair_hex, const char *from, const char *to)
{
    uint8_t pair[PEERKEYS_KEY_BYTES], k[PEERKEYS_KEY_BYTES];
    size_t n = 0;
    if (hex_to_bytes(pair_hex, pair, sizeof pair, &n) != 0 || n != sizeof pair ||
        peerkeys_direction(pair, from, to, k) != 0) {
        fprintf(stderr, "sgtest: bad pair key or names\n");
        return -1;
    }
    peerkeys_id(k, v->out_id);
    v->out = envelope_key_from_bytes(k);
    int rc = peerkeys_direction(pair, to, from, k);
    v->in = rc == 0 ? envelope_key_from_bytes(k) : NULL;
    memset(k, 0, sizeof k);
    memset(pair, 0, sizeof pair);
    return v->out != NULL && v->in != NULL ? 0 : -1;
}

static void v2_free(struct v2 *v)
{
    envelope_key_free(v->out);
    envelope_key_free(v->in);
}

/* Seals part h (data_len bytes of data) as type 0x02 with the current time and sends it. */
static int v2_send_part(struct peer *p, struct v2 *v, const struct part_header *h,
                        const uint8_t *data, size_t data_len)
{
    size_t bl = part_write(h, data, data_len, v->body, sizeof v->body);
    size_t n = bl > 0 ? envelope_v2_seal(v->out, v->out_id, ENVELOPE_V2_TYPE_PART, clock_real_ns(),
                                         v->body, bl, p->buf, sizeof p->buf)
                      : 0;
    if (n == 0) {
        fprintf(stderr, "sgtest: cannot write part %u of %u bytes\n", (unsigned)h->index,
                (unsigned)h->length);
        return -1;
    }
    if (sendto(p->fd, p->buf, n, 0, &p->to.u.sa, p->to.len) < 0 && errno != EAGAIN &&
        errno != ENOBUFS) {
        fprintf(stderr, "sgtest: send: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Reads one reply already queued (ms 0) or waits up to ms for one, and opens it
 * with K(TO->FROM): its type (0x01, 0x03) with *body and *len set, 0 if nothing
 * came, -1 on an error, -2 for a datagram that does not open.
 */
static int v2_reply(struct peer *p, struct v2 *v, int ms, const uint8_t **body, size_t *len)
{
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    int r = poll(&pfd, 1, ms);
    if (r <= 0)
        return r;
    ssize_t n = recv(p->fd, p->buf, sizeof p->buf, 0);
    if (n < 0)
        return -1;
    struct envelope_v2_header hd;
    uint64_t ts;
    if (envelope_v2_header(p->buf, (size_t)n, &hd) != 0 ||
        envelope_v2_open(v->in, p->buf, (size_t)n, p->plain, &ts, body, len) != ENVELOPE_OK)
        return -2;
    return hd.type;
}

/* Sleeps until datagram i of a run that began at t0 is due at per_sec a second. */
static void pace(int64_t t0, long i, long per_sec)
{
    int64_t due = t0 + (int64_t)((double)i * 1e6 / (double)per_sec);
    int64_t now = clock_mono_us();
    if (due - now >= 1000)
        poll(NULL, 0, (int)((due - now) / 1000));
}

static int cmd_parts_flood(struct peer *p, struct v2 *v, long n, long length, long part_size,
                           long per_sec)
{
    if (n < 1 || n > V2_FLOOD_MAX || length < 1 || length > (long)PART_MAX_MESSAGE ||
        part_size < 1 || part_size > 65535 || per_sec < 1 || per_sec > 1000000) {
        fprintf(stderr,
                "sgtest: parts-flood: N 1..%ld, LENGTH 1..%u, PART_SIZE 1..65535, "
                "PER_SEC 1..1000000\n",
                V2_FLOOD_MAX, (unsigned)PART_MAX_MESSAGE);
        return 2;
    }
    static uint8_t data[65535];
    memset(data, 'x', sizeof data);
    struct part_header h = {
        .sequence = 0, .length = (uint32_t)length, .part_size = (uint16_t)part_size, .index = 0};
    size_t first = (size_t)(length < part_size ? length : part_size);
    long part_acks = 0;
    int64_t t0 = clock_mono_us();
    for (long i = 0; i < n; i++) {
        char id[MESSAGE_ID_LEN + 1];
        envelope_random_hex(id, MESSAGE_ID_LEN / 2);
        if (part_id_from_hex(id, h.id) != 0 || v2_send_part(p, v, &h, data, first) != 0)
            return 1;
        const uint8_t *body;
        size_t len;
        int t;
        while ((t = v2_reply(p, v, 0, &body, &len)) != 0 && t != -1)
            part_acks += t == ENVELOPE_V2_TYPE_PART_ACK;
        pace(t0, i + 1, per_sec);
    }
    printf("sent %ld part_acks %ld ms %lld\n", n, part_acks,
           (long long)((clock_mono_us() - t0) / 1000));
    return 0;
}

/* Marks in have the parts a part ACK of id (for length) names; 1 if it was one, else 0. */
static int take_part_ack(const uint8_t *body, size_t len, const uint8_t id[PART_ID_BYTES],
                         uint32_t length, uint32_t count, uint8_t *have)
{
    uint8_t got[PART_ID_BYTES];
    uint32_t glen;
    struct part_range r[PART_ACK_RANGES_MAX];
    int nr;
    if (part_ack_parse(body, len, got, &glen, r, PART_ACK_RANGES_MAX, &nr) != 0 ||
        memcmp(got, id, PART_ID_BYTES) != 0 || glen != length)
        return 0;
    for (int k = 0; k < nr; k++)
        for (uint32_t i = r[k].first; i <= r[k].last && i < count; i++)
            have[i] = 1;
    return 1;
}

static int cmd_parts_send(struct peer *p, struct v2 *v, const char *id, long length, long part_size,
                          int ms)
{
    struct part_header h = {
        .sequence = 0, .length = (uint32_t)length, .part_size = (uint16_t)part_size};
    uint32_t count =
        part_size >= 1 && part_size <= 65535 && length >= 60 && length <= (long)PART_MAX_MESSAGE
            ? part_count((uint32_t)length, (uint16_t)part_size)
            : 0;
    if (count == 0 || (count > 1 && part_size < PART_MIN_SIZE) || part_id_from_hex(id, h.id) != 0) {
        fprintf(stderr, "sgtest: parts-send: a message id, LENGTH 60..%u, PART_SIZE 256..65535\n",
                (unsigned)PART_MAX_MESSAGE);
        return 2;
    }
    char *json = malloc((size_t)length);
    uint8_t *have = calloc(count, 1);
    if (json == NULL || have == NULL)
        return 1;
    int head = snprintf(json, (size_t)length, "{\"message_id\":\"%s\",\"pad\":\"", id);
    memset(json + head, 'x', (size_t)length - (size_t)head - 2);
    memcpy(json + length - 2, "\"}", 2);
    int64_t deadline = clock_mono_us() + (int64_t)ms * slow() * 1000;
    long sent = 0;
    int acked = 0, rc = 1;
    while (!acked && clock_mono_us() < deadline) {
        /* every part not known to have arrived, paced at 20,000 a second */
        int64_t t0 = clock_mono_us();
        long burst = 0;
        for (uint32_t i = 0; i < count; i++) {
            if (have[i])
                continue;
            h.index = i;
            size_t off = (size_t)i * (size_t)part_size;
            size_t dl = i + 1 < count ? (size_t)part_size : (size_t)length - off;
            if (v2_send_part(p, v, &h, (const uint8_t *)json + off, dl) != 0)
                goto out;
            sent++;
            pace(t0, ++burst, 20000);
        }
        /* then the replies, until the ACK, or 300 ms of silence */
        int64_t quiet = clock_mono_us() + 300000 * (int64_t)slow();
        for (int64_t t; !acked && (t = clock_mono_us()) < quiet && t < deadline;) {
            const uint8_t *body;
            size_t len;
            int64_t until = quiet < deadline ? quiet : deadline;
            int type = v2_reply(p, v, (int)((until - t + 999) / 1000), &body, &len);
            struct message_in m;
            if (type == -1)
                goto out;
            if (type == ENVELOPE_V2_TYPE_MESSAGE &&
                message_classify((const char *)body, len, &m) == MESSAGE_VALID &&
                m.kind == MESSAGE_ACK && strcmp(m.id, id) == 0)
                acked = 1;
            else if (type == ENVELOPE_V2_TYPE_PART_ACK &&
                     take_part_ack(body, len, h.id, h.length, count, have))
                quiet = clock_mono_us() + 300000 * (int64_t)slow();
        }
    }
    if (acked)
        printf("ack %s parts %u sent %ld\n", id, (unsigned)count, sent);
    else
        printf("no ACK for %s within %d ms (parts %u sent %ld)\n", id, ms * slow(), (unsigned)count,
               sent);
    rc = acked ? 0 : 1;
out:
    free(json);
    free(have);
    return rc;
}

/* ---- memgrep: copies of a secret left in a running process's memory ---- */

#define MEMGREP_CHUNK (1u << 20)
#define MEMGREP_MAX_REGION (1ull << 32) /* skip larger ones: ASan's shadow, mostly unmapped */

struct memgrep {
    const uint8_t *pat[2];
    size_t len[2];
    unsigned long hits[2];
    uint8_t *buf;
};

/* The first occurrence of pat in [p, end), or NULL (memmem would need _GNU_SOURCE here). */
static const uint8_t *memgrep_find(const uint8_t *p, const uint8_t *end, const uint8_t *pat,
                                   size_t len)
{
    while ((size_t)(end - p) >= len) {
        p = memchr(p, pat[0], (size_t)(end - p) - len + 1);
        if (p == NULL || memcmp(p, pat, len) == 0)
            return p;
        p++;
    }
    return NULL;
}

/*
 * Counts the patterns in [lo, hi) of mem. Chunks overlap by the longer pattern's length less
 * one, so no hit is split; one that lay wholly in the previous chunk is not counted again.
 */
static void memgrep_region(struct memgrep *g, int mem, uint64_t lo, uint64_t hi, const char *what)
{
    size_t keep = (g->len[0] > g->len[1] ? g->len[0] : g->len[1]) - 1;
    for (uint64_t at = lo; at < hi;) {
        size_t want = hi - at > MEMGREP_CHUNK ? MEMGREP_CHUNK : (size_t)(hi - at);
        ssize_t n = pread(mem, g->buf, want, (off_t)at);
        if (n <= 0)
            return; /* unreadable (a guard page): nothing of ours is there */
        for (int k = 0; k < 2; k++) {
            const uint8_t *p = g->buf, *end = g->buf + n;
            while ((p = memgrep_find(p, end, g->pat[k], g->len[k])) != NULL) {
                size_t i = (size_t)(p - g->buf);
                if (at == lo || i + g->len[k] > keep) {
                    g->hits[k]++;
                    fprintf(stderr, "memgrep: %s at 0x%" PRIx64 " in %s\n", k ? "bytes" : "text",
                            at + i, what);
                }
                p++;
            }
        }
        if ((size_t)n < want || at + (uint64_t)n >= hi)
            return;
        at += (uint64_t)n - keep;
    }
}

static int cmd_memgrep(const char *pid, const char *hex)
{
    static uint8_t raw[256];
    size_t raw_len = 0;
    char path[64];
    struct memgrep g = {{(const uint8_t *)hex, raw}, {strlen(hex), 0}, {0, 0}, NULL};
    if (g.len[0] == 0 || hex_to_bytes(hex, raw, sizeof raw, &raw_len) != 0 || raw_len == 0)
        return 2;
    g.len[1] = raw_len;
    snprintf(path, sizeof path, "/proc/%s/maps", pid);
    FILE *maps = fopen(path, "r");
    snprintf(path, sizeof path, "/proc/%s/mem", pid);
    int mem = open(path, O_RDONLY | O_CLOEXEC);
    g.buf = malloc(MEMGREP_CHUNK);
    if (maps == NULL || mem < 0 || g.buf == NULL) {
        fprintf(stderr, "sgtest: memgrep: cannot read process %s: %s\n", pid, strerror(errno));
        return 2;
    }
    char line[4096];
    while (fgets(line, sizeof line, maps) != NULL) {
        uint64_t lo, hi;
        char perms[8] = "", name[4096] = "";
        if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %4095[^\n]", &lo, &hi, perms,
                   name) < 3 ||
            perms[0] != 'r' || strcmp(name, "[vvar]") == 0 || strcmp(name, "[vsyscall]") == 0)
            continue;
        if (hi - lo > MEMGREP_MAX_REGION) {
            fprintf(stderr, "memgrep: skipped %" PRIu64 " MiB at 0x%" PRIx64 "\n", (hi - lo) >> 20,
                    lo);
            continue;
        }
        memgrep_region(&g, mem, lo, hi, name[0] != '\0' ? name : "[anon]");
    }
    printf("text %lu bytes %lu\n", g.hits[0], g.hits[1]);
    free(g.buf);
    close(mem);
    fclose(maps);
    return 0;
}

/* ---- end of memgrep ---- */

int main(int argc, char **argv)
{
    if (envelope_init() != 0 || argc < 2)
        return 2;
    const char *cmd = argv[1];
    if (strcmp(cmd, "seal") == 0 && argc == 5) {
        struct envelope_key *k = envelope_key_from_hex(argv[2]);
        static uint8_t out[ENVELOPE_MAX_DATAGRAM + 1];
        size_t n = k != NULL ? envelope_seal(k, strtoull(argv[3], NULL, 10), argv[4],
                                             strlen(argv[4]), out, sizeof out)
                             : 0;
        for (size_t i = 0; i < n; i++)
            printf("%02x", out[i]);
        printf("\n");
        envelope_key_free(k);
        return n > 0 ? 0 : 1;
    }
    if ((strcmp(cmd, "sealfile") == 0 && argc == 6) ||
        (strcmp(cmd, "plainfile") == 0 && argc == 5)) {
        int plain = cmd[0] == 'p';
        const char *json = argv[plain ? 3 : 4];
        uint64_t ts = strtoull(argv[plain ? 2 : 3], NULL, 10);
        static uint8_t out[ENVELOPE_MAX_DATAGRAM + 1];
        size_t n = 0, jl = strlen(json);
        if (plain && jl <= ENVELOPE_MAX_JSON) {
            memset(out, 0, sizeof out);
            for (int i = 0; i < 8; i++)
                out[ENVELOPE_NONCE_BYTES + i] = (uint8_t)(ts >> (56 - 8 * i));
            memcpy(out + ENVELOPE_NONCE_BYTES + ENVELOPE_TS_BYTES, json, jl);
            n = jl + ENVELOPE_OVERHEAD;
        } else if (!plain) {
            struct envelope_key *k = envelope_key_from_hex(argv[2]);
            n = k != NULL ? envelope_seal(k, ts, json, jl, out, sizeof out) : 0;
            envelope_key_free(k);
        }
        FILE *f = n > 0 ? fopen(argv[plain ? 4 : 5], "wb") : NULL;
        int ok = f != NULL && fwrite(out, 1, n, f) == n;
        if (f != NULL)
            fclose(f);
        return ok ? 0 : 1;
    }
    if (strcmp(cmd, "open") == 0 && argc == 4) {
        struct envelope_key *k = envelope_key_from_hex(argv[2]);
        static uint8_t in[ENVELOPE_MAX_DATAGRAM + 1], plain[ENVELOPE_MAX_DATAGRAM + 1];
        size_t n;
        uint64_t ts;
        const char *json;
        size_t len;
        int ok = k != NULL && hex_to_bytes(argv[3], in, sizeof in, &n) == 0 &&
                 envelope_open(k, in, n, plain, &ts, &json, &len) == ENVELOPE_OK;
        if (ok)
            printf("%llu %.*s\n", (unsigned long long)ts, (int)len, json);
        envelope_key_free(k);
        return ok ? 0 : 1;
    }
    if (strcmp(cmd, "hexfile") == 0 && argc == 4) {
        static uint8_t bytes[ENVELOPE_MAX_DATAGRAM + 1];
        size_t n;
        FILE *f = hex_to_bytes(argv[2], bytes, sizeof bytes, &n) == 0 ? fopen(argv[3], "wb") : NULL;
        int ok = f != NULL && fwrite(bytes, 1, n, f) == n;
        if (f != NULL)
            fclose(f);
        return ok ? 0 : 1;
    }
    if (strcmp(cmd, "memgrep") == 0 && argc == 4)
        return cmd_memgrep(argv[2], argv[3]);
    if (strcmp(cmd, "freeport") == 0) {
        struct net_addr a;
        int six = argc > 2 && strcmp(argv[2], "6") == 0;
        if (net_addr_parse(six ? "::1" : "127.0.0.1", 1, &a) != 0)
            return 1;
        a.u.v4.sin_port = 0; /* same offset for sin6_port */
        int fd = socket(a.u.sa.sa_family, SOCK_DGRAM, 0);
        if (fd < 0 || bind(fd, &a.u.sa, a.len) != 0)
            return 1;
        socklen_t len = a.len;
        getsockname(fd, &a.u.sa, &len);
        unsigned port;
        char host[NET_HOST_MAX];
        net_addr_format(&a, host, &port);
        printf("%u\n", port);
        close(fd);
        return 0;
    }
    if (argc < 5)
        return 2;
    static struct peer p;
    if (open_peer(&p, argv[2], argv[3], argv[4]) != 0)
        return 2;
    int rc = 0;
    if (strcmp(cmd, "rtt") == 0 && argc == 6)
        rc = cmd_rtt(&p, atoi(argv[5]));
    else if (strcmp(cmd, "flood") == 0 && argc == 7)
        rc = cmd_flood(&p, atol(argv[5]), argv[6]);
    else if ((strcmp(cmd, "parts-flood") == 0 && argc >= 9 && argc <= 11) ||
             (strcmp(cmd, "parts-send") == 0 && argc >= 9 && argc <= 11)) {
        static struct v2 v;
        long part_size = argc > 9 ? atol(argv[9]) : V2_DEFAULT_PART;
        if (v2_keys(&v, argv[4], argv[5], argv[6]) != 0)
            rc = 2;
        else if (cmd[6] == 'f')
            rc = cmd_parts_flood(&p, &v, atol(argv[7]), atol(argv[8]), part_size,
                                 argc > 10 ? atol(argv[10]) : 20000);
        else
            rc = cmd_parts_send(&p, &v, argv[7], atol(argv[8]), part_size,
                                argc > 10 ? atoi(argv[10]) : 10000);
        v2_free(&v);
    } else if (strcmp(cmd, "peer") == 0) {
        for (int i = 5; i < argc && rc == 0; i++)
            if (step(&p, argv[i]) != 0) {
                fprintf(stderr, "sgtest: step failed: %.80s\n", argv[i]);
                rc = 1;
            }
    } else {
        rc = 2;
    }
    envelope_key_free(p.key);
    close(p.fd);
    return rc;
}
