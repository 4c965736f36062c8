#!/usr/bin/env python3
"""Writes tests/vectors/envelope_v2.json: version 2 datagrams (docs/wire.md, "Version 2"),
sealed by this file's own XChaCha20-Poly1305 (RFC 8439 and draft-irtf-cfrg-xchacha, in plain
Python), independently of libsodium; tests/unit/test_envelope_v2.c checks the daemon against
them. The keys are those of peerkeys.json (its first vector: berlin and paris)."""
import json, os, struct

def rotl(v, n):
    return ((v << n) | (v >> (32 - n))) & 0xffffffff

def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)

def rounds(s):
    for _ in range(10):
        quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13); quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15)
        quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12); quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14)

CONST = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]

def block(key, counter, nonce12):
    init = CONST + list(struct.unpack("<8I", key)) + [counter] + list(struct.unpack("<3I", nonce12))
    s = init[:]
    rounds(s)
    return struct.pack("<16I", *[(x + y) & 0xffffffff for x, y in zip(s, init)])

def hchacha20(key, nonce16):
    s = CONST + list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    rounds(s)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))

def chacha20(key, counter, nonce12, data):
    out = bytearray()
    for i in range(0, len(data), 64):
        ks = block(key, counter + i // 64, nonce12)
        out += bytes(a ^ b for a, b in zip(data[i:i + 64], ks))
    return bytes(out)

def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(key[16:], "little")
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i:i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")

def pad16(b):
    return b"\x00" * (-len(b) % 16)

def xchacha_seal(key, nonce24, plain, ad):
    sub = hchacha20(key, nonce24[:16])
    n12 = b"\x00" * 4 + nonce24[16:]
    otk = block(sub, 0, n12)[:32]
    c = chacha20(sub, 1, n12, plain)
    mac = ad + pad16(ad) + c + pad16(c) + struct.pack("<QQ", len(ad), len(c))
    return c + poly1305(otk, mac)

here = os.path.dirname(os.path.abspath(__file__))
keys = json.load(open(os.path.join(here, "peerkeys.json")))["vectors"][0]
cases = []
for name, frm, body, nonce, ts in [
        ("message berlin to paris", "a_to_b",
         b'{"message_id":"0123456789abcdef01234567","content":"hello"}', bytes(range(24)),
         1800000000123456789),
        ("ACK paris to berlin", "b_to_a", b'{"type":"ACK","message_id":"0123456789abcdef01234567"}',
         bytes(range(100, 124)), 1800000000987654321),
        ("empty body", "a_to_b", b"", bytes([0xee] * 24), 0)]:
    key = bytes.fromhex(keys["key_" + frm])
    kid = bytes.fromhex(keys["id_" + frm])
    header = bytes([2, 1, 0, 0]) + kid + nonce
    dgram = header + xchacha_seal(key, nonce, struct.pack(">Q", ts) + body, header)
    cases.append({"name": name, "key": key.hex(), "key_id": kid.hex(), "nonce": nonce.hex(),
                  "timestamp_ns": ts, "body": body.decode(), "datagram_hex": dgram.hex()})
with open(os.path.join(here, "envelope_v2.json"), "w") as f:
    json.dump({"about": "version 2 datagrams, docs/wire.md; made by envelope_v2.py",
               "vectors": cases}, f, indent=1)
    f.write("\n")
