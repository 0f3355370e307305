// End-to-end encryption for the chat page.
//
// The server relays and keeps only what this module seals. WebCrypto alone, no library;
// a key pair never leaves the browser that made it, and its private key cannot even be
// exported from it.
//
// Design, version 1:
// - Key pair: X25519, from crypto.subtle.generateKey({name: "X25519"}, false,
//   ["deriveBits"]) when the page creates an identity. The CryptoKeyPair is kept in
//   IndexedDB (database "secret-rooms", store "keys") under the page's storage key of the
//   identity (beside a copy of the identity itself, which tabs opened at once agree on);
//   only the public key is exported (raw, 32 bytes, unpadded base64url: 43
//   characters) and sent once, in POST /users/create {"publicKey"}. An identity made
//   before encryption (or in a browser without X25519) has no key: a plaintext client.
// - Room key: X25519 deriveBits(256) of my private key and the peer's public key, then
//   HKDF-SHA256 with an empty salt and info "secret-rooms e2e v1 " + roomId (UTF-8) to an
//   AES-GCM 256-bit key. Both members derive the same key, bound to the room.
// - Envelope: "e2e1." + base64url(iv) + "." + base64url(ciphertext with its 16-byte tag),
//   unpadded base64url, a fresh random 12-byte IV per message; AES-256-GCM with additional
//   data roomId + "\n" + the sender's raw public key as unpadded base64url (UTF-8). A
//   reader picks that key by the `from.publicId` the server reports: one of its own public
//   ids (current or from before a rotation) means its own key, any other id the peer's
//   remembered key. So the server can neither attribute a message to the other member nor
//   move it to another room, and a public id rotated in another tab (which this tab may
//   not know yet) changes nothing: a member's key never changes. The whole envelope must
//   fit the API's 4096 bytes: PLAINTEXT_CAPACITY (3039) bytes of UTF-8 text do.
// - Safety code: SHA-256 of the two raw public keys, sorted bytewise and concatenated, read
//   as a big-endian number, modulo 10^60, written as 12 groups of 5 digits: the same on
//   both sides, for the two people to compare out of band.
// - Keys come from the API's room list (POST /users/rooms) alone, never from a realtime
//   event (whoever holds the realtime app can forge those: a `room` event only makes the
//   page ask for the list again). The first key the list reports for a room's peer is the
//   room's for good: a different one later marks the room compromised (a warning with both
//   safety codes, nothing more sent, what opens only with the new key not shown).
// - What the page does with it (rooms, outbox, trust) is in app.js, section "End-to-end
//   encryption: what this page knows of each room's keys".
const VERSION = "e2e1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const INFO = "secret-rooms e2e v1 ";
const MAX_MESSAGE_BYTES = 4096;
const B64URL = "[A-Za-z0-9_-]";
const ENVELOPE = new RegExp(`^${VERSION}\\.(${B64URL}{16})\\.(${B64URL}{22,})$`);
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

// --- base64url ------------------------------------------------------------------------

function toBase64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Strict: unpadded base64url only, or an error. */
function fromBase64url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error("not base64url");
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  // Canonical only: the same bytes must encode back to the same text.
  if (toBase64url(bytes) !== text) throw new Error("not canonical base64url");
  return bytes;
}

/** Characters of unpadded base64url for `n` bytes. */
const base64urlLength = (n) => Math.floor(n / 3) * 4 + (n % 3 === 0 ? 0 : (n % 3) + 1);

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

/** Whether this browser can make and keep an X25519 key pair. */
async function supported() {
  if (!globalThis.crypto?.subtle || !globalThis.indexedDB) return false;
  try {
    await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    return true;
  } catch {
    return false;
  }
}

function generateKeyPair() {
  return crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
}

async function exportPublicKey(keyPair) {
  return toBase64url(await crypto.subtle.exportKey("raw", keyPair.publicKey));
}

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open("secret-rooms", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("keys");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function keyStore(mode, action) {
  const db = await database();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction("keys", mode);
      const request = action(transaction.objectStore("keys"));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error ?? new Error("aborted"));
    });
  } finally {
    db.close();
  }
}

/** The key pair kept for `name` (the page's storage key of an identity), or null. */
async function loadKeyPair(name) {
  try {
    return (await keyStore("readonly", (store) => store.get(name))) ?? null;
  } catch {
    return null;
  }
}

function saveKeyPair(name, keyPair) {
  return keyStore("readwrite", (store) => store.put(keyPair, name));
}

function deleteKeyPair(name) {
  return keyStore("readwrite", (store) => store.delete(name)).catch(() => {});
}

// Other things the page keeps beside the key pairs (its identity): IndexedDB commits are
// seen by every tab at once, where localStorage reaches another tab a little later.

/** What was kept under `name`, or null. */
async function loadKept(name) {
  try {
    return (await keyStore("readonly", (store) => store.get(name))) ?? null;
  } catch {
    return null;
  }
}

function keep(name, value) {
  return keyStore("readwrite", (store) => store.put(value, name));
}

function forget(name) {
  return keyStore("readwrite", (store) => store.delete(name)).catch(() => {});
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

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

export const e2e = {
  PLAINTEXT_CAPACITY, toBase64url, isPublicKey, supported, generateKeyPair, exportPublicKey,
  loadKeyPair, saveKeyPair, deleteKeyPair, loadKept, keep, forget, roomKey, looksSealed, isEnvelope, seal, open, safetyCode,
};
