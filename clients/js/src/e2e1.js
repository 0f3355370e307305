// End-to-end encryption, version 1 ("e2e1"): the envelope, the room key and the safety
// code, through WebCrypto alone (browsers, and Node 20 or later). The client library
// uses it, and so does the chat page (the local server serves this file to it).
//
// Version 1:
// - Key pair: X25519 (crypto.subtle.generateKey({name: "X25519"}, extractable,
//   ["deriveBits"])). Only the public key is exported: raw, 32 bytes, unpadded
//   base64url, 43 characters, registered once in POST /users/create {"publicKey"}.
// - Room key: X25519 deriveBits(256) of my private key and the peer's public key, then
//   HKDF-SHA256 with an empty salt and info "secret-rooms e2e v1 " + roomId (UTF-8) to an
//   AES-GCM 256-bit key. Both members derive the same key, bound to the room.
// - Envelope: "e2e1." + base64url(iv) + "." + base64url(ciphertext with its 16-byte tag),
//   unpadded base64url, a fresh random 12-byte IV per message; AES-256-GCM with additional
//   data roomId + "\n" + the sender's raw public key as unpadded base64url (UTF-8). A
//   reader picks that key by the `from.publicId` the server reports (one of its own ids:
//   its own key; any other: the peer's), so the server can neither attribute a message to
//   the other member nor move it to another room. The whole envelope must fit the API's
//   4096 bytes: PLAINTEXT_CAPACITY (3039) bytes of UTF-8 text do.
// - Safety code: SHA-256 of the two raw public keys, sorted bytewise and concatenated, read
//   as a big-endian number, modulo 10^60, written as 12 groups of 5 digits: the same on
//   both sides, for the two people to compare out of band.
// - No forward secrecy: a private key stolen later opens every kept message of its rooms.

import { toBase64url, fromBase64url, base64urlLength, compareBytes } from "./bytes.js";

const VERSION = "e2e1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const INFO = "secret-rooms e2e v1 ";
const MAX_MESSAGE_BYTES = 4096;
const B64URL = "[A-Za-z0-9_-]";
const ENVELOPE = new RegExp(`^${VERSION}\\.(${B64URL}{16})\\.(${B64URL}{22,})$`);
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A raw X25519 public key as the API takes it: 32 bytes, 43 characters. */
function isPublicKey(text) {
  try {
    return typeof text === "string" && text.length === 43 && fromBase64url(text).length === 32;
  } catch {
    return false;
  }
}

// --- Capacity -------------------------------------------------------------------------

/** Bytes of the envelope that carries `plaintextBytes` bytes of UTF-8. */
function envelopeLength(plaintextBytes) {
  return VERSION.length + 1 + base64urlLength(IV_BYTES) + 1 + base64urlLength(plaintextBytes + TAG_BYTES);
}

/** The most UTF-8 bytes whose envelope fits `limit` bytes (3039 for 4096). */
function plaintextCapacity(limit = MAX_MESSAGE_BYTES) {
  let n = Math.max(0, Math.floor(((limit - envelopeLength(0)) * 3) / 4));
  while (n > 0 && envelopeLength(n) > limit) n -= 1;
  while (envelopeLength(n + 1) <= limit) n += 1;
  return n;
}
const PLAINTEXT_CAPACITY = plaintextCapacity();

// --- Key pairs -------------------------------------------------------------------------

/** Whether this runtime can make an X25519 key pair. */
async function supported() {
  if (!globalThis.crypto?.subtle) return false;
  try {
    await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    return true;
  } catch {
    return false;
  }
}

/** A new key pair; `extractable` only for a storage that cannot keep a CryptoKey. */
function generateKeyPair(extractable = false) {
  return crypto.subtle.generateKey({ name: "X25519" }, extractable, ["deriveBits"]);
}

async function exportPublicKey(keyPair) {
  return toBase64url(await crypto.subtle.exportKey("raw", keyPair.publicKey));
}

// --- Room keys and envelopes -----------------------------------------------------------

/** The AES-GCM key of `roomId` between my key pair and the peer's public key. */
async function roomKey(keyPair, peerPublicKey, roomId) {
  const peer = await crypto.subtle.importKey("raw", fromBase64url(peerPublicKey), { name: "X25519" }, true, []);
  const shared = await crypto.subtle.deriveBits({ name: "X25519", public: peer }, keyPair.privateKey, 256);
  const material = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: encoder.encode(INFO + roomId) },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

/** What an envelope is bound to: its room and its sender's public key (base64url). */
const additionalData = (roomId, senderPublicKey) => encoder.encode(`${roomId}\n${senderPublicKey}`);

/** Anything that claims to be an envelope, of this version or another. */
const looksSealed = (message) => /^e2e\d+\./.test(message);

/** An envelope of this version, well formed (it may still fail to open). */
const isEnvelope = (message) => ENVELOPE.test(message);

async function seal(key, roomId, senderPublicKey, text) {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: additionalData(roomId, senderPublicKey), tagLength: TAG_BYTES * 8 },
    key,
    encoder.encode(text),
  );
  return `${VERSION}.${toBase64url(iv)}.${toBase64url(sealed)}`;
}

/** The text of an envelope, or an error if it was altered, garbled, or sealed for
 * another room, another sender or with another key. */
async function open(key, roomId, senderPublicKey, envelope) {
  const parts = ENVELOPE.exec(envelope);
  if (!parts) throw new Error("not an envelope");
  const iv = fromBase64url(parts[1]);
  const sealed = fromBase64url(parts[2]);
  if (iv.length !== IV_BYTES || sealed.length <= TAG_BYTES) throw new Error("not an envelope");
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv, additionalData: additionalData(roomId, senderPublicKey), tagLength: TAG_BYTES * 8 },
    key,
    sealed,
  );
  return decoder.decode(plain);
}

// --- Safety code -----------------------------------------------------------------------

/** 12 groups of 5 digits from both public keys; the same whichever side computes it. */
async function safetyCode(publicKeyA, publicKeyB) {
  const [low, high] = [fromBase64url(publicKeyA), fromBase64url(publicKeyB)].sort(compareBytes);
  const both = new Uint8Array(low.length + high.length);
  both.set(low);
  both.set(high, low.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", both));
  let number = 0n;
  for (const byte of digest) number = (number << 8n) | BigInt(byte);
  const digits = (number % 10n ** 60n).toString().padStart(60, "0");
  return digits.match(/.{5}/g).join(" ");
}

export {
  VERSION, PLAINTEXT_CAPACITY, toBase64url, fromBase64url, isPublicKey, envelopeLength, supported,
  generateKeyPair, exportPublicKey, roomKey, looksSealed, isEnvelope, seal, open, safetyCode,
};
