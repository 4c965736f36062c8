#!/usr/bin/env python3
"""Writes tests/vectors/peerkeys.json: the per-peer key schedule of docs/wire.md ("Keys"),
computed with Python's own BLAKE2b (hashlib), independently of the daemon's libsodium code.
Run it again only if the schedule changes: tests/unit/test_peerkeys.c checks the file."""
import hashlib, json, os

def enc(name):
    b = name.encode()
    assert 1 <= len(b) <= 64
    return bytes([len(b)]) + b

def pair(master, a, b):
    lo, hi = sorted([a.encode(), b.encode()])
    return hashlib.blake2b(b"securedgram pair key v2" + enc(lo.decode()) + enc(hi.decode()),
                           key=master, digest_size=32).digest()

def direction(p, frm, to):
    return hashlib.blake2b(b"securedgram direction v2" + enc(frm) + enc(to), key=p,
                           digest_size=32).digest()

def key_id(k):
    return hashlib.blake2b(b"securedgram key id v2", key=k, digest_size=16).digest()[:8]

def fingerprint(p):
    return hashlib.blake2b(b"securedgram fingerprint v2", key=p, digest_size=16).digest()[:8]

cases = [
    (bytes(range(32)), "berlin", "paris"),
    (bytes(range(32)), "paris", "berlin"),
    (bytes.fromhex("0793ad72ad74d74fd59403ddbbbcab8a466213935c2b7d8ff9f676b2cc7e3e36"), "a", "b"),
    (bytes([0xff] * 32), "host-1.dc_2", "x" * 64),
    (bytes(32), "ab", "a"),
]
out = []
for master, a, b in cases:
    p = pair(master, a, b)
    ab, ba = direction(p, a, b), direction(p, b, a)
    out.append({"master": master.hex(), "a": a, "b": b, "pair": p.hex(),
                "key_a_to_b": ab.hex(), "key_b_to_a": ba.hex(),
                "id_a_to_b": key_id(ab).hex(), "id_b_to_a": key_id(ba).hex(),
                "fingerprint": fingerprint(p).hex()})
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peerkeys.json")
with open(path, "w") as f:
    json.dump({"about": "per-peer key schedule, docs/wire.md 'Keys'; made by peerkeys.py",
               "vectors": out}, f, indent=1)
    f.write("\n")
