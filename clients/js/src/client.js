// The secret-rooms client: the whole protocol a chat front end needs, on any
// Pusher-compatible realtime client. See ../README.md for a tour, ../index.d.ts for the
// types, and the project's docs/api.md for the routes.

import * as e2e1 from "./e2e1.js";
import * as e2e2 from "./e2e2.js";
import { Sessions } from "./sessions.js";
import { newId } from "./bytes.js";

/** An answer of the API that is not a 2xx, or no answer at all (`status` 0, code
 * `network`). `code` is the API's error code (`room_closed`, `rate_limited`, ...). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }

  /** Sending it again cannot succeed: a 4xx but 408 and 429. */
  get final() {
    return this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

/** How long the outbox waits before its `attempt`-th retry (from 0): doubling from
 * `first`, at most `max`, less up to a quarter at random so that clients spread out. */
export function backoff(attempt, { first = 1000, max = 30_000 } = {}) {
  const delay = Math.min(max, first * 2 ** Math.min(attempt, 20));
  return Math.round(delay * (1 - Math.random() / 4));
}

const TYPING_EVERY_MS = 3000;
const CATCH_UP_PAGES = 20;
const PAGE = 100;

/** A realtime `message` event with fields of the right types. */
const wellFormed = (data) =>
  typeof data?.id === "string" && typeof data.sentAt === "string" && typeof data.message === "string" && typeof data.from?.publicId === "string";

const chronological = (a, b) => (a.sentAt === b.sentAt ? (a.id < b.id ? -1 : 1) : a.sentAt < b.sentAt ? -1 : 1);

const sameMessage = (a, b) => a.message === b.message && a.sentAt === b.sentAt && a.from.publicId === b.from.publicId;

/** A room's trust as stored: `{key, others}`, or a bare key (version 0.3), or null. */
function readTrust(stored) {
  if (typeof stored === "string") return { key: stored, others: [] };
  if (!stored?.key) return null;
  return { key: stored.key, others: Array.isArray(stored.others) ? stored.others : [] };
}


export class SecretRooms {
  /**
   * The identity kept in `storage`, or a new one; then the room list, the inbox channel
   * and the channels of the rooms joined, when a realtime client is given.
   */
  static async open(options) {
    const client = new SecretRooms(options);
    await client.start();
    return client;
  }

  #options;
  #storage;
  #fetch;
  #handlers = new Map();
  #rooms = new Map();
  /** Per room: messages by sender and id. */
  #messages = new Map();
  /** Per room, by sender and id: what the server sent, whether the history said so
   * (`kept`), and the message it made. */
  #sources = new Map();
  #keyPair = null;
  #roomKeys = new Map();
  #realtime = null;
  #inbox = null;
  #flushing = new Map();
  #timers = new Set();
  #closed = false;
  #typedAt = new Map();
  /** Per channel subscribed: a promise of its first success. */
  #subscribed = new Map();
  /** Per room: the outbox's changes, one after another (a read and its write together). */
  #outboxChanges = new Map();
  /** Every room's sends, one after another: the server knows a retry of the identity's
   * last message only, so none goes while another waits for an answer. */
  #sending = Promise.resolve();
  /** The room whose oldest item waits to be sent again, if any: the others wait too. */
  #waiting = null;
  #retryTimers = new Map();
  #flushAgain = new Set();
  #refreshing = Promise.resolve();
  /** Other clients (tabs) on the same storage: what changed there. */
  #broadcast = null;
  #started = null;
  /** The e2e2 sessions and the local archive (option `e2e2`). */
  #sessions = null;
  #controlAttempts = new Map();

  /** `SecretRooms.open`, or this, `on(...)` for the events, then `start()`. */
  constructor(options) {
    if (!options?.baseUrl || !options?.storage) throw new TypeError("baseUrl and storage are required");
    this.#options = { encryption: true, e2e2: false, retry: {}, name: "secret-rooms", ...options };
    this.#storage = options.storage;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** This client's identity: `publicId`, `privateId`, `username`, `publicKey`. */
    this.identity = null;
  }

  // --- Events ---------------------------------------------------------------------------

  /** Call `handler` with each event named `name`; returns a function that stops it. */
  on(name, handler) {
    if (!this.#handlers.has(name)) this.#handlers.set(name, new Set());
    this.#handlers.get(name).add(handler);
    return () => this.#handlers.get(name)?.delete(handler);
  }

  #emit(name, detail) {
    for (const handler of this.#handlers.get(name) ?? []) {
      try {
        handler(detail);
      } catch (error) {
        if (name !== "error") this.#emit("error", { error });
      }
    }
  }

  // --- The API --------------------------------------------------------------------------

  async #api(path, body) {
    let response;
    try {
      response = await this.#fetch(this.#options.baseUrl.replace(/\/$/, "") + path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body ?? {}),
      });
    } catch (error) {
      throw new ApiError(0, "network", `The server cannot be reached: ${error?.message ?? error}`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const retryAfter = Number(response.headers.get("retry-after")) || null;
      const error = data?.error;
      throw new ApiError(response.status, error?.code ?? "unknown", error?.message ?? `HTTP ${response.status}`, retryAfter);
    }
    return data;
  }

  #private() {
    return { privateId: this.identity.privateId };
  }

  /** `task` under the Web Lock `<name>:<what>` (one client on this storage at a time),
   * where the browser has Web Locks; else `task` alone. */
  #exclusively(what, task) {
    const locks = globalThis.navigator?.locks;
    return locks ? locks.request(`${this.#options.name}:${what}`, task) : task();
  }

  /** Tell the other clients on this storage (tabs) what changed: `identity`, or the
   * `outbox` or `trust` of a room. */
  #tell(change) {
    try {
      this.#broadcast?.postMessage(change);
    } catch {
      // closed: nobody to tell
    }
  }

  async #heard(change) {
    if (this.#closed || !this.identity) return;
    if (change?.kind === "identity") {
      if (await this.#syncIdentity()) await this.refreshRooms();
    } else if (change?.kind === "outbox" && this.#rooms.has(change.roomId)) {
      this.#emit("outbox", { roomId: change.roomId });
    } else if (change?.kind === "trust" && this.#rooms.has(change.roomId)) {
      const room = this.#rooms.get(change.roomId);
      if (await this.#learnTrust(room, null)) await this.#changed(room);
    }
  }

  // --- Identity -------------------------------------------------------------------------

  /** What `open` does after making the client: for a UI that binds its handlers first,
   * so that it hears every event, the first ones included. Once. */
  start() {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start() {
    this.identity = (await this.#storage.get("identity")) ?? null;
    // Clients opened at once on one storage (tabs) make one identity: one at a time,
    // each looking again once its turn comes.
    if (!this.identity) {
      await this.#exclusively("identity", async () => {
        this.identity = (await this.#storage.get("identity")) ?? null;
        if (!this.identity) await this.#create();
      });
    }
    this.#keyPair = await this.#ownKeyPair();
    if (this.#options.e2e2 && this.#keyPair) {
      this.#sessions = new Sessions(this.#storage, (what, task) => this.#exclusively(what, task), () => ({
        keyPair: this.#keyPair,
        publicKey: this.identity.publicKey,
      }));
    }
    if (globalThis.BroadcastChannel) {
      this.#broadcast = new BroadcastChannel(this.#options.name);
      this.#broadcast.onmessage = (event) => this.#heard(event.data).catch((error) => this.#emit("error", { error }));
    }
    if (this.#options.realtime) {
      this.#realtime = this.#options.realtime({
        authEndpoint: `${this.#options.baseUrl.replace(/\/$/, "")}/pusher/auth`,
        params: this.#private(),
      });
    }
    await this.refreshRooms();
    for (const roomId of this.#rooms.keys()) this.#flush(roomId);
  }

  /** The key pair kept for this identity, if the storage still has the one whose public
   * key the identity registered; else null (the identity is then "unavailable"). */
  async #ownKeyPair() {
    if (!this.identity.publicKey) return null;
    try {
      const pair = (await this.#storage.get("keyPair")) ?? null;
      return pair && (await e2e1.exportPublicKey(pair)) === this.identity.publicKey ? pair : null;
    } catch {
      return null;
    }
  }

  async #create() {
    let publicKey;
    if (this.#options.encryption && (await e2e1.supported())) {
      // A storage that keeps text only keeps the pair as JWK: extractable.
      const pair = await e2e1.generateKeyPair(this.#storage.keepsKeys === false);
      publicKey = await e2e1.exportPublicKey(pair);
      // Persisted before the identity: a crash in between leaves a pair the next
      // create replaces, never an identity without its key.
      await this.#storage.set("keyPair", pair);
    }
    let made;
    try {
      made = await this.#api("/users/create", publicKey ? { publicKey } : {});
    } catch (error) {
      // A server from before encryption refuses the field: a plaintext identity.
      if (!publicKey || error?.code !== "malformed_body") throw error;
      made = await this.#api("/users/create", {});
      publicKey = undefined;
      await this.#storage.delete("keyPair");
    }
    this.identity = { ...made, publicKey: publicKey ?? null, pastIds: [] };
    await this.#storage.set("identity", this.identity);
    this.#emit("identity", { identity: this.identity });
  }

  /** A fresh public id; the old one is retired for good. */
  async rotate() {
    const { publicId } = await this.#api("/users/rotate", this.#private());
    await this.#exclusively("identity", async () => {
      // Another client on this storage may have rotated it before: its id is a past one too.
      await this.#syncIdentity();
      const old = this.identity.publicId;
      this.identity = { ...this.identity, publicId, pastIds: [...new Set([...(this.identity.pastIds ?? []), old])] };
      await this.#storage.set("identity", this.identity);
    });
    this.#tell({ kind: "identity" });
    this.#emit("identity", { identity: this.identity });
    await this.refreshRooms();
    return publicId;
  }

  /** Another client on this storage (a tab) may have rotated the public id: what is
   * stored wins, and no id known here as mine is forgotten. True when it changed. */
  async #syncIdentity() {
    const stored = await this.#storage.get("identity");
    if (!stored || stored.privateId !== this.identity.privateId || stored.publicId === this.identity.publicId) return false;
    const past = new Set([...(this.identity.pastIds ?? []), this.identity.publicId, ...(stored.pastIds ?? [])]);
    past.delete(stored.publicId);
    this.identity = { ...stored, pastIds: [...past] };
    this.#emit("identity", { identity: this.identity });
    return true;
  }

  /** Whether this client holds the identity's key pair: false for an identity without
   * one, and for one whose storage lost it (its rooms are then "unavailable"). */
  get hasKeyPair() {
    return this.#keyPair !== null;
  }

  #mine(publicId) {
    return publicId === this.identity.publicId || (this.identity.pastIds ?? []).includes(publicId);
  }

  // --- Rooms ----------------------------------------------------------------------------

  /** The rooms as last listed, newest activity first. */
  rooms() {
    return [...this.#rooms.values()].map((room) => this.#view(room));
  }

  room(roomId) {
    const room = this.#rooms.get(roomId);
    return room ? this.#view(room) : null;
  }

  #view(room) {
    const { roomId, channel, peer, joined, closed, lastMessageAt } = room;
    return {
      roomId,
      channel,
      peer: { ...peer },
      joined,
      closed,
      lastMessageAt,
      encryption: this.#encryption(room),
      peerKey: room.trust?.key ?? null,
      changedKeys: [...(room.trust?.others ?? [])],
      peerWithoutKey: room.peerWithoutKey === true,
      subscribed: room.subscribed === true,
      hasOlder: typeof room.older === "string" && room.older !== "",
      ratchet: this.#sessions?.state(roomId) ?? null,
    };
  }

  /** "encrypted"; "waiting" (for the peer to join, with their key); "plaintext" (one
   * side has no key); "compromised" (the list named another key for the peer than the
   * room's first one: nothing more is sent, for good); "unavailable" (this identity
   * has a key, but the storage lost it). */
  #encryption(room) {
    if (this.identity.publicKey && !this.#keyPair) return "unavailable";
    if (!this.#keyPair) return "plaintext";
    if (room.badKey || (room.trust?.others.length ?? 0) > 0) return "compromised";
    if (room.trust?.key) return "encrypted";
    return room.peer.username != null ? "plaintext" : "waiting";
  }

  /** What this client trusts of the room's peer key, from the storage (another client on
   * it may have learnt it), then from what the room list says of the peer (`peer`, or
   * null): the first key the list names is the room's for good; another one later is
   * kept as a sign of someone in between. Keys come from the list alone, never from a
   * realtime event, which whoever holds the realtime app could forge. True if changed. */
  async #learnTrust(room, peer) {
    const before = JSON.stringify([room.trust, room.peerWithoutKey]);
    const name = `trust:${room.roomId}`;
    room.trust = readTrust(await this.#storage.get(name));
    if (peer && peer.username != null) {
      room.peerWithoutKey = !e2e1.isPublicKey(peer.publicKey);
      const key = peer.publicKey;
      if (this.#keyPair && !room.peerWithoutKey && room.trust?.key !== key && !room.trust?.others.includes(key)) {
        await this.#exclusively(name, async () => {
          const stored = readTrust(await this.#storage.get(name));
          room.trust = stored ? { key: stored.key, others: [...new Set([...stored.others, key])].filter((k) => k !== stored.key) } : { key, others: [] };
          await this.#storage.set(name, room.trust);
        });
        this.#tell({ kind: "trust", roomId: room.roomId });
      }
    }
    return before !== JSON.stringify([room.trust, room.peerWithoutKey]);
  }

  /** The room's keys or members changed: say so, open again what could not be opened,
   * and send what waits if it now may go. */
  async #changed(room) {
    this.#emit("room", { room: this.#view(room) });
    await this.#reopen(room);
    this.#flush(room.roomId);
  }

  /** Ask for the room list again (one request): new rooms, peers who joined, keys.
   * Refreshes run one after another, so that a room is never made twice. */
  refreshRooms() {
    const next = this.#refreshing.catch(() => {}).then(() => this.#refreshOnce());
    this.#refreshing = next;
    return next;
  }

  async #refreshOnce() {
    const list = await this.#api("/users/rooms", this.#private());
    for (const listed of list.rooms) {
      // Changed in place: the channel's handlers hold this object.
      const known = this.#rooms.get(listed.roomId);
      const before = known ? JSON.stringify(this.#view(known)) : null;
      // What the list says wins, but a name or a join learnt since stays.
      const room = Object.assign(known ?? {}, listed, {
        peer: { ...listed.peer, username: listed.peer.username ?? known?.peer.username ?? null },
        joined: listed.joined || known?.joined === true,
        closed: listed.closed || known?.closed === true,
      });
      await this.#learnTrust(room, listed.peer);
      const changed = before !== JSON.stringify(this.#view(room));
      this.#rooms.set(room.roomId, room);
      if (changed && known) await this.#changed(room);
      else if (changed) this.#emit("room", { room: this.#view(room) });
      this.#listen(room);
    }
    this.#listenInbox(list.inboxChannel);
    this.#emit("rooms", { rooms: this.rooms() });
    return this.rooms();
  }

  /** Ask for the list until it shows the announced room with its peer named: the list
   * is a projection, which may trail the announcement by a moment (the stream's delay
   * on AWS, the worker's on the local server). A few tries, backing off. */
  #refreshUntilShown(roomId) {
    const shown = () => typeof roomId !== "string" || this.#rooms.get(roomId)?.peer.username != null;
    return this.#backingOff(() => this.refreshRooms(), shown, { tries: 8, most: 2000 });
  }

  /** `step`, then again while `done()` is false: `tries` more times at most, waiting 50
   * ms, doubling up to `most` ms, in between. */
  async #backingOff(step, done, { tries, most }) {
    for (let attempt = 0; ; attempt += 1) {
      await step();
      if (done() || attempt >= tries || this.#closed) return;
      await new Promise((resolve) => this.#later(Math.min(most, 50 * 2 ** attempt), resolve));
    }
  }

  /** Open (or join) the room with `publicId`: the same room whichever side asks. */
  async connect(publicId) {
    const { roomId } = await this.#api(`/users/${encodeURIComponent(publicId)}/connect`, this.#private());
    await this.refreshRooms();
    return this.room(roomId);
  }

  /** Close a room for good, for both members (also one only offered to this identity). */
  async block(roomId) {
    await this.#api(`/rooms/${encodeURIComponent(roomId)}/block`, this.#private());
    await this.#withOutbox(roomId, async () => []);
    this.#answered(roomId);
    const room = this.#rooms.get(roomId);
    if (room) {
      room.closed = true;
      this.#realtime?.unsubscribe(room.channel);
      room.listening = false;
      this.#emit("room", { room: this.#view(room) });
    }
  }

  // --- Realtime -------------------------------------------------------------------------

  /** Subscribe, and note when it first succeeds (for `ready`, and the event). */
  #subscribe(name) {
    const channel = this.#realtime.subscribe(name);
    let resolve;
    this.#subscribed.set(name, new Promise((r) => (resolve = r)));
    channel.bind("pusher:subscription_succeeded", () => {
      resolve();
      this.#emit("subscribed", { channel: name });
    });
    // Refused (a room blocked meanwhile): settled too, so that `ready` never hangs.
    channel.bind("pusher:subscription_error", () => resolve());
    return channel;
  }

  /** Resolves once the inbox channel and the channels of the rooms known now are
   * subscribed (or refused): from then on, nothing published to them is missed. */
  async ready() {
    await Promise.all(this.#subscribed.values());
  }

  #listenInbox(channel) {
    if (!this.#realtime || !channel || this.#inbox === channel) return;
    if (this.#inbox) this.#realtime.unsubscribe(this.#inbox);
    this.#inbox = channel;
    const subscription = this.#subscribe(channel);
    // Anyone holding the realtime app could forge an announcement: it only makes the
    // client ask for the list, which has the last word.
    subscription.bind("room", (data) => {
      this.#emit("inbox", { roomId: data?.roomId ?? null, from: data?.from ?? null });
      this.#refreshUntilShown(data?.roomId).catch((error) => this.#emit("error", { error }));
    });
  }

  #listen(room) {
    if (!this.#realtime || !room.joined || room.closed || room.listening) return;
    room.listening = true;
    const channel = this.#subscribe(room.channel);
    room.subscription = channel;
    channel.bind("pusher:subscription_succeeded", async () => {
      room.subscribed = true;
      this.#emit("room", { room: this.#view(room) });
      try {
        // A peer who joined between the last list and this subscription was announced
        // to nobody here: the list has their key.
        if (this.#encryption(room) === "waiting") await this.refreshRooms();
        await this.#catchUp(room.roomId);
      } catch (error) {
        this.#emit("error", { error, roomId: room.roomId });
      }
      this.#flush(room.roomId);
    });
    channel.bind("pusher:subscription_error", (data) => {
      const why = data?.error ?? data?.message ?? "refused";
      const error = new ApiError(data?.status ?? 0, "subscription_refused", `Could not join the room's channel: ${why}`);
      this.#emit("error", { error, roomId: room.roomId });
    });
    channel.bind("message", (data) => {
      // Whoever holds the realtime app could forge one: well-formed, from a member, and
      // the history has the last word. Another id may be the peer's new one (or mine,
      // rotated by another client on this storage): the list and the history say.
      // (The channel names the room; an event naming another one is not this room's.)
      if (!wellFormed(data) || (data.roomId !== undefined && data.roomId !== room.roomId)) return;
      const fromMember = async () =>
        this.#mine(data.from.publicId) || data.from.publicId === room.peer.publicId || ((await this.#syncIdentity()) && this.#mine(data.from.publicId));
      fromMember()
        .then((member) => (member ? this.#take(room, data, { live: true }) : this.#catchUpTo(room, data.id)))
        .catch((error) => this.#emit("error", { error, roomId: room.roomId }));
    });
    // The peer joined (my own connects are announced here too: once is enough then).
    channel.bind("room", (data) => {
      const asked = this.#mine(data?.from?.publicId) ? this.refreshRooms() : this.#refreshUntilShown(room.roomId);
      asked.catch((error) => this.#emit("error", { error }));
    });
    channel.bind("client-typing", () => this.#emit("typing", { roomId: room.roomId }));
    channel.bind("client-here", (data) => {
      this.#emit("presence", { roomId: room.roomId, at: Date.now() });
      if (data?.hello) this.here(room.roomId, { hello: false });
    });
  }

  /** Tell the peer this person is typing: at most one event every 3 s per room. */
  typing(roomId) {
    const room = this.#rooms.get(roomId);
    const last = this.#typedAt.get(roomId) ?? 0;
    if (!room?.subscribed || room.closed || Date.now() - last < TYPING_EVERY_MS) return false;
    this.#typedAt.set(roomId, Date.now());
    return room.subscription.trigger("client-typing", {});
  }

  /** Tell the peer this person is here (`hello`: and ask them to answer). */
  here(roomId, { hello = false } = {}) {
    const room = this.#rooms.get(roomId);
    if (!room?.subscribed || room.closed) return false;
    return room.subscription.trigger("client-here", { hello });
  }

  // --- Messages -------------------------------------------------------------------------

  /** The messages this client holds for a room, oldest first, each once. */
  messages(roomId) {
    const held = [...(this.#messages.get(roomId)?.values() ?? [])].sort(chronological);
    // e2e2's transcript, from what is held now (whatever order it was read in): the
    // peer's sequence numbers missing between two held ones, and one that the server
    // put before a message the peer sealed earlier.
    const seqs = held.filter((m) => !m.mine && typeof m.seq === "number").map((m) => m.seq).sort((a, b) => a - b);
    // Each held sequence number, with the one held just below it.
    const below = new Map(seqs.map((n, at) => [n, at > 0 ? seqs[at - 1] : null]));
    let highest = 0;
    const out = [];
    for (const message of held) {
      if (!message.mine && typeof message.seq === "number") {
        const lower = below.get(message.seq);
        const missing = lower === null ? 0 : message.seq - lower - 1;
        const outOfOrder = message.seq < highest;
        highest = Math.max(highest, message.seq);
        if (!message.control) out.push({ ...message, missing, outOfOrder });
      } else if (!message.control) {
        out.push(message);
      }
    }
    return out;
  }

  /** One page of a room's history: newest first from `before` ("" for the newest), or
   * oldest first after `after`. Opened, and merged into `messages(roomId)`. */
  async history(roomId, { before, after, limit = 50 } = {}) {
    const room = this.#rooms.get(roomId);
    if (!room) throw new ApiError(404, "room_not_found", "This client does not know that room.");
    const body = { ...this.#private(), limit };
    if (before !== undefined) body.before = before ?? "";
    if (after !== undefined) body.after = after;
    const page = await this.#api(`/rooms/${encodeURIComponent(roomId)}/messages`, body);
    const messages = [];
    // Opened oldest first, as they were sealed (a ratchet skips fewer keys so).
    const opened = new Map();
    for (const raw of [...page.messages].sort(chronological)) opened.set(raw, await this.#take(room, raw));
    for (const raw of page.messages) messages.push(opened.get(raw));
    return { messages, next: page.next };
  }

  /** The newest page, then older ones on each call: `false` once there are no more. */
  async loadOlder(roomId, limit = 50) {
    const room = this.#rooms.get(roomId);
    if (room?.older === null) return false;
    const page = await this.history(roomId, { before: room?.older ?? "", limit });
    if (room) this.#older(room, page.next);
    return page.messages.length > 0;
  }

  /** Where the room's older messages start (`null`: there are none). */
  #older(room, cursor) {
    room.older = cursor;
    this.#emit("room", { room: this.#view(room) });
  }

  /** What came while away: the newest page on a first visit (older ones wait for
   * `loadOlder`), else newest pages back to a message already held; never a whole room. */
  async #catchUp(roomId) {
    let before = "";
    for (let n = 0; n < CATCH_UP_PAGES; n += 1) {
      const known = new Set(this.#messages.get(roomId)?.values() ?? []);
      const page = await this.history(roomId, { before, limit: PAGE });
      const room = this.#rooms.get(roomId);
      const first = room !== undefined && room.older === undefined;
      if (first) this.#older(room, page.next);
      if (first || !page.next || page.messages.some((m) => known.has(m))) return;
      before = page.next;
    }
  }

  /** The list (the peer may have a new public id), then the history, until it holds
   * message `id`: the event may come before the list names the peer's new public id
   * (the room list is a projection, which may trail), and before the history has it
   * where the server is of an earlier version (it published beside the history write;
   * now it keeps a message first). A few tries, backing off; an id the history never
   * shows (forged) is dropped. */
  #catchUpTo(room, id) {
    const held = () => this.#messages.get(room.roomId)?.has(`me:${id}`) || this.#messages.get(room.roomId)?.has(`peer:${id}`);
    const step = async () => {
      await this.refreshRooms();
      await this.#catchUp(room.roomId);
    };
    return this.#backingOff(step, held, { tries: 6, most: 1000 });
  }

  /** A message the server sent (`live`: on the room's channel; else from the history),
   * opened, held once by sender and id. What the history says replaces a live event
   * that differs: a forged event under a real message's id does not hide it. */
  async #take(room, raw, { live = false } = {}) {
    const sources = this.#sources.get(room.roomId) ?? new Map();
    this.#sources.set(room.roomId, sources);
    // An id this client does not know may be mine, rotated by another client here.
    if (!this.#mine(raw.from.publicId) && raw.from.publicId !== room.peer.publicId) await this.#syncIdentity();
    // By sender and id: an id is the sender's choice, so a peer reusing one of mine
    // cannot hide it.
    const key = `${this.#mine(raw.from.publicId) ? "me" : "peer"}:${raw.id}`;
    const known = sources.get(key);
    if (known && (live || known.kept || sameMessage(known.raw, raw))) {
      if (!live) known.kept = true;
      return known.message;
    }
    const entry = { raw, kept: !live, message: null };
    sources.set(key, entry);
    entry.message = this.#hold(room, key, entry);
    return entry.message;
  }

  async #hold(room, key, entry) {
    const message = await this.#build(room, entry.raw);
    const sources = this.#sources.get(room.roomId);
    // The history's version came while this one was being opened: it stands.
    if (sources.get(key) !== entry) return sources.get(key).message;
    const held = this.#messages.get(room.roomId) ?? new Map();
    this.#messages.set(room.roomId, held);
    held.set(key, message);
    // A hello or a start (e2e2) is the protocol's, not the person's: held, not shown.
    if (!message.control) this.#emit("message", { roomId: room.roomId, message });
    // The peer writes, so they joined: the list names them, and says with which key.
    if (!message.mine && (room.peer.username == null || this.#encryption(room) === "waiting")) {
      this.#refreshUntilShown(room.roomId).catch((error) => this.#emit("error", { error }));
    }
    return message;
  }

  async #build(room, raw) {
    const mine = this.#mine(raw.from.publicId);
    return { id: raw.id, roomId: room.roomId, from: raw.from, sentAt: raw.sentAt, mine, ...(await this.#open(room, raw, mine)) };
  }

  /** Keys learnt or changed: open again what could not be opened ("message" again, under
   * the same id). */
  async #reopen(room) {
    const held = this.#messages.get(room.roomId);
    for (const [key, message] of held ?? []) {
      if (message.text !== null) continue;
      const entry = this.#sources.get(room.roomId)?.get(key);
      if (!entry) continue;
      const again = await this.#build(room, entry.raw);
      if (again.unreadable === message.unreadable || held.get(key) !== message) continue;
      held.set(key, again);
      this.#emit("message", { roomId: room.roomId, message: again });
    }
  }

  /** `{text, encrypted}`, or `{text: null, encrypted: true, unreadable}`: "no_key" (no
   * key for this room yet), "foreign" (sealed with a key this room never agreed to: the
   * peer key the list named later), "altered" (anything else that does not open). */
  async #open(room, raw, mine) {
    if (!e2e1.looksSealed(raw.message)) return { text: raw.message, encrypted: false };
    if (this.#sessions && raw.message.startsWith(`${e2e2.VERSION}.`)) return this.#openE2e2(room, raw, mine);
    const opened1 = await this.#openE2e1(room, raw, mine);
    if (!this.#sessions) return opened1;
    // After the peer spoke e2e2, an e2e1 envelope from them is a step back: flagged.
    const since = this.#sessions.peerStartedAt(room.roomId);
    return { ...opened1, version: 1, downgraded: !mine && since !== null && raw.sentAt > since };
  }

  /** e2e2: my own from the archive (what I sent cannot be opened again, by design);
   * the peer's from the archive, else through the room's session. */
  async #openE2e2(room, raw, mine) {
    const unreadable = (why) => ({ text: null, encrypted: true, version: 2, unreadable: why });
    if (!e2e2.isEnvelope(raw.message)) return unreadable("altered");
    if (mine) {
      const kept = await this.#sessions.archived(room.roomId, "me", raw.id);
      return kept ? { text: kept.text, encrypted: true, version: 2, control: kept.control } : unreadable("not_kept");
    }
    if (!room.trust?.key) return unreadable("no_key");
    const before = this.#sessions.state(room.roomId);
    await this.#sessions.ensure(room.roomId, room.trust.key);
    const out = await this.#sessions.open(room.roomId, raw.id, raw.message, raw.sentAt);
    // A hello read (a start to send), or the session able to seal now: the outbox goes.
    if (out.control || this.#sessions.state(room.roomId) !== before) {
      this.#ratchetSeen(room);
      this.#flush(room.roomId);
    }
    if (out.unreadable) return unreadable(out.unreadable);
    // The hash chain named another envelope where this one stands: kept with it.
    const forked = out.notices.some((n) => n.kind === "altered");
    return { text: out.text, encrypted: true, version: 2, seq: out.seq, control: out.control, ...(forked ? { forked } : {}) };
  }

  /** The session's state may have changed: the room's view says so. */
  #ratchetSeen(room) {
    if (room.ratchetShown === this.#sessions.state(room.roomId)) return;
    room.ratchetShown = this.#sessions.state(room.roomId);
    this.#emit("room", { room: this.#view(room) });
  }

  async #openE2e1(room, raw, mine) {
    if (!e2e1.isEnvelope(raw.message)) return { text: null, encrypted: true, unreadable: "altered" };
    // Bound to the sender's key: mine for one of my ids, else the peer's.
    const opened = async (peerKey) => {
      const key = await this.#roomKey(room, peerKey);
      if (!key) return null;
      try {
        return await e2e1.open(key, room.roomId, mine ? this.identity.publicKey : peerKey, raw.message);
      } catch {
        return null;
      }
    };
    if (!this.identity.publicKey || !(await this.#roomKey(room, room.trust?.key))) {
      return { text: null, encrypted: true, unreadable: "no_key" };
    }
    const text = await opened(room.trust.key);
    if (text !== null) return { text, encrypted: true };
    for (const other of room.trust.others) {
      if ((await opened(other)) !== null) return { text: null, encrypted: true, unreadable: "foreign" };
    }
    return { text: null, encrypted: true, unreadable: "altered" };
  }

  /** The room key made with `peerKey`, or null: none, or a key no room key can be made
   * with (if it is the room's own, the room is then compromised: nothing is sent). */
  async #roomKey(room, peerKey) {
    if (!this.#keyPair || !peerKey) return null;
    const name = `${room.roomId} ${peerKey}`;
    if (!this.#roomKeys.has(name)) {
      const made = e2e1.roomKey(this.#keyPair, peerKey, room.roomId).catch(() => {
        if (peerKey === room.trust?.key) {
          room.badKey = true;
          this.#emit("room", { room: this.#view(room) });
        }
        return null;
      });
      this.#roomKeys.set(name, made);
    }
    return this.#roomKeys.get(name);
  }

  /** The safety code of my key and the room's peer key (`peerKey`: another one, say a
   * key the list named later), for the two people to compare. */
  async safetyCode(roomId, peerKey) {
    const room = this.#rooms.get(roomId);
    const key = peerKey ?? room?.trust?.key;
    if (!key || !this.identity.publicKey) return null;
    return e2e1.safetyCode(this.identity.publicKey, key);
  }

  // --- Sending: the outbox ----------------------------------------------------------------

  /**
   * Queue `text` for the room and send it: sealed in an encrypted room, once the peer's
   * key is known in a waiting one; in clear only where this identity has no key, or with
   * `clear: true` in a room whose peer has none. Resolves with the message's id once it
   * is stored; then "sent" (a 2xx, also for a retry) or "failed" (a final 4xx) follows.
   */
  async send(roomId, text, { clear = false } = {}) {
    if (typeof text !== "string" || text === "") throw new TypeError("a message is a non-empty string");
    const room = this.#rooms.get(roomId);
    if (!room) throw new ApiError(404, "room_not_found", "This client does not know that room.");
    if (room.closed) throw new ApiError(410, "room_closed", "This room was blocked by one of its members and is closed for good.");
    const id = newId();
    await this.#withOutbox(roomId, async (items) => [...items, { id, text, clear, queuedAt: Date.now(), attempts: 0 }]);
    this.#flush(roomId);
    return id;
  }

  /** What waits to be sent to a room, oldest first. */
  async outbox(roomId) {
    return (await this.#storage.get(`outbox:${roomId}`)) ?? [];
  }

  /** The person says so: the items `ids` of a room whose peer has no key go in clear
   * (items queued before, or written meanwhile, do not). */
  async sendInClear(roomId, ids) {
    const allowed = new Set(ids);
    await this.#withOutbox(roomId, async (items) => items.map((i) => (allowed.has(i.id) ? { ...i, clear: true } : i)));
    return this.#flush(roomId);
  }

  /** Take items out of a room's outbox unsent: `ids`, or all of them. */
  async discard(roomId, ids) {
    const dropped = ids ? new Set(ids) : null;
    await this.#withOutbox(roomId, async (items) => (dropped ? items.filter((i) => !dropped.has(i.id)) : []));
  }

  /** Change the room's outbox: read and write together, one change at a time (and one
   * tab at a time, where the browser has Web Locks), so that none is lost. */
  #withOutbox(roomId, change) {
    const apply = async () => {
      const before = await this.outbox(roomId);
      const items = await change(before);
      if (JSON.stringify(items) === JSON.stringify(before)) return items;
      if (items.length) await this.#storage.set(`outbox:${roomId}`, items);
      else await this.#storage.delete(`outbox:${roomId}`);
      this.#tell({ kind: "outbox", roomId });
      this.#emit("outbox", { roomId });
      return items;
    };
    const previous = this.#outboxChanges.get(roomId) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => this.#exclusively(`outbox:${roomId}`, apply));
    this.#outboxChanges.set(roomId, next);
    return next;
  }

  /** Send what the room's outbox holds, in order: one room at a time, and one client
   * (tab) at a time, where the browser has Web Locks. */
  #flush(roomId) {
    if (this.#closed) return undefined;
    if (this.#flushing.has(roomId)) {
      // It may have read the outbox already: once more after it.
      this.#flushAgain.add(roomId);
      return this.#flushing.get(roomId);
    }
    clearTimeout(this.#retryTimers.get(roomId));
    this.#retryTimers.delete(roomId);
    const turn = () => this.#exclusively("send", () => this.#drain(roomId));
    const flushing = this.#sending
      .catch(() => {})
      .then(turn)
      .catch((error) => this.#emit("error", { error, roomId }))
      .finally(() => {
        this.#flushing.delete(roomId);
        if (this.#flushAgain.delete(roomId)) this.#flush(roomId);
      });
    this.#sending = flushing;
    this.#flushing.set(roomId, flushing);
    return flushing;
  }

  /** The item of `roomId` that waited for an answer got one: the other rooms go on. */
  #answered(roomId) {
    if (this.#waiting !== roomId) return;
    this.#waiting = null;
    for (const other of this.#rooms.keys()) if (other !== roomId) this.#flush(other);
  }

  async #drain(roomId) {
    for (;;) {
      const room = this.#rooms.get(roomId);
      if (!room || room.closed || this.#closed) {
        if (room?.closed) this.#answered(roomId);
        return;
      }
      // Another room's message waits for an answer: it goes first.
      if (this.#waiting !== null && this.#waiting !== roomId) return;
      const state = this.#encryption(room);
      // An e2e2 room sends its hello or its start before anything else.
      let control = null;
      // (Only in a room this identity joined: an offered one takes no post yet.)
      if (state === "encrypted" && this.#sessions && room.joined) {
        const record = await this.#sessions.ensure(roomId, room.trust.key);
        this.#ratchetSeen(room);
        if (record.control) {
          const envelope = record.control.envelope ?? (await this.#sessions.sealStart(roomId, record.control.id));
          if (envelope) control = { id: record.control.id, message: envelope };
        }
      }
      // Read again each turn: another client on this storage may have sent some.
      const items = control ? [] : await this.outbox(roomId);
      if (!control && items.length === 0) {
        this.#answered(roomId);
        return;
      }
      // In a room whose peer has no key, only what the person said may go in clear.
      const keyless = state === "plaintext" && this.identity.publicKey && !room.trust;
      const next = control ?? (keyless ? items.find((i) => i.clear) : items[0]);
      let message;
      if (!next) {
        this.#answered(roomId);
        return;
      } else if (control) {
        message = control.message;
      } else if (state === "encrypted") {
        // Sealed once and kept: every retry sends the same envelope under the same id
        // (an item sealed under e2e1 by an earlier version stays so).
        message = next.sealed ?? (this.#sessions ? await this.#sessions.seal(roomId, next.id, next.text) : null);
        if (!message && this.#sessions) {
          // The session waits for the peer's first envelope: this room waits, the others go.
          this.#answered(roomId);
          return;
        }
        if (!message) {
          message = await e2e1.seal(await this.#roomKey(room, room.trust.key), roomId, this.identity.publicKey, next.text);
          await this.#withOutbox(roomId, async (items) => items.map((i) => (i.id === next.id ? { ...i, sealed: message } : i)));
        }
      } else if (state === "plaintext" && (!this.identity.publicKey || keyless)) {
        message = next.text;
      } else {
        // Waiting for a key, or compromised: it stays queued, and holds no other room up.
        this.#answered(roomId);
        return;
      }
      try {
        await this.#api(`/rooms/${encodeURIComponent(roomId)}/message`, { ...this.#private(), message, id: next.id });
      } catch (error) {
        // 409: an earlier attempt under this id got there first (its answer was lost).
        if (!(error instanceof ApiError) || (error.code !== "id_conflict" && !error.final)) {
          const attempts = (control ? this.#controlAttempts.get(next.id) ?? 0 : next.attempts ?? 0) + 1;
          if (control) this.#controlAttempts.set(next.id, attempts);
          else await this.#withOutbox(roomId, async (items) => items.map((i) => (i.id === next.id ? { ...i, attempts } : i)));
          const delay = error?.retryAfter ? error.retryAfter * 1000 : backoff(attempts - 1, this.#options.retry);
          this.#waiting = roomId;
          this.#emit("retry", { roomId, id: next.id, error, delay });
          // One timer a room: a flush meanwhile (another send) clears it.
          clearTimeout(this.#retryTimers.get(roomId));
          this.#retryTimers.set(
            roomId,
            setTimeout(() => this.#flush(roomId), delay),
          );
          return;
        }
        if (control && error.code !== "id_conflict" && error.code !== "room_closed") {
          // A hello or a start is the session's only way to begin: kept for the next
          // flush (a join, a reload), never dropped.
          this.#answered(roomId);
          return;
        }
        if (error.code !== "id_conflict") {
          if (control) await this.#sessions.controlSent(roomId, next.id);
          // A closed room takes nothing more: what waits fails with it.
          const gone = error.code === "room_closed" ? await this.outbox(roomId) : control ? [] : [next];
          await this.#withOutbox(roomId, async (items) => items.filter((i) => !gone.some((g) => g.id === i.id)));
          if (error.code === "room_closed") {
            room.closed = true;
            this.#emit("room", { room: this.#view(room) });
          }
          for (const item of gone) this.#emit("failed", { roomId, id: item.id, error });
          this.#answered(roomId);
          continue;
        }
      }
      if (control) {
        await this.#sessions.controlSent(roomId, next.id);
        this.#controlAttempts.delete(next.id);
      } else {
        await this.#withOutbox(roomId, async (items) => items.filter((i) => i.id !== next.id));
        await this.#sessions?.sent(roomId, next.id);
        this.#emit("sent", { roomId, id: next.id });
      }
      this.#answered(roomId);
    }
  }

  #later(ms, task) {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      task();
    }, ms);
    this.#timers.add(timer);
  }

  /** Stop: no more retries, and the realtime client disconnected. What waits in the
   * outbox stays in the storage for the next `open`. */
  close() {
    this.#closed = true;
    for (const timer of [...this.#timers, ...this.#retryTimers.values()]) clearTimeout(timer);
    this.#timers.clear();
    this.#retryTimers.clear();
    this.#realtime?.disconnect();
    this.#broadcast?.close();
  }
}
