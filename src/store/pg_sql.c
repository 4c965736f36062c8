/*
 * pg_sql: the text of every fixed statement of the PostgreSQL backend, with
 * what each writes (pg_impl.h's PG_* flags), and store_begin's. They run
 * through pg.c's one path, prepared once per session. Times are the caller's
 * text (store_format_ms) as in SQLite; leases are the server's clock.
 */
#include "store/pg_impl.h"

/* Ports as rows hold them: anything but 1 to 65535 reads as -1. */
#define PORT_OR_BAD(col) "CASE WHEN " col " BETWEEN 1 AND 65535 THEN " col " ELSE -1 END"

/*
 * The columns every outbound row query starts with (pg_outbound_columns):
 * id, message_id, dst_addr, dst_port as text, retry_count, the port checked,
 * peer, sequence, created_at in ms.
 */
#define OUT_COLS(o)                                                                                \
    o "id, " o "message_id, " o "dst_addr, " o "dst_port::text, " o                                \
      "retry_count, " PORT_OR_BAD(o "dst_port") ", " o "peer, " o                                  \
                                                "sequence, " PG_MS(o "created_at")

/* What the claim leaves out ($2 skipped ids, $3/$4 destinations, $5 peers): anti-joins. */
#define EXCLUDED                                                                                   \
    "NOT EXISTS (SELECT 1 FROM unnest($2::bigint[]) k(id) WHERE k.id = o.id) "                     \
    "AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::bigint[]) b(addr, port) "                \
    "WHERE o.peer IS NULL AND b.addr = o.dst_addr AND b.port = o.dst_port) "                       \
    "AND NOT EXISTS (SELECT 1 FROM unnest($5::text[]) p(name) WHERE p.name = o.peer)"

/*
 * Claims. claimed_by is this connection's identity, host:pid:K, K the 16 hex
 * digits of the session advisory lock it holds while connected (pg_open.c).
 * A claim's lease ends at lease_until (the server's clock), or as soon as its
 * holder's session ends: its lock is then gone from pg_locks (a daemon that
 * crashed or stopped; its successor takes its rows back at once, as SQLite's
 * recovery does). A row whose claimed_by is NULL or not ours in that form has
 * no live lease.
 */
#define LIVE                                                                                       \
    "live AS MATERIALIZED (SELECT lpad(to_hex(classid::bigint), 8, '0') || "                       \
    "lpad(to_hex(objid::bigint), 8, '0') AS k FROM pg_catalog.pg_locks "                           \
    "WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND database = "                     \
    "(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))"
#define LEASE_ENDED                                                                                \
    "(claimed_by IS NULL OR lease_until IS NULL OR lease_until < clock_timestamp() "               \
    "OR right(claimed_by, 16) NOT IN (SELECT k FROM live))"
#define LEASE(n) "clock_timestamp() + make_interval(secs => $" n "::float8)"

static const struct {
    const char *sql;
    int flags;
} stmts[P_COUNT] = {
    /*
     * The pending rows, in id order, without payloads. In a transaction (the
     * daemon's turn) they are locked FOR UPDATE SKIP LOCKED: another daemon's
     * turn skips them (and this one skips its), so the claim that follows
     * (P_TAKE) never waits and never takes another's row. Outside one (a
     * tool), a plain read that no lock holds up.
     */
    [P_PENDING] = {"SELECT " OUT_COLS("") " FROM outbound_messages WHERE state = 'pending' "
                                          "ORDER BY id LIMIT $1::bigint",
                   PG_READ},
    [P_PENDING_LOCK] = {"SELECT " OUT_COLS(
                            "") " FROM outbound_messages WHERE state = 'pending' "
                                "ORDER BY id LIMIT $1::bigint FOR UPDATE SKIP LOCKED",
                        PG_READ},
    [P_PENDING_EX] = {"SELECT " OUT_COLS("o.") " FROM outbound_messages o WHERE o.state = "
                                               "'pending' AND " EXCLUDED
                                               " ORDER BY o.id LIMIT $1::bigint",
                      PG_READ},
    [P_PENDING_EX_LOCK] = {"SELECT " OUT_COLS(
                               "o.") " FROM outbound_messages o WHERE o.state = "
                                     "'pending' AND " EXCLUDED
                                     " ORDER BY o.id LIMIT $1::bigint FOR UPDATE OF o SKIP LOCKED",
                           PG_READ},
    /* Payloads by id, in the order asked: one over $2 bytes is measured, never sent. */
    [P_PAYLOADS] = {"SELECT o.id IS NOT NULL, octet_length(o.payload), CASE WHEN "
                    "octet_length(o.payload) <= $2::bigint THEN o.payload END FROM "
                    "unnest($1::bigint[]) WITH ORDINALITY u(id, k) LEFT JOIN outbound_messages o "
                    "ON o.id = u.id ORDER BY u.k",
                    PG_READ},
    /*
     * The rows left 'sent' (to retransmit): this connection's, and those
     * whose lease has ended, which it takes over (claimed_by, a new lease);
     * never another live daemon's. $3 now (ms), for the age.
     */
    [P_LOAD_SENT] =
        {"WITH " LIVE ", cand AS MATERIALIZED (SELECT id FROM outbound_messages "
         "WHERE state = 'sent' AND id > $1::bigint AND claimed_by IS DISTINCT FROM "
         "$4::text AND " LEASE_ENDED " ORDER BY id LIMIT $2::bigint FOR UPDATE SKIP "
         "LOCKED), adopt AS (UPDATE outbound_messages o SET claimed_by = $4::text, "
         "lease_until = " LEASE(
             "5") " FROM cand WHERE o.id = cand.id RETURNING o.id) "
                  "SELECT " OUT_COLS("o.") ", $3::bigint - " PG_MS(
                      "o.sent_at") " FROM outbound_messages o WHERE o.state = 'sent' AND o.id "
                                   "> $1::bigint AND (o.claimed_by = $4::text OR o.id IN "
                                   "(SELECT id FROM adopt)) ORDER BY o.id LIMIT $2::bigint",
         PG_W_OUT | PG_READ | PG_QUIET},
    [P_GET_SENT] = {"SELECT " OUT_COLS("") ", 0, CASE WHEN octet_length(payload) <= $2::bigint "
                                           "THEN payload END, octet_length(payload) FROM "
                                           "outbound_messages WHERE id = $1::bigint AND state = "
                                           "'sent'",
                    PG_READ},
    /*
     * pending -> sent, the daemon's claim of one row, leased to this
     * connection. A message_id another row has is found here (no row
     * changes; P_IDENTITY_WHY tells why), not by the unique index's error.
     */
    [P_TAKE] =
        {"UPDATE outbound_messages SET state = 'sent', message_id = $2::text, payload = "
         "COALESCE($3::text, payload), sent_at = $4::text, updated_at = $4::text, "
         "sequence = COALESCE($7::bigint, sequence), claimed_by = $5::text, lease_until = " LEASE(
             "6") " WHERE id = $1::bigint AND state = 'pending' AND NOT EXISTS (SELECT 1 "
                  "FROM outbound_messages x WHERE x.message_id = $2::text AND x.id <> "
                  "$1::bigint)",
         PG_W_OUT},
    /*
     * P_TAKE for a set of rows ($1 ids, $2 message_ids, $3 payloads or NULL,
     * $4 sequences or NULL), returning the ordinals of the rows taken. A
     * message_id another row has, or one the set gives twice (the later
     * ones), is not written: no unique violation can end the transaction.
     */
    [P_TAKE_SET] =
        {"WITH v AS MATERIALIZED (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], "
         "$4::bigint[]) WITH ORDINALITY AS v(id, mid, body, seq, k)), ok AS (SELECT v.* FROM v "
         "WHERE NOT EXISTS (SELECT 1 FROM v w WHERE w.mid = v.mid AND w.k < v.k) AND NOT EXISTS "
         "(SELECT 1 FROM outbound_messages x WHERE x.message_id = v.mid AND x.id <> v.id)) UPDATE "
         "outbound_messages o SET state = 'sent', message_id = ok.mid, payload = COALESCE(ok.body, "
         "o.payload), sent_at = $5::text, updated_at = $5::text, sequence = COALESCE(ok.seq, "
         "o.sequence), claimed_by = $6::text, lease_until = " LEASE(
             "7") " FROM ok WHERE o.id = ok.id AND o.state = 'pending' RETURNING ok.k",
         PG_W_OUT},
    [P_IDENTITY_WHY] = {"SELECT coalesce((SELECT state FROM outbound_messages WHERE id = "
                        "$1::bigint), ''), coalesce((SELECT claimed_by = $3::text FROM "
                        "outbound_messages WHERE id = $1::bigint), false), EXISTS (SELECT 1 FROM "
                        "outbound_messages WHERE message_id = $2::text AND id <> $1::bigint)",
                        PG_READ},
    /*
     * sending/sent -> sent: a retransmission renews the sender's lease. A row
     * another daemon has taken over is left as it is.
     */
    [P_SENT] = {"UPDATE outbound_messages SET state = 'sent', retry_count = $2::bigint, sent_at = "
                "$4::text, last_error = COALESCE($3::text, last_error), updated_at = $4::text, "
                "claimed_by = $5::text, lease_until = " LEASE(
                    "6") " WHERE id = $1::bigint AND state IN ('sending', 'sent') AND "
                         "(claimed_by IS NULL OR claimed_by = $5::text)",
                PG_W_OUT},
    /* A finished row drops its lease and keeps claimed_by (who sent it). */
    [P_FAILED] = {"UPDATE outbound_messages SET state = 'send_failed', retry_count = $2::bigint, "
                  "last_error = $3::text, updated_at = $4::text, lease_until = NULL WHERE id = "
                  "$1::bigint AND state IN ('pending', 'sending', 'sent')",
                  PG_W_OUT},
    /* An ACK is an ACK, whoever sent the row. */
    [P_ACKED] = {"UPDATE outbound_messages SET state = 'acknowledged', ack_received_at = $2::text, "
                 "updated_at = $2::text, lease_until = NULL WHERE id = $1::bigint AND state IN "
                 "('sent', 'sending')",
                 PG_W_OUT},
    /* The set forms (pg_set.c): the rows as arrays, unnested in one statement. */
    [P_SENT_SET] = {"UPDATE outbound_messages AS o SET state = 'sent', retry_count = j.r, sent_at "
                    "= $4::text, last_error = COALESCE(j.w, o.last_error), updated_at = $4::text, "
                    "claimed_by = $5::text, lease_until = " LEASE(
                        "6") " FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS j(id, r, "
                             "w) WHERE o.id = j.id AND o.state IN ('sending', 'sent') AND "
                             "(o.claimed_by IS NULL OR o.claimed_by = $5::text)",
                    PG_W_OUT},
    [P_FAILED_SET] = {"UPDATE outbound_messages AS o SET state = 'send_failed', retry_count = "
                      "j.r, last_error = j.w, updated_at = $4::text, lease_until = NULL FROM "
                      "unnest($1::bigint[], $2::bigint[], $3::text[]) AS j(id, r, w) WHERE o.id = "
                      "j.id AND o.state IN ('pending', 'sending', 'sent')",
                      PG_W_OUT},
    [P_ACKED_SET] = {"UPDATE outbound_messages SET state = 'acknowledged', ack_received_at = "
                     "$2::text, updated_at = $2::text, lease_until = NULL WHERE id = "
                     "ANY($1::bigint[]) AND state IN ('sent', 'sending')",
                     PG_W_OUT},
    /*
     * The set-based claim (pending -> sending), as data/schema-pg.sql verifies
     * it: the locking read runs once (MATERIALIZED) and skips what another
     * session holds, so two daemons never claim one row.
     */
    [P_CLAIM] = {"WITH c AS MATERIALIZED (SELECT o.id FROM outbound_messages o WHERE o.state = "
                 "'pending' AND " EXCLUDED " ORDER BY o.id LIMIT $1::bigint FOR UPDATE OF o SKIP "
                 "LOCKED) UPDATE outbound_messages AS o SET state = 'sending', claimed_by = "
                 "$6::text, lease_until = " LEASE("7") ", updated_at = $8::text FROM c WHERE o.id "
                                                       "= c.id RETURNING " OUT_COLS("o."),
                 PG_W_OUT},
    /* A claimed row's identity: only this connection's claim. */
    [P_IDENTIFY] = {"UPDATE outbound_messages SET message_id = $2::text, payload = "
                    "COALESCE($3::text, payload), updated_at = $4::text, lease_until = " LEASE(
                        "6") " WHERE id = $1::bigint AND state = 'sending' AND claimed_by = "
                             "$5::text AND NOT EXISTS (SELECT 1 FROM outbound_messages x WHERE "
                             "x.message_id = $2::text AND x.id <> $1::bigint)",
                    PG_W_OUT},
    [P_RELEASE] = {"UPDATE outbound_messages SET state = 'pending', claimed_by = NULL, "
                   "lease_until = NULL, updated_at = $2::text WHERE id = ANY($1::bigint[]) AND "
                   "state = 'sending' AND claimed_by = $3::text",
                   PG_W_OUT},
    /*
     * Crash recovery, instead of SQLite's "every sending row back to
     * pending" (which here would take live daemons' rows): only rows whose
     * lease has ended, or this connection's own. SKIP LOCKED: a row its
     * holder is writing right now is its holder's.
     */
    [P_RECOVER] = {"WITH " LIVE ", cand AS MATERIALIZED (SELECT id FROM outbound_messages WHERE "
                   "state = 'sending' AND (claimed_by = $2::text OR " LEASE_ENDED
                   ") FOR UPDATE SKIP LOCKED) UPDATE outbound_messages o SET state = 'pending', "
                   "claimed_by = NULL, lease_until = NULL, updated_at = $1::text FROM cand WHERE "
                   "o.id = cand.id",
                   PG_W_OUT},
    /* A silent destination's backlog fails on time; rows another turn holds are its own. */
    [P_EXPIRE] = {"WITH cand AS MATERIALIZED (SELECT id FROM outbound_messages WHERE state = "
                  "'pending' AND dst_addr = $1::text AND dst_port = $2::bigint AND peer IS NULL "
                  "AND " PG_MS("created_at") " < $3::bigint AND id <> ALL($6::bigint[]) FOR "
                                             "UPDATE SKIP LOCKED) UPDATE outbound_messages o SET "
                                             "state = 'send_failed', last_error = $4::text, "
                                             "updated_at = $5::text, lease_until = NULL FROM "
                                             "cand WHERE o.id = cand.id",
                  PG_W_OUT},
    [P_EXPIRE_PEER] = {"WITH cand AS MATERIALIZED (SELECT id FROM outbound_messages WHERE state = "
                       "'pending' AND peer = $1::text AND " PG_MS(
                           "created_at") " < $2::bigint AND id <> ALL($5::bigint[]) FOR UPDATE "
                                         "SKIP LOCKED) UPDATE outbound_messages o SET state = "
                                         "'send_failed', last_error = $3::text, updated_at = "
                                         "$4::text, lease_until = NULL FROM cand WHERE o.id = "
                                         "cand.id",
                       PG_W_OUT},
    /*
     * Not a plain INSERT: ON CONFLICT DO NOTHING stores nothing for a
     * message_id stored already (any UNIQUE index), and P_IN_EXISTS tells a
     * duplicate from a refusal, as SQLite's statement does. $9: a message to
     * ourselves, whose own outbound row awaiting its ACK is expected.
     */
    [P_IN_INSERT] = {"INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
                     "crypto_timestamp, received_at, updated_at, peer, sequence) SELECT $1::text, "
                     "$2::text, $3::bigint, $4::text, $5::text, $6::text, $6::text, $7::text, "
                     "$8::bigint WHERE ($9::boolean OR NOT EXISTS (SELECT 1 FROM "
                     "outbound_messages WHERE message_id = $1::text AND state IN ('sending', "
                     "'sent'))) AND NOT EXISTS (SELECT 1 FROM inbound_messages WHERE message_id = "
                     "$1::text) ON CONFLICT DO NOTHING RETURNING id",
                     PG_W_IN},
    [P_IN_INSERT_SET] = {"INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
                         "crypto_timestamp, received_at, updated_at, peer, sequence) SELECT j.m, "
                         "j.a, j.p, j.b, j.t, $9::text, $9::text, j.w, j.s FROM unnest($1::text[], "
                         "$2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], "
                         "$7::bigint[], $8::boolean[]) WITH ORDINALITY AS j(m, a, p, b, t, w, s, "
                         "self, k) WHERE (j.self OR NOT EXISTS (SELECT 1 FROM outbound_messages o "
                         "WHERE o.message_id = j.m AND o.state IN ('sending', 'sent'))) AND NOT "
                         "EXISTS (SELECT 1 FROM inbound_messages i WHERE i.message_id = j.m) ORDER "
                         "BY j.k ON CONFLICT DO NOTHING RETURNING id, message_id",
                         PG_W_IN},
    [P_IN_EXISTS] = {"SELECT EXISTS (SELECT 1 FROM inbound_messages WHERE message_id = $1::text), "
                     "EXISTS (SELECT 1 FROM outbound_messages WHERE message_id = $1::text AND "
                     "state IN ('sending', 'sent'))",
                     PG_READ},
    [P_IN_ACK_SENT] = {"UPDATE inbound_messages SET state = 'ack_sent', ack_sent = 1, ack_sent_at "
                       "= $2::text, updated_at = $2::text WHERE message_id = $1::text AND state = "
                       "'received'",
                       PG_W_IN},
    [P_IN_ACK_FAILED] = {"UPDATE inbound_messages SET state = 'ack_failed', updated_at = $2::text "
                         "WHERE message_id = $1::text AND state = 'received'",
                         PG_W_IN},
    [P_IN_ACK_SENT_SET] = {"UPDATE inbound_messages SET state = 'ack_sent', ack_sent = 1, "
                           "ack_sent_at = $2::text, updated_at = $2::text WHERE message_id = "
                           "ANY($1::text[]) AND state = 'received'",
                           PG_W_IN},
    [P_IN_ACK_SENT_ROW] = {"UPDATE inbound_messages SET state = 'ack_sent', ack_sent = 1, "
                           "ack_sent_at = $2::text, updated_at = $2::text WHERE id = $1::bigint "
                           "AND state = 'received'",
                           PG_W_IN},
    [P_IN_ACK_SENT_ROW_SET] = {"UPDATE inbound_messages SET state = 'ack_sent', ack_sent = 1, "
                               "ack_sent_at = $2::text, updated_at = $2::text WHERE id = "
                               "ANY($1::bigint[]) AND state = 'received'",
                               PG_W_IN},
    [P_IN_ACK_FAILED_SET] = {"UPDATE inbound_messages SET state = 'ack_failed', updated_at = "
                             "$2::text WHERE message_id = ANY($1::text[]) AND state = 'received'",
                             PG_W_IN},
    [P_IN_UNACKED] = {"SELECT id, message_id, src_addr, " PORT_OR_BAD(
                          "src_port") ", peer, sequence FROM inbound_messages WHERE state = "
                                      "'received' AND id > $1::bigint ORDER BY id LIMIT $2::bigint",
                      PG_READ},
    /* sg-send: a taken message_id stores nothing (ON CONFLICT), then P_IDENTITY_WHY says DUP. */
    /*
     * A message_id taken is found first: ON CONFLICT alone would still draw
     * an id from the sequence, and the next row's would not be SQLite's
     * (the tools' receipts print it). The same in the inserts above.
     */
    [P_ENQUEUE] = {"INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, "
                   "created_at, updated_at, peer) SELECT $1::text, $2::text, $3::bigint, "
                   "$4::text, $5::text, $5::text, $6::text WHERE $1::text IS NULL OR NOT EXISTS "
                   "(SELECT 1 FROM outbound_messages WHERE message_id = $1::text) ON CONFLICT DO "
                   "NOTHING RETURNING id",
                   PG_W_OUT},
    [P_OUT_STATE] = {"SELECT state, last_error FROM outbound_messages WHERE id = $1::bigint",
                     PG_READ},
    [P_REQUEUE] = {"UPDATE outbound_messages SET state = 'pending', retry_count = 0, last_error = "
                   "NULL, updated_at = $3::text, claimed_by = NULL, lease_until = NULL WHERE state "
                   "= 'send_failed' AND ($1::bigint = 0 OR id = $1::bigint) AND ($2::text IS NULL "
                   "OR peer = $2::text)",
                   PG_W_OUT},
    /* Every write sets updated_at, as the original's do: sg-clean ages rows by it. */
    [P_MARK] = {"UPDATE inbound_messages SET read_count = read_count + 1, updated_at = $2::text "
                "WHERE id = ANY($1::bigint[])",
                PG_W_IN},
    [P_UNMARK] = {"UPDATE inbound_messages SET read_count = read_count - 1, updated_at = $2::text "
                  "WHERE id = ANY($1::bigint[]) AND read_count > 0",
                  PG_W_IN},
    /* The contract's columns, in its order (not claimed_by, lease_until): sg-recv shows them. */
    [P_FETCH_IN] = {"SELECT id, message_id, src_addr, src_port, payload, crypto_timestamp, state, "
                    "ack_sent, read_count, received_at, ack_sent_at, updated_at, peer, sequence "
                    "FROM inbound_messages WHERE id = $1::bigint",
                    PG_READ},
    [P_FETCH_OUT] = {"SELECT id, message_id, dst_addr, dst_port, payload, state, retry_count, "
                     "created_at, sent_at, ack_received_at, last_error, updated_at, peer, sequence "
                     "FROM outbound_messages WHERE id = $1::bigint",
                     PG_READ},
    [P_MAX_IN] = {"SELECT coalesce(max(id), 0) FROM inbound_messages", PG_READ},
    [P_MAX_OUT] = {"SELECT coalesce(max(id), 0) FROM outbound_messages", PG_READ},
    /* Names a peer may have only (1 to STORE_FIELD_MAX bytes), in byte order (COLLATE "C"). */
    [P_SEQ_LOAD] =
        {"SELECT peer, CASE WHEN last > 0 THEN last ELSE 0 END FROM peer_sequence "
         "WHERE peer > $1::text AND octet_length(peer) BETWEEN 1 AND $3::bigint ORDER BY "
         "peer LIMIT $2::bigint",
         PG_READ},
    /* Never lower: the larger of the stored and the given number stays. */
    [P_SEQ_SAVE] = {"INSERT INTO peer_sequence AS s (peer, last) VALUES ($1::text, $2::bigint) ON "
                    "CONFLICT (peer) DO UPDATE SET last = GREATEST(excluded.last, s.last)",
                    PG_W_SEQ},
    [P_WATCH] = {"SELECT (SELECT coalesce(max(id), 0) FROM outbound_messages), (SELECT "
                 "coalesce(max(id), 0) FROM inbound_messages)",
                 PG_READ},
    /*
     * The leases of this connection's rows in flight, renewed before they
     * end: a row waits in 'sent' as long as its retransmissions allow
     * (SECUREDGRAM_RETRY_INTERVAL, or a give-up-after span, may exceed the
     * lease), and is this daemon's all that time. Idempotent: run again
     * after a reconnection. Quiet: nothing others wait for.
     */
    [P_RENEW] = {"UPDATE outbound_messages SET lease_until = " LEASE(
                     "2") " WHERE state IN ('sending', 'sent') AND claimed_by = $1::text AND "
                          "lease_until < clock_timestamp() + make_interval(secs => $3::float8)",
                 PG_W_OUT | PG_READ | PG_QUIET},
};

/*
 * store_begin's rules check, prepared once per session (SQL-level PREPARE,
 * run by EXECUTE in BEGIN's own round trip). $1 the fingerprint of the last
 * check, $2 1 to check in any case. It returns the fingerprint of the three
 * tables' pg_class rows (a new xmin for ADD COLUMN, a CHECK, a first
 * trigger, row security, a rewrite), and, only if that changed or $2, the
 * tables that carry rules of their operator (then writes run in savepoints):
 * a trigger, a constraint but the primary key, a UNIQUE or exclusion index
 * but ours, another number of columns (dropped ones count: the check errs on
 * the safe side) or of NOT NULL columns, a column of another type, a rule,
 * row security. The full check costs some 0.5 ms; the fingerprint a few
 * index look-ups.
 */
#define PG_TABLE_OIDS                                                                              \
    "(to_regclass('outbound_messages'), to_regclass('inbound_messages'), "                         \
    "to_regclass('peer_sequence'))"

const char pg_begin_prepare_sql[] =
    "PREPARE sg_begin(text, boolean) AS SELECT s.fp, CASE WHEN s.fp IS DISTINCT FROM $1 OR $2 "
    "THEN (SELECT coalesce(string_agg(c.relname::text, ','), '') FROM pg_catalog.pg_class c WHERE "
    "c.oid IN " PG_TABLE_OIDS " AND (c.relhasrules OR c.relrowsecurity OR c.relnatts <> CASE "
    "c.relname WHEN 'outbound_messages' THEN 16 WHEN 'inbound_messages' THEN 14 ELSE 2 END OR "
    "(SELECT count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND "
    "a.attnotnull) <> CASE c.relname WHEN 'outbound_messages' THEN 8 WHEN 'inbound_messages' THEN "
    "11 ELSE 2 END OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND "
    "a.attnum > 0 AND NOT a.attisdropped AND (a.atttypmod <> -1 OR a.atttypid NOT IN "
    "('text'::regtype, 'bigint'::regtype, 'timestamptz'::regtype))) OR EXISTS (SELECT 1 FROM "
    "pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) OR EXISTS (SELECT 1 "
    "FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype <> 'p') OR EXISTS "
    "(SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid "
    "WHERE i.indrelid = c.oid AND NOT i.indisprimary AND (i.indisunique OR i.indisexclusion) AND "
    "ic.relname NOT IN ('idx_outbound_message_id', 'idx_inbound_message_id')))) END FROM (SELECT "
    "(SELECT string_agg(c.oid::text || ':' || c.xmin::text || ':' || c.relnatts || ':' || "
    "c.relchecks || ':' || c.relhastriggers::int || c.relhasrules::int || c.relrowsecurity::int, "
    "',' ORDER BY c.oid) FROM pg_catalog.pg_class c WHERE c.oid IN " PG_TABLE_OIDS ") AS fp) s";

/* The transaction, the tables' write lock (pg.c), then the check: its arguments and ")" follow. */
const char pg_begin_sql[] =
    "BEGIN; LOCK TABLE outbound_messages, inbound_messages, peer_sequence IN ROW EXCLUSIVE MODE; "
    "EXECUTE sg_begin(";

const char *pg_sql(enum pg_query q)
{
    return stmts[q].sql;
}

int pg_sql_flags(enum pg_query q)
{
    return stmts[q].flags;
}
