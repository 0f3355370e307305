"""A second, independent implementation of e2e2 (clients/js/PROTOCOL.md), in Python on
`cryptography`: the tests make it open what the JavaScript library sealed and seal what
the library opens, and check both against test/vectors/e2e2.json.

    python e2e2.py serve            JSON lines on stdin/stdout (see `serve` below)
    python e2e2.py vectors FILE     check FILE's vectors (exit 1 on a mismatch)
    python e2e2.py make-vectors     print fresh vectors (to review, then commit)

Written against PROTOCOL.md; where the two implementations differ, PROTOCOL.md decides.
"""

import base64
import copy
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = "e2e2"
HEADER = 80
TAG = 16
MAX_SKIP = 1000
MAX_SKIPPED = 2000
ZEROS = bytes(32)


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64e(data) != text:
        raise ValueError("not canonical base64url")
    return data


def b64_len(n: int) -> int:
    return (4 * n + 2) // 3


def envelope_length(padded: int) -> int:
    return len(VERSION) + 1 + b64_len(HEADER + padded + TAG)


LARGEST = max(n for n in range(4096) if envelope_length(n) <= 4096)
CLASSES = [256, 1024, LARGEST]


def pad(text: str) -> bytes:
    raw = text.encode("utf-8")
    size = next((c for c in CLASSES if c >= len(raw) + 1), None)
    if size is None:
        raise ValueError("too long")
    return raw + b"\x80" + bytes(size - len(raw) - 1)


def unpad(padded: bytes) -> str:
    if len(padded) not in CLASSES:
        raise ValueError("not a size class")
    body = padded.rstrip(b"\x00")
    if not body.endswith(b"\x80"):
        raise ValueError("bad padding")
    return body[:-1].decode("utf-8")


def hkdf(ikm: bytes, salt: bytes, info: str, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info.encode()).derive(ikm)


def mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def x25519(private: bytes, public: bytes) -> bytes:
    out = X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))
    if out == ZEROS:
        raise ValueError("degenerate key")
    return out


def public_of(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def root_key(identity_private: bytes, peer_public: bytes, room: str) -> bytes:
    return hkdf(x25519(identity_private, peer_public), b"", "secret-rooms e2e2 root " + room, 32)


def kdf_rk(rk: bytes, dh_out: bytes):
    out = hkdf(dh_out, rk, "secret-rooms e2e2 ratchet", 64)
    return out[:32], out[32:]


def kdf_ck(ck: bytes):
    return mac(ck, b"\x01"), mac(ck, b"\x02")


def message_key(seed: bytes, salt: bytes = b"", info: str = "secret-rooms e2e2 message"):
    out = hkdf(seed, salt, info, 44)
    return out[:32], out[32:]


def hello_key(rk: bytes, ratchet_public: bytes):
    return message_key(rk, ratchet_public, "secret-rooms e2e2 hello")


def header_bytes(dh: bytes, pn: int, n: int, seq: int, seen: int, prev: bytes) -> bytes:
    return dh + struct.pack(">IIII", pn, n, seq, seen) + prev


def parse_header(data: bytes) -> dict:
    pn, n, seq, seen = struct.unpack(">IIII", data[32:48])
    return {"dh": data[:32], "pn": pn, "n": n, "seq": seq, "seen": seen, "prev": data[48:80]}


def ad(room: str, sender: bytes, receiver: bytes, header: bytes) -> bytes:
    return ("secret-rooms e2e2\n" + room + "\n").encode() + sender + receiver + header


class OpenError(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Keys:
    """Ratchet keys: given ones first (vectors), then fresh ones."""

    def __init__(self, given=()):
        self.given = list(given)

    def next(self) -> dict:
        private = self.given.pop(0) if self.given else os.urandom(32)
        return {"priv": private, "pub": public_of(private)}


class Session:
    def __init__(self, identity_private: bytes, peer_public: bytes, room: str, keys: Keys):
        own = public_of(identity_private)
        if own == peer_public:
            raise ValueError("two different keys")
        self.keys = keys
        self.s = {
            "room": room, "own": own, "peer": peer_public,
            "role": "first" if own < peer_public else "second",
            "rk": root_key(identity_private, peer_public, room),
            "dhs": None, "dhr": None, "cks": None, "ckr": None, "ns": 0, "nr": 0, "pn": 0,
            "send_seq": 1, "last_hash": ZEROS, "contiguous": 0, "got": [], "hashes": {}, "expect": {},
            "skipped": [], "peer_seen": 0,
        }
        self.hello = None
        if self.s["role"] == "second":
            s = self.s
            s["dhs"] = keys.next()
            head = header_bytes(s["dhs"]["pub"], 0, 0, 0, 0, ZEROS)
            self.hello = self._seal_with(hello_key(s["rk"], s["dhs"]["pub"]), head, "")
            s["last_hash"] = hashlib.sha256(self.hello.encode()).digest()

    def _seal_with(self, key_iv, head: bytes, text: str) -> str:
        key, iv = key_iv
        sealed = AESGCM(key).encrypt(iv, pad(text), ad(self.s["room"], self.s["own"], self.s["peer"], head))
        return VERSION + "." + b64e(head + sealed)

    def _open_with(self, s, key_iv, head: bytes, sealed: bytes) -> str:
        key, iv = key_iv
        try:
            return unpad(AESGCM(key).decrypt(iv, sealed, ad(s["room"], s["peer"], s["own"], head)))
        except Exception as error:
            raise OpenError("garbled") from error

    def seal(self, text: str):
        s = self.s
        if s["cks"] is None:
            raise ValueError("cannot seal yet")
        seed, s["cks"] = kdf_ck(s["cks"])
        seq = s["send_seq"]
        head = header_bytes(s["dhs"]["pub"], s["pn"], s["ns"], seq, s["contiguous"], s["last_hash"])
        envelope = self._seal_with(message_key(seed), head, text)
        s["ns"] += 1
        s["send_seq"] += 1
        s["last_hash"] = hashlib.sha256(envelope.encode()).digest()
        return envelope, seq

    def open(self, envelope: str) -> dict:
        # Work on a copy: a failure leaves the session as it was.
        s = copy.deepcopy(self.s)
        if not envelope.startswith(VERSION + "."):
            raise OpenError("garbled")
        try:
            data = b64d(envelope[len(VERSION) + 1:])
        except Exception as error:
            raise OpenError("garbled") from error
        if len(data) - HEADER - TAG not in CLASSES:
            raise OpenError("garbled")
        head, sealed = data[:HEADER], data[HEADER:]
        h = parse_header(head)
        if h["seq"] == 0:
            if s["role"] != "first" or s["dhr"] is not None or h["n"] or h["pn"]:
                raise OpenError("garbled" if s["dhr"] is None else "unexpected_hello")
            self._open_with(s, hello_key(s["rk"], h["dh"]), head, sealed)
            s["dhr"] = h["dh"]
            s["dhs"] = self.keys.next()
            s["rk"], s["cks"] = kdf_rk(s["rk"], x25519(s["dhs"]["priv"], s["dhr"]))
            s["hashes"][0] = hashlib.sha256(envelope.encode()).digest()
            self.s = s
            return {"text": None, "seq": 0, "seen": 0, "notices": []}
        if h["seq"] <= s["contiguous"] or h["seq"] in s["got"]:
            raise OpenError("replayed")
        found = next((i for i, k in enumerate(s["skipped"]) if k["dh"] == h["dh"] and k["n"] == h["n"]), None)
        if found is not None:
            seed = s["skipped"].pop(found)["seed"]
            text = self._open_with(s, message_key(seed), head, sealed)
        else:
            if s["dhr"] != h["dh"]:
                if s["role"] == "first" and s["dhr"] is None:
                    raise OpenError("garbled")
                self._skip(s, h["pn"])
                s["pn"], s["ns"], s["nr"], s["dhr"] = s["ns"], 0, 0, h["dh"]
                s["rk"], s["ckr"] = kdf_rk(s["rk"], x25519(s["dhs"]["priv"], s["dhr"]))
                s["dhs"] = self.keys.next()
                s["rk"], s["cks"] = kdf_rk(s["rk"], x25519(s["dhs"]["priv"], s["dhr"]))
            self._skip(s, h["n"])
            seed, next_ck = kdf_ck(s["ckr"])
            text = self._open_with(s, message_key(seed), head, sealed)
            s["ckr"] = next_ck
            s["nr"] += 1
        notices = self._transcript(s, h, envelope)
        self.s = s
        return {"text": text, "seq": h["seq"], "seen": h["seen"], "notices": notices}

    @staticmethod
    def _skip(s, until: int):
        if s["ckr"] is None:
            return
        if until - s["nr"] > MAX_SKIP:
            raise OpenError("too_many_skipped")
        while s["nr"] < until:
            seed, s["ckr"] = kdf_ck(s["ckr"])
            s["skipped"].append({"dh": s["dhr"], "n": s["nr"], "seed": seed})
            s["nr"] += 1
        del s["skipped"][:-MAX_SKIPPED]

    @staticmethod
    def _transcript(s, h, envelope: str) -> list:
        notices = []
        seq = h["seq"]
        digest = hashlib.sha256(envelope.encode()).digest()
        highest = max([s["contiguous"], *s["got"]])
        if seq < highest:
            notices.append({"kind": "late"})
        if seq > highest + 1:
            notices.append({"kind": "missing", "from": highest + 1, "to": seq - 1})
        before = s["hashes"].get(seq - 1)
        if before is None and seq == 1 and s["role"] == "second":
            before = ZEROS
        if before is not None and before != h["prev"]:
            notices.append({"kind": "altered"})
        if before is None:
            s["expect"][seq - 1] = h["prev"]
        if seq in s["expect"]:
            if s["expect"].pop(seq) != digest:
                notices.append({"kind": "altered"})
        s["hashes"][seq] = digest
        s["got"] = sorted(s["got"] + [seq])
        while s["got"] and s["got"][0] == s["contiguous"] + 1:
            s["contiguous"] = s["got"].pop(0)
        for table in (s["hashes"], s["expect"]):
            for k in [k for k in table if k < s["contiguous"]]:
                del table[k]
        s["peer_seen"] = max(s["peer_seen"], h["seen"])
        return notices


def serve():
    """One JSON object a line in, one out: {"op": "create", "name", "private", "peer",
    "room", "keys"?} -> {"hello"}; {"op": "fork", "name", "as"} -> {}; {"op": "seal", "name", "text"} -> {"envelope",
    "seq"}; {"op": "open", "name", "envelope"} -> {"text", "seq", "seen", "notices"} or
    {"error": reason}. Keys and envelopes are unpadded base64url / e2e2 text."""
    sessions = {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "create":
                session = Session(b64d(request["private"]), b64d(request["peer"]), request["room"],
                                  Keys(b64d(k) for k in request.get("keys", [])))
                sessions[request["name"]] = session
                answer = {"hello": session.hello, "role": session.s["role"]}
            elif request["op"] == "seal":
                envelope, seq = sessions[request["name"]].seal(request["text"])
                answer = {"envelope": envelope, "seq": seq}
            elif request["op"] == "fork":
                # A copy under another name: a sender that seals twice from one state.
                sessions[request["as"]] = copy.deepcopy(sessions[request["name"]])
                answer = {}
            elif request["op"] == "open":
                answer = sessions[request["name"]].open(request["envelope"])
            else:
                answer = {"error": "unknown op"}
        except OpenError as error:
            answer = {"error": error.reason}
        print(json.dumps(answer), flush=True)


# The scripted conversation of the vectors: who seals what, and in which order the
# other side opens it ("open" lists indexes into what that side was sent).
SCRIPT = [
    ("first", "hi, it's me"),
    ("first", ""),
    ("second", "hello 👋"),
    ("second", "a longer one " + "x" * 300),
    ("first", "y" * 2971),
]


def make_vectors(given=None) -> dict:
    v = given or {
        "room": "Zk3v9b0VHn1m4M9ZrT2wqPcXo8yA",
        "identity": {"a": b64e(os.urandom(32)), "b": b64e(os.urandom(32))},
        "ratchet_keys": {"a": [b64e(os.urandom(32)) for _ in range(4)], "b": [b64e(os.urandom(32)) for _ in range(4)]},
    }
    a_priv, b_priv = b64d(v["identity"]["a"]), b64d(v["identity"]["b"])
    a = Session(a_priv, public_of(b_priv), v["room"], Keys(b64d(k) for k in v["ratchet_keys"]["a"]))
    b = Session(b_priv, public_of(a_priv), v["room"], Keys(b64d(k) for k in v["ratchet_keys"]["b"]))
    first, second = (a, b) if a.s["role"] == "first" else (b, a)
    out = {
        "room": v["room"], "identity": v["identity"], "ratchet_keys": v["ratchet_keys"],
        "public": {"a": b64e(public_of(a_priv)), "b": b64e(public_of(b_priv))},
        "first": "a" if first is a else "b",
        "root_key": b64e(first.s["rk"]),
        "hello": second.hello,
    }
    rk0 = first.s["rk"]
    dh_out = x25519(b64d(v["ratchet_keys"]["a"][0]), public_of(b64d(v["ratchet_keys"]["b"][0])))
    rk1, ck1 = kdf_rk(rk0, dh_out)
    seed, ck2 = kdf_ck(ck1)
    key, iv = message_key(seed)
    hk, hiv = hello_key(rk0, public_of(b64d(v["ratchet_keys"]["b"][0])))
    out["derivations"] = {
        "kdf_rk": {"rk": b64e(rk0), "dh": b64e(dh_out), "out_rk": b64e(rk1), "out_ck": b64e(ck1)},
        "kdf_ck": {"ck": b64e(ck1), "seed": b64e(seed), "next": b64e(ck2)},
        "message_key": {"seed": b64e(seed), "key": b64e(key), "iv": b64e(iv)},
        "hello_key": {"rk": b64e(rk0), "salt": b64e(public_of(b64d(v["ratchet_keys"]["b"][0]))), "key": b64e(hk), "iv": b64e(hiv)},
        "pad": {"lengths": {"0": len(pad("")), "255": len(pad("a" * 255)),
                                                    "256": len(pad("a" * 256)), "2971": len(pad("a" * 2971))}},
    }
    first.open(second.hello)
    conversation = []
    for who, text in SCRIPT:
        sender, receiver = (first, second) if who == "first" else (second, first)
        envelope, seq = sender.seal(text)
        opened = receiver.open(envelope)
        assert opened["text"] == text
        conversation.append({"from": who, "text": text, "seq": seq, "envelope": envelope, "seen": opened["seen"]})
    out["conversation"] = conversation
    return out


def check_vectors(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        expected = json.load(f)
    got = make_vectors(expected)
    bad = [k for k in expected if json.dumps(expected[k], sort_keys=True) != json.dumps(got[k], sort_keys=True)]
    for k in bad:
        print(f"vector {k!r} differs:\n  expected {expected[k]}\n  got      {got[k]}", file=sys.stderr)
    print(f"e2e2 vectors: {len(expected) - len(bad)} of {len(expected)} agree")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["vectors"]:
        sys.exit(check_vectors(sys.argv[2]))
    elif sys.argv[1:2] == ["make-vectors"]:
        print(json.dumps(make_vectors(), indent=2, ensure_ascii=False))
    else:
        sys.exit(__doc__)
