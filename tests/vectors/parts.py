#!/usr/bin/env python3
"""Writes tests/vectors/parts.json: version 2 datagrams of message parts (type 0x02) and part
ACKs (type 0x03), docs/wire.md "Version 2: messages in parts", sealed with the berlin/paris
direction keys of peerkeys.json by the plain-Python XChaCha20-Poly1305 of envelope_v2.py; and
bodies that break a rule, each with why. tests/unit/test_parts.c checks the daemon against them.
Python 3 standard library only."""
import ast, json, os, struct

here = os.path.dirname(os.path.abspath(__file__))


def load_xchacha_seal():
    """envelope_v2.py's xchacha_seal, without running its top level (which rewrites
    envelope_v2.json): only its imports, functions and CONSTANTS are executed."""
    path = os.path.join(here, "envelope_v2.py")
    tree = ast.parse(open(path).read(), path)
    keep = [n for n in tree.body
            if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))
            or (isinstance(n, ast.Assign)
                and all(isinstance(t, ast.Name) and t.id.isupper() for t in n.targets))]
    ns = {}
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, "exec"), ns)
    return ns["xchacha_seal"]


xchacha_seal = load_xchacha_seal()
keys = json.load(open(os.path.join(here, "peerkeys.json")))["vectors"][0]
assert keys["a"] == "berlin" and keys["b"] == "paris"

TYPE_PART, TYPE_PART_ACK = 2, 3
MAX_MESSAGE = 16 << 20


def part_body(sequence, mid, length, part_size, index, data, flags=0):
    return struct.pack(">Q12sIHHI", sequence, bytes.fromhex(mid), length, part_size, flags,
                       index) + data


def ack_body(mid, length, ranges, n=None, reserved=0):
    body = struct.pack(">12sIHH", bytes.fromhex(mid), length,
                       len(ranges) if n is None else n, reserved)
    return body + b"".join(struct.pack(">II", f, l) for f, l in ranges)


def seal(direction, typ, nonce, ts, body):
    key = bytes.fromhex(keys["key_" + direction])
    kid = bytes.fromhex(keys["id_" + direction])
    header = bytes([2, typ, 0, 0]) + kid + nonce
    dgram = header + xchacha_seal(key, nonce, struct.pack(">Q", ts) + body, header)
    return {"key": key.hex(), "key_id": kid.hex(), "nonce": nonce.hex(), "timestamp_ns": ts,
            "type": typ, "body_hex": body.hex(), "datagram_hex": dgram.hex()}


def message(mid, length):
    """The JSON text of a type 0x01 message of exactly length bytes."""
    head = '{"message_id":"%s","content":"' % mid
    text = head + "".join(chr(ord("a") + i % 26) for i in range(length - len(head) - 2)) + '"}'
    assert len(text) == length
    return text.encode()


def split(text, part_size):
    count = -(-len(text) // part_size)
    return [text[i * part_size:(i + 1) * part_size] for i in range(count)]


parts, acks, bad = [], [], []
ts0 = 1800000000000000000


def add_parts(name, direction, sequence, mid, text, part_size, nonce_base, ts):
    pieces = split(text, part_size)
    for i, data in enumerate(pieces):
        v = {"name": "%s, part %d of %d" % (name, i + 1, len(pieces)), "direction": direction}
        v.update(seal(direction, TYPE_PART, bytes([nonce_base + i] * 24), ts + i,
                      part_body(sequence, mid, len(text), part_size, i, data)))
        v.update({"sequence": sequence, "message_id": mid, "length": len(text),
                  "part_size": part_size, "count": len(pieces), "index": i,
                  "data_hex": data.hex()})
        parts.append(v)


# One part (the message is shorter than the part size of the default MTU, 1140).
add_parts("one-part message, sequence 1", "a_to_b", 1, "0123456789abcdef01234567",
          b'{"message_id":"0123456789abcdef01234567","content":"hello"}', 1140, 0x10, ts0)
# Three parts of 256, 256 and 188 bytes: the last is shorter than the part size.
add_parts("700 bytes in parts of 256", "a_to_b", 2, "00112233445566778899aabb",
          message("00112233445566778899aabb", 700), 256, 0x20, ts0 + 1000)
# Two full parts: the last is exactly the part size.
add_parts("512 bytes in parts of 256", "b_to_a", 7, "ffeeddccbbaa998877665544",
          message("ffeeddccbbaa998877665544", 512), 256, 0x30, ts0 + 2000)
# No sequence number (0).
add_parts("no sequence", "b_to_a", 0, "a0a1a2a3a4a5a6a7a8a9aaab",
          b'{"message_id":"a0a1a2a3a4a5a6a7a8a9aaab"}', 1140, 0x40, ts0 + 3000)


def add_ack(name, direction, mid, length, ranges, nonce_byte, ts):
    v = {"name": name, "direction": direction}
    v.update(seal(direction, TYPE_PART_ACK, bytes([nonce_byte] * 24), ts,
                  ack_body(mid, length, ranges)))
    v.update({"message_id": mid, "length": length, "ranges": [list(r) for r in ranges]})
    acks.append(v)


add_ack("one range: part 0 of the 700-byte message", "b_to_a", "00112233445566778899aabb", 700,
        [(0, 0)], 0x50, ts0 + 4000)
add_ack("several ranges: 20 parts, 0-2, 5, 7-19 held", "a_to_b", "0123456789abcdef01234567",
        5000, [(0, 2), (5, 5), (7, 19)], 0x51, ts0 + 5000)
add_ack("64 ranges (the most): every even part of 128", "b_to_a", "ffeeddccbbaa998877665544",
        128 * 256, [(2 * i, 2 * i) for i in range(64)], 0x52, ts0 + 6000)

ID = "0123456789abcdef01234567"


def bad_part(why, body):
    bad.append({"type": TYPE_PART, "why": why, "body_hex": body.hex()})


def bad_ack(why, body):
    bad.append({"type": TYPE_PART_ACK, "why": why, "body_hex": body.hex()})


bad_part("empty body", b"")
bad_part("31 bytes: shorter than the header", part_body(1, ID, 1, 1, 0, b"")[:31])
bad_part("header only: no data", part_body(1, ID, 1, 256, 0, b""))
bad_part("flags not zero (0x0001)", part_body(1, ID, 1, 256, 0, b"x", flags=1))
bad_part("flags not zero (0x8000)", part_body(1, ID, 1, 256, 0, b"x", flags=0x8000))
bad_part("length 0", part_body(1, ID, 0, 256, 0, b"x"))
# 16 MiB + 1 in parts of 65535: its last part, index 256, of the 257 bytes due
bad_part("length 16777217 (over 16 MiB), else a right last part",
         part_body(1, ID, MAX_MESSAGE + 1, 65535, 256, b"x" * 257))
bad_part("length 2^32 - 1 (and so 16777216 parts of 256)",
         part_body(1, ID, 0xffffffff, 256, 0, b"x" * 256))
bad_part("part size 0", part_body(1, ID, 1, 0, 0, b"x"))
bad_part("part size 255 in a message of 2 parts", part_body(1, ID, 300, 255, 0, b"x" * 255))
bad_part("part size 255 in a message of 2 parts, its last part",
         part_body(1, ID, 300, 255, 1, b"x" * 45))
bad_part("index 3 of a message of 3 parts (700 in 256)", part_body(1, ID, 700, 256, 3, b"x"))
bad_part("index 2^32 - 1", part_body(1, ID, 700, 256, 0xffffffff, b"x"))
bad_part("a middle part one byte short", part_body(1, ID, 700, 256, 1, b"x" * 255))
bad_part("a middle part one byte long", part_body(1, ID, 700, 256, 1, b"x" * 257))
bad_part("the last part one byte short (188 due)", part_body(1, ID, 700, 256, 2, b"x" * 187))
bad_part("the last part one byte long (188 due)", part_body(1, ID, 700, 256, 2, b"x" * 189))
bad_part("the last part as long as the part size (188 due)",
         part_body(1, ID, 700, 256, 2, b"x" * 256))
bad_part("a one-part message with a byte too many", part_body(1, ID, 5, 1140, 0, b"x" * 6))
bad_part("a one-part message with a byte too few", part_body(1, ID, 5, 1140, 0, b"x" * 4))
R = [(0, 0)]
bad_ack("empty body", b"")
bad_ack("19 bytes: shorter than the fixed fields", ack_body(ID, 700, [])[:19])
bad_ack("no ranges (n = 0)", ack_body(ID, 700, []))
bad_ack("reserved not zero", ack_body(ID, 700, R, reserved=1))
bad_ack("length 0", ack_body(ID, 0, R))
bad_ack("length 16777217 (over 16 MiB)", ack_body(ID, MAX_MESSAGE + 1, R))
bad_ack("n = 65 (over 64)", ack_body(ID, 1 << 20, [(2 * i, 2 * i) for i in range(65)]))
bad_ack("n says 2, one range follows", ack_body(ID, 700, R, n=2))
bad_ack("n says 1, two ranges follow", ack_body(ID, 700, [(0, 0), (2, 2)], n=1))
bad_ack("a byte after the last range", ack_body(ID, 700, R) + b"\x00")
bad_ack("a byte short of the last range", ack_body(ID, 700, R)[:-1])
bad_ack("first > last", ack_body(ID, 700, [(2, 1)]))
bad_ack("ranges that touch (0-1, 2-3: one range)", ack_body(ID, 5000, [(0, 1), (2, 3)]))
bad_ack("ranges that overlap", ack_body(ID, 5000, [(0, 3), (2, 5)]))
bad_ack("ranges descending", ack_body(ID, 5000, [(5, 6), (0, 1)]))
bad_ack("the same range twice", ack_body(ID, 5000, [(1, 1), (1, 1)]))
bad_ack("last 65536 (no message has so many parts)", ack_body(ID, MAX_MESSAGE, [(0, 65536)]))
bad_ack("last 2^32 - 1, then a lower range", ack_body(ID, 5000, [(0, 0xffffffff), (0, 0)]))

with open(os.path.join(here, "parts.json"), "w") as f:
    json.dump({"about": "message parts (type 0x02) and part ACKs (type 0x03), docs/wire.md "
                        "'Version 2: messages in parts'; made by parts.py",
               "parts": parts, "part_acks": acks, "bad_bodies": bad}, f, indent=1)
    f.write("\n")
