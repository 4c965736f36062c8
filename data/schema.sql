-- securedgram / SecureDGram message store (SQLite 3, WAL mode).
-- Create a database by hand with:  sqlite3 securedgram.db < data/schema.sql
-- The daemon creates the same tables itself if they are missing.
-- peer (both tables, NULL when the shared secret is used): the peer, by its name in the
-- peers file, that sent an inbound row or that an outbound row goes to (its dst_addr and
-- dst_port are then ignored). A database without it gets it when it is opened.
-- sequence (both tables, NULL for a message sealed with version 1): the message's number in
-- its sender's messages to its receiver (one direction of one pair, from 1; docs/wire.md,
-- "Order"): on an inbound row the number it arrived with, on an outbound row the number it
-- was given when first sent to a version 2 peer (a retransmission carries it again).
-- peer_sequence: the last number given to each peer's outbound messages, so that deleting
-- rows (sg-clean) never makes a number be given twice. A database without them gets them
-- when it is opened.
PRAGMA journal_mode = WAL;

CREATE TABLE IF NOT EXISTS outbound_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      TEXT,
    dst_addr        TEXT    NOT NULL,
    dst_port        INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    retry_count     INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')),
    sent_at         TEXT,
    ack_received_at TEXT,
    last_error      TEXT,
    updated_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')),
    peer            TEXT,
    sequence        INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_outbound_message_id ON outbound_messages (message_id);
CREATE INDEX IF NOT EXISTS idx_outbound_state ON outbound_messages (state);

CREATE TABLE IF NOT EXISTS inbound_messages (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       TEXT    NOT NULL,
    src_addr         TEXT    NOT NULL,
    src_port         INTEGER NOT NULL,
    payload          TEXT    NOT NULL,
    crypto_timestamp TEXT    NOT NULL,
    state            TEXT    NOT NULL DEFAULT 'received',
    ack_sent         INTEGER NOT NULL DEFAULT 0,
    read_count       INTEGER NOT NULL DEFAULT 0,
    received_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')),
    ack_sent_at      TEXT,
    updated_at       TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')),
    peer             TEXT,
    sequence         INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_inbound_message_id ON inbound_messages (message_id);
CREATE INDEX IF NOT EXISTS idx_inbound_state ON inbound_messages (state);

CREATE TABLE IF NOT EXISTS peer_sequence (
    peer TEXT    NOT NULL PRIMARY KEY,
    last INTEGER NOT NULL
);
