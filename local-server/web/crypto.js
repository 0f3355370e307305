// End-to-end encryption for the chat page: version 1 ("e2e1") of the client library
// (clients/js/src/e2e1.js, served here as /client/e2e1.js: the envelope, the room key,
// the safety code, and the design), and what the page keeps in IndexedDB.
//
// - The page's key pair is non-extractable, made when it creates an identity, and kept
//   in IndexedDB (database "secret-rooms", store "keys") under the page's storage key of
//   the identity, beside a copy of the identity itself, which tabs opened at once agree
//   on. An identity made before encryption (or in a browser without X25519) has no key:
//   a plaintext client.
// - Keys come from the API's room list (POST /users/rooms) alone, never from a realtime
//   event (whoever holds the realtime app can forge those: a `room` event only makes the
//   page ask for the list again). The first key the list reports for a room's peer is the
//   room's for good: a different one later marks the room compromised (a warning with both
//   safety codes, nothing more sent, what opens only with the new key not shown).
// - What the page does with it (rooms, outbox, trust) is in app.js, section "End-to-end
//   encryption: what this page knows of each room's keys".

import * as e1 from "./client/e2e1.js";
import { indexedDBStorage } from "./client/storage.js";

const { toBase64url } = e1;

// --- What the page keeps in IndexedDB ----------------------------------------------------
// The key pairs, and beside them the identity: IndexedDB commits are seen by every tab
// at once, where localStorage reaches another tab a little later.

const kept = indexedDBStorage("secret-rooms", "keys");

/** What was kept under `name` (a key pair under the page's storage key of an identity),
 * or null. */
async function loadKept(name) {
  try {
    return (await kept.get(name)) ?? null;
  } catch {
    return null;
  }
}

const keep = (name, value) => kept.set(name, value);
const forget = (name) => kept.delete(name).catch(() => {});

/** Whether this browser can make and keep an X25519 key pair. */
async function supported() {
  return Boolean(globalThis.indexedDB) && (await e1.supported());
}

export const e2e = {
  PLAINTEXT_CAPACITY: e1.PLAINTEXT_CAPACITY, toBase64url, isPublicKey: e1.isPublicKey, supported,
  generateKeyPair: () => e1.generateKeyPair(false), exportPublicKey: e1.exportPublicKey,
  loadKeyPair: loadKept, saveKeyPair: keep, deleteKeyPair: forget, loadKept, keep, forget, roomKey: e1.roomKey,
  looksSealed: e1.looksSealed, isEnvelope: e1.isEnvelope, seal: e1.seal, open: e1.open, safetyCode: e1.safetyCode,
};
