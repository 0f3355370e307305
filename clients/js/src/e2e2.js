// End-to-end encryption, version 2 ("e2e2"): a Double Ratchet started from the two
// registered X25519 keys, with per-sender sequence numbers and a hash chain in the
// authenticated data, and plaintext padded to three size classes. WebCrypto alone
// (browsers, and Node 20 or later). PROTOCOL.md is the specification, byte by byte;
// test/reference/e2e2.py is a second implementation of it, and test/vectors/e2e2.json
// holds values both must reproduce.
//
// A session is a plain object (numbers, strings, Uint8Arrays): the caller keeps it,
// sealed, and must store what seal() and open() return before it sends or shows
// anything, so that no message key is ever used twice, even across a crash.

import { toBase64url, fromBase64url, base64urlLength, compareBytes } from "./bytes.js";

const VERSION = "e2e2";
const MAX_MESSAGE_BYTES = 4096;
const KEY_BYTES = 32;
const HEADER_BYTES = 80;
const TAG_BYTES = 16;
/** Message keys a session derives ahead for one gap at most, and keeps at most. */
const MAX_SKIP = 1000;
const MAX_SKIPPED = 2000;
const INFO_ROOT = "secret-rooms e2e2 root ";
const INFO_RATCHET = "secret-rooms e2e2 ratchet";
const INFO_MESSAGE = "secret-rooms e2e2 message";
const INFO_HELLO = "secret-rooms e2e2 hello";
const AD_PREFIX = "secret-rooms e2e2\n";
// X25519 private keys travel through WebCrypto as PKCS #8: this prefix, then the 32 bytes.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const ZEROS = new Uint8Array(KEY_BYTES);

// --- Bytes -----------------------------------------------------------------------------

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

// --- Sizes -----------------------------------------------------------------------------

/** Bytes of the envelope whose padded plaintext is `padded` bytes. */
const envelopeLength = (padded) => VERSION.length + 1 + base64urlLength(HEADER_BYTES + padded + TAG_BYTES);

/** The largest padded size whose envelope fits the API's 4096 bytes (2972). */
const LARGEST_CLASS = (() => {
  let n = MAX_MESSAGE_BYTES;
  while (envelopeLength(n) > MAX_MESSAGE_BYTES) n -= 1;
  return n;
})();
/** What a padded plaintext may be: a message's length shows only which of these it took. */
const SIZE_CLASSES = [256, 1024, LARGEST_CLASS];
/** The most UTF-8 bytes of text a message carries (one byte goes to the padding mark). */
const PLAINTEXT_CAPACITY = LARGEST_CLASS - 1;

/** ISO/IEC 7816-4: the text, 0x80, then zeros up to the smallest class that holds both. */
function pad(text) {
  const bytes = encoder.encode(text);
  const size = SIZE_CLASSES.find((n) => n >= bytes.length + 1);
  if (size === undefined) throw new RangeError(`at most ${PLAINTEXT_CAPACITY} bytes of text`);
  const out = new Uint8Array(size);
  out.set(bytes);
  out[bytes.length] = 0x80;
  return out;
}

function unpad(padded) {
  if (!SIZE_CLASSES.includes(padded.length)) throw new Error("not a size class");
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  if (end < 0 || padded[end] !== 0x80) throw new Error("bad padding");
  return decoder.decode(padded.subarray(0, end));
}

// --- Primitives ------------------------------------------------------------------------

async function hmac(key, data) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

async function hkdf(ikm, salt, info, length) {
  const material = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: encoder.encode(info) },
    material,
    length * 8,
  );
  return new Uint8Array(bits);
}

const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));

const importPublic = (raw) => crypto.subtle.importKey("raw", raw, { name: "X25519" }, true, []);
const importPrivate = (raw) =>
  crypto.subtle.importKey("pkcs8", concat(PKCS8_PREFIX, raw), { name: "X25519" }, false, ["deriveBits"]);

/** X25519 of a private key (raw bytes or a CryptoKey) and a raw public key. */
async function dh(privateKey, publicKey) {
  const own = privateKey instanceof Uint8Array ? await importPrivate(privateKey) : privateKey;
  const bits = await crypto.subtle.deriveBits({ name: "X25519", public: await importPublic(publicKey) }, own, 256);
  const out = new Uint8Array(bits);
  // A low-order peer key gives all zeros: refuse it, as RFC 7748 section 6.1 allows.
  if (equal(out, ZEROS)) throw new Error("a degenerate public key");
  return out;
}

/** A fresh ratchet key pair as raw bytes: {priv, pub}. */
async function newRatchetKey() {
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { priv: pkcs8.slice(pkcs8.length - KEY_BYTES), pub };
}

/** The public half of a raw private key (for keys given by a test). */
async function ratchetKeyFrom(priv) {
  const key = await crypto.subtle.importKey("pkcs8", concat(PKCS8_PREFIX, priv), { name: "X25519" }, true, ["deriveBits"]);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  return { priv: Uint8Array.from(priv), pub: fromBase64url(jwk.x) };
}

// --- The key schedule (PROTOCOL.md, "Key schedule") -----------------------------------

/** RK0: the root both members derive from their registered keys, bound to the room. */
async function rootKey(identityPrivateKey, peerPublicKey, roomId) {
  return hkdf(await dh(identityPrivateKey, peerPublicKey), new Uint8Array(0), INFO_ROOT + roomId, KEY_BYTES);
}

/** KDF_RK: a new root key and a chain key from the root key and a DH output. */
async function kdfRoot(rootKeyBytes, dhOut) {
  const out = await hkdf(dhOut, rootKeyBytes, INFO_RATCHET, 2 * KEY_BYTES);
  return [out.slice(0, KEY_BYTES), out.slice(KEY_BYTES)];
}

/** KDF_CK: a message seed and the next chain key. */
async function kdfChain(chainKey) {
  return [await hmac(chainKey, Uint8Array.of(1)), await hmac(chainKey, Uint8Array.of(2))];
}

/** The AES-256-GCM key and 12-byte IV of one message seed (or of a hello). */
async function messageKey(seed, salt = new Uint8Array(0), info = INFO_MESSAGE) {
  const out = await hkdf(seed, salt, info, KEY_BYTES + 12);
  const key = await crypto.subtle.importKey("raw", out.slice(0, KEY_BYTES), "AES-GCM", false, ["encrypt", "decrypt"]);
  return { key, iv: out.slice(KEY_BYTES) };
}

// --- Envelopes (PROTOCOL.md, "Envelope") ------------------------------------------------

function u32(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function encodeHeader({ dh: ratchetKey, pn, n, seq, seen, prev }) {
  return concat(ratchetKey, u32(pn), u32(n), u32(seq), u32(seen), prev);
}

function decodeHeader(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  return {
    dh: bytes.slice(0, 32),
    pn: view.getUint32(32),
    n: view.getUint32(36),
    seq: view.getUint32(40),
    seen: view.getUint32(44),
    prev: bytes.slice(48, 80),
  };
}

const ENVELOPE = new RegExp(`^${VERSION}\\.[A-Za-z0-9_-]+$`);

/** An envelope of this version, well formed (it may still fail to open). */
function isEnvelope(message) {
  if (typeof message !== "string" || !ENVELOPE.test(message)) return false;
  try {
    const bytes = fromBase64url(message.slice(VERSION.length + 1));
    return SIZE_CLASSES.includes(bytes.length - HEADER_BYTES - TAG_BYTES);
  } catch {
    return false;
  }
}

function parse(envelope) {
  if (!isEnvelope(envelope)) throw new OpenError("garbled", "not an e2e2 envelope");
  const bytes = fromBase64url(envelope.slice(VERSION.length + 1));
  return { header: decodeHeader(bytes.subarray(0, HEADER_BYTES)), headerBytes: bytes.slice(0, HEADER_BYTES), sealed: bytes.slice(HEADER_BYTES) };
}

/** What an envelope is bound to: the room, who sent it to whom, and its header. */
const additionalData = (roomId, senderKey, receiverKey, headerBytes) =>
  concat(encoder.encode(`${AD_PREFIX}${roomId}\n`), senderKey, receiverKey, headerBytes);

const envelopeHash = (envelope) => sha256(encoder.encode(envelope));

/** Why an envelope did not open: "garbled" (altered, or not for this room or this
 * session), "replayed" (a sequence number already read), "too_many_skipped", or
 * "unexpected_hello". The session is unchanged. */
class OpenError extends Error {
  constructor(reason, message) {
    super(message);
    this.name = "OpenError";
    this.reason = reason;
  }
}

// --- Sessions --------------------------------------------------------------------------

/**
 * A new session of `roomId` between my identity key pair (`identity.privateKey` a
 * CryptoKey or raw bytes, `publicKey` raw or base64url) and the peer's public key.
 * The member with the bytewise larger public key starts with a hello (returned as
 * `hello`, to be sent once stored); the other waits for it before it can seal.
 * `options.newRatchetKey` replaces the random ratchet keys (test vectors only).
 */
async function createSession({ privateKey, publicKey, peerPublicKey, roomId }, options = {}) {
  const own = typeof publicKey === "string" ? fromBase64url(publicKey) : Uint8Array.from(publicKey);
  const peer = typeof peerPublicKey === "string" ? fromBase64url(peerPublicKey) : Uint8Array.from(peerPublicKey);
  const order = compareBytes(own, peer);
  if (order === 0) throw new Error("a session needs two different keys");
  const session = {
    version: VERSION,
    roomId,
    role: order < 0 ? "first" : "second",
    own,
    peer,
    rk: await rootKey(privateKey, peer, roomId),
    dhs: null,
    dhr: null,
    cks: null,
    ckr: null,
    ns: 0,
    nr: 0,
    pn: 0,
    sendSeq: 1,
    lastHash: ZEROS,
    // The peer's sequence numbers: all up to `contiguous` read; `got` those above it.
    contiguous: 0,
    got: [],
    hashes: {},
    expect: {},
    skipped: [],
    peerSeen: 0,
  };
  if (session.role === "first") {
    // The first member's first message answers the hello: nothing to send yet.
    return { session, hello: null };
  }
  session.dhs = await (options.newRatchetKey ?? newRatchetKey)();
  const header = { dh: session.dhs.pub, pn: 0, n: 0, seq: 0, seen: 0, prev: ZEROS };
  const headerBytes = encodeHeader(header);
  const hello = await sealWith(session, await helloKey(session.rk, session.dhs.pub), headerBytes, "");
  session.lastHash = await envelopeHash(hello);
  return { session, hello };
}

const helloKey = (rk, ratchetPublicKey) => messageKey(rk, ratchetPublicKey, INFO_HELLO);

async function sealWith(session, { key, iv }, headerBytes, text) {
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: additionalData(session.roomId, session.own, session.peer, headerBytes), tagLength: 128 },
    key,
    pad(text),
  );
  return `${VERSION}.${toBase64url(concat(headerBytes, new Uint8Array(sealed)))}`;
}

async function openWith(session, { key, iv }, headerBytes, sealed) {
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv, additionalData: additionalData(session.roomId, session.peer, session.own, headerBytes), tagLength: 128 },
      key,
      sealed,
    );
    return unpad(new Uint8Array(plain));
  } catch {
    throw new OpenError("garbled", "the envelope does not open: altered, or not sealed for this session");
  }
}

/** Whether the session can seal: the first member once it has read the hello, the
 * second once it has read the first member's first message. */
const canSeal = (session) => session.cks !== null;

const copy = (session) => structuredClone(session);

/** Seal `text` (an empty text is a "start": it lets the second member seal, and shows
 * nothing). Returns the envelope and the session to store before sending it. */
async function seal(current, text) {
  if (!canSeal(current)) throw new Error("the session cannot seal yet: it waits for the peer's first envelope");
  const session = copy(current);
  const [seed, next] = await kdfChain(session.cks);
  const header = { dh: session.dhs.pub, pn: session.pn, n: session.ns, seq: session.sendSeq, seen: session.contiguous, prev: session.lastHash };
  const envelope = await sealWith(session, await messageKey(seed), encodeHeader(header), text);
  session.cks = next;
  session.ns += 1;
  session.sendSeq += 1;
  session.lastHash = await envelopeHash(envelope);
  return { session, envelope, seq: header.seq };
}

async function skipTo(session, until) {
  if (session.ckr === null) return;
  if (until - session.nr > MAX_SKIP) throw new OpenError("too_many_skipped", `more than ${MAX_SKIP} messages are missing before this one`);
  while (session.nr < until) {
    const [seed, next] = await kdfChain(session.ckr);
    session.skipped.push({ dh: toBase64url(session.dhr), n: session.nr, seed });
    session.ckr = next;
    session.nr += 1;
  }
  // The oldest go first: what comes later than that cannot be opened.
  if (session.skipped.length > MAX_SKIPPED) session.skipped.splice(0, session.skipped.length - MAX_SKIPPED);
}

/**
 * Open an envelope from the peer. Returns the session to store, the text (null for
 * the hello, "" for a start), the sender's sequence number, what the peer had read of
 * mine (`seen`), and `notices`: {kind: "missing", from, to} when sequence numbers were
 * skipped, {kind: "late"} when a later one came first, {kind: "altered"} when the hash
 * chain says another envelope stood here. Throws OpenError, the session unchanged.
 * `options.newRatchetKey` as for createSession.
 */
async function open(current, envelope, options = {}) {
  const { header, headerBytes, sealed } = parse(envelope);
  const session = copy(current);
  const notices = [];
  let text;
  if (header.seq === 0) {
    // The hello: only the first member takes one, once.
    if (session.role !== "first" || session.dhr !== null || header.n !== 0 || header.pn !== 0) {
      throw new OpenError(session.dhr === null ? "garbled" : "unexpected_hello", "a hello where none belongs");
    }
    await openWith(session, await helloKey(session.rk, header.dh), headerBytes, sealed);
    session.dhr = header.dh;
    session.dhs = await (options.newRatchetKey ?? newRatchetKey)();
    [session.rk, session.cks] = await kdfRoot(session.rk, await dh(session.dhs.priv, session.dhr));
    session.hashes[0] = await envelopeHash(envelope);
    return { session, text: null, seq: 0, seen: 0, notices };
  }
  if (header.seq <= session.contiguous || session.got.includes(header.seq)) {
    throw new OpenError("replayed", `message ${header.seq} was already read`);
  }
  const key = toBase64url(header.dh);
  const found = session.skipped.findIndex((s) => s.dh === key && s.n === header.n);
  if (found >= 0) {
    const [{ seed }] = session.skipped.splice(found, 1);
    text = await openWith(session, await messageKey(seed), headerBytes, sealed);
  } else {
    if (session.dhr === null || !equal(header.dh, session.dhr)) {
      if (session.role === "first" && session.dhr === null) throw new OpenError("garbled", "a message before the hello");
      await skipTo(session, header.pn);
      await ratchet(session, header.dh, options.newRatchetKey);
    }
    await skipTo(session, header.n);
    const [seed, next] = await kdfChain(session.ckr);
    text = await openWith(session, await messageKey(seed), headerBytes, sealed);
    session.ckr = next;
    session.nr += 1;
  }
  await transcript(session, header, envelope, notices);
  return { session, text, seq: header.seq, seen: header.seen, notices };
}

/** The DH ratchet step: a new receiving chain for the peer's new key, then a new key
 * pair of mine and a new sending chain. The old private key is gone with it. */
async function ratchet(session, peerKey, makeKey) {
  session.pn = session.ns;
  session.ns = 0;
  session.nr = 0;
  session.dhr = peerKey;
  [session.rk, session.ckr] = await kdfRoot(session.rk, await dh(session.dhs.priv, peerKey));
  session.dhs = await (makeKey ?? newRatchetKey)();
  [session.rk, session.cks] = await kdfRoot(session.rk, await dh(session.dhs.priv, peerKey));
}

/** Sequence numbers and the hash chain (PROTOCOL.md, "Transcript"). */
async function transcript(session, header, envelope, notices) {
  const seq = header.seq;
  const hash = await envelopeHash(envelope);
  const highest = Math.max(session.contiguous, ...session.got);
  if (seq < highest) notices.push({ kind: "late" });
  if (seq > highest + 1) notices.push({ kind: "missing", from: highest + 1, to: seq - 1 });
  // What stood before this one, by the sender's word; and what this one must hash to.
  const before = session.hashes[seq - 1] ?? (seq === 1 && session.role === "second" ? ZEROS : undefined);
  if (before !== undefined ? !equal(before, header.prev) : false) notices.push({ kind: "altered" });
  if (before === undefined) session.expect[seq - 1] = header.prev;
  if (session.expect[seq] !== undefined) {
    if (!equal(session.expect[seq], hash)) notices.push({ kind: "altered" });
    delete session.expect[seq];
  }
  session.hashes[seq] = hash;
  session.got.push(seq);
  session.got.sort((a, b) => a - b);
  while (session.got[0] === session.contiguous + 1) session.contiguous = session.got.shift();
  // Only the newest contiguous hash is needed to check what comes next.
  for (const table of [session.hashes, session.expect]) {
    for (const s of Object.keys(table)) if (Number(s) < session.contiguous) delete table[s];
  }
  session.peerSeen = Math.max(session.peerSeen, header.seen);
}

// --- Keeping a session ------------------------------------------------------------------

/** A session as JSON text (for a storage that seals it; it holds private keys). */
function serialize(session) {
  return JSON.stringify(session, (_, value) => (value instanceof Uint8Array ? { b: toBase64url(value) } : value));
}

function deserialize(text) {
  return JSON.parse(text, (_, value) => (value && typeof value === "object" && typeof value.b === "string" && Object.keys(value).length === 1 ? fromBase64url(value.b) : value));
}

export {
  VERSION, SIZE_CLASSES, PLAINTEXT_CAPACITY, MAX_SKIP, MAX_SKIPPED, OpenError, envelopeLength, isEnvelope, pad, unpad,
  createSession, canSeal, seal, open, serialize, deserialize, ratchetKeyFrom, rootKey, kdfRoot, kdfChain, toBase64url, fromBase64url,
};
