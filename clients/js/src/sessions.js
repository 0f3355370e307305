// The e2e2 sessions of a client's rooms and its local archive (PROTOCOL.md, "What each
// side keeps"): each room's session, and each message read or sent under e2e2, kept in
// the client's storage sealed under a local AES-GCM key, non-extractable where the
// storage keeps CryptoKeys (IndexedDB). A message is opened from the server once; after
// that, from here. Every change of a session is made under the room's lock (tabs) and
// stored before what it sealed is sent or what it opened is shown.

import * as e2e2 from "./e2e2.js";
import { newId } from "./bytes.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Sessions {
  #storage;
  #exclusively;
  #keys;
  #localKey = null;
  /** Per room: the session's record as last read (for the view, which is synchronous). */
  #known = new Map();

  /** `exclusively(what, task)` runs `task` under a lock shared by the storage's clients;
   * `keys()` gives `{keyPair, publicKey}` of this identity. */
  constructor(storage, exclusively, keys) {
    this.#storage = storage;
    this.#exclusively = exclusively;
    this.#keys = keys;
  }

  // --- Sealed values ---------------------------------------------------------------------

  async #key() {
    if (this.#localKey) return this.#localKey;
    this.#localKey = await this.#exclusively("local-key", async () => {
      const kept = await this.#storage.get("localKey");
      if (kept instanceof CryptoKey) return kept;
      if (typeof kept?.raw === "string") {
        return crypto.subtle.importKey("raw", e2e2.fromBase64url(kept.raw), "AES-GCM", false, ["encrypt", "decrypt"]);
      }
      // A storage of text keeps the key as text: it protects nothing more than the
      // storage does, and says so (`keepsKeys: false`).
      const text = this.#storage.keepsKeys === false;
      const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, text, ["encrypt", "decrypt"]);
      await this.#storage.set("localKey", text ? { raw: e2e2.toBase64url(await crypto.subtle.exportKey("raw", key)) } : key);
      return key;
    });
    return this.#localKey;
  }

  async #seal(name, value) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(name) }, await this.#key(), encoder.encode(value));
    return { iv: e2e2.toBase64url(iv), data: e2e2.toBase64url(data) };
  }

  async #unseal(name, sealed) {
    if (!sealed) return undefined;
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: e2e2.fromBase64url(sealed.iv), additionalData: encoder.encode(name) },
      await this.#key(),
      e2e2.fromBase64url(sealed.data),
    );
    return decoder.decode(plain);
  }

  async #read(roomId) {
    const name = `e2e2:${roomId}`;
    const text = await this.#unseal(name, await this.#storage.get(name));
    const record = text === undefined ? null : { ...JSON.parse(text), session: e2e2.deserialize(JSON.parse(text).session) };
    this.#known.set(roomId, record);
    return record;
  }

  async #write(roomId, record) {
    const name = `e2e2:${roomId}`;
    await this.#storage.set(name, await this.#seal(name, JSON.stringify({ ...record, session: e2e2.serialize(record.session) })));
    this.#known.set(roomId, record);
  }

  /** A message of the archive: `{text, seq, notices, control}`, or null. `who` is "me"
   * or "peer". */
  async archived(roomId, who, id) {
    const name = `read:${roomId}:${who}:${id}`;
    const text = await this.#unseal(name, await this.#storage.get(name));
    return text === undefined ? null : JSON.parse(text);
  }

  async #archive(roomId, who, id, entry) {
    const name = `read:${roomId}:${who}:${id}`;
    await this.#storage.set(name, await this.#seal(name, JSON.stringify(entry)));
  }

  // --- The session -----------------------------------------------------------------------

  /** "started" (it can seal), "starting" (it waits for the peer's hello or first
   * message), or null (no session: not an e2e2 room yet), as last read. */
  state(roomId) {
    const record = this.#known.get(roomId);
    if (!record) return null;
    return e2e2.canSeal(record.session) ? "started" : "starting";
  }

  /** Whether the peer has sent e2e2 (then an e2e1 envelope from them is a step back). */
  peerStartedAt(roomId) {
    return this.#known.get(roomId)?.peerSince ?? null;
  }

  /** The room's session, made if there is none yet, with what it must send first: the
   * hello (the second member) or a start (the first, once it read the hello). */
  async ensure(roomId, peerKey) {
    return this.#exclusively(`e2e2:${roomId}`, async () => {
      const record = await this.#read(roomId);
      if (record) return record;
      const { keyPair, publicKey } = this.#keys();
      const { session, hello } = await e2e2.createSession({ privateKey: keyPair.privateKey, publicKey, peerPublicKey: peerKey, roomId });
      const made = { session, peerKey, control: hello ? { id: newId(), envelope: hello } : null, sealed: {}, peerSince: null };
      // The hello is mine, and read as such (nothing to show) when the server sends it back.
      if (hello) await this.#archive(roomId, "me", made.control.id, { text: "", seq: 0, notices: [], control: true });
      await this.#write(roomId, made);
      return made;
    });
  }

  async controlSent(roomId, id) {
    await this.#exclusively(`e2e2:${roomId}`, async () => {
      const record = await this.#read(roomId);
      if (record?.control?.id === id) await this.#write(roomId, { ...record, control: null });
    });
  }

  /** The envelope of outbox item `id`: sealed once, stored with the session in one
   * write before it is sent, and the same on every retry. Null if it cannot seal yet. */
  async seal(roomId, id, text) {
    return this.#exclusively(`e2e2:${roomId}`, async () => {
      const record = await this.#read(roomId);
      if (!record) return null;
      if (record.sealed[id]) return record.sealed[id];
      if (!e2e2.canSeal(record.session)) return null;
      const { session, envelope, seq } = await e2e2.seal(record.session, text);
      // The archive first: a crash before the session is stored seals again, over it.
      await this.#archive(roomId, "me", id, { text, seq, notices: [], control: text === "" });
      await this.#write(roomId, { ...record, session, sealed: { ...record.sealed, [id]: envelope } });
      return envelope;
    });
  }

  /** Outbox item `id` was answered: its envelope need not be kept. */
  async sent(roomId, id) {
    await this.#exclusively(`e2e2:${roomId}`, async () => {
      const record = await this.#read(roomId);
      if (!record?.sealed[id]) return;
      const sealed = { ...record.sealed };
      delete sealed[id];
      await this.#write(roomId, { ...record, sealed });
    });
  }

  /**
   * The peer's envelope `id`: from the archive if this device read it before, else
   * opened (and archived, then the session stored). `{text, seq, notices, control}`, or
   * `{unreadable}`: "replayed" (a sequence number read before under another id),
   * "altered" (does not open), "too_many_skipped", "no_session".
   */
  async open(roomId, id, envelope, sentAt) {
    const kept = await this.archived(roomId, "peer", id);
    if (kept) return kept;
    return this.#exclusively(`e2e2:${roomId}`, async () => {
      const again = await this.archived(roomId, "peer", id);
      if (again) return again;
      const record = await this.#read(roomId);
      if (!record) return { unreadable: "no_session" };
      let opened;
      try {
        opened = await e2e2.open(record.session, envelope);
      } catch (error) {
        if (!(error instanceof e2e2.OpenError)) throw error;
        return { unreadable: error.reason === "garbled" || error.reason === "unexpected_hello" ? "altered" : error.reason };
      }
      const hello = opened.text === null;
      const entry = { text: hello ? "" : opened.text, seq: opened.seq, notices: opened.notices, control: hello || opened.text === "" };
      await this.#archive(roomId, "peer", id, entry);
      const next = { ...record, session: opened.session, peerSince: record.peerSince ?? sentAt ?? new Date().toISOString() };
      // Read a hello: the first member's start goes next, so that the second can seal.
      if (hello) next.control = { id: newId(), start: true };
      await this.#write(roomId, next);
      return entry;
    });
  }

  /** The start of the first member, sealed once (like an outbox item). */
  async sealStart(roomId, id) {
    const envelope = await this.seal(roomId, id, "");
    if (envelope) {
      await this.#exclusively(`e2e2:${roomId}`, async () => {
        const record = await this.#read(roomId);
        if (record?.control?.id === id) await this.#write(roomId, { ...record, control: { ...record.control, envelope } });
      });
    }
    return envelope;
  }
}
