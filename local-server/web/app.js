// The chat page: one identity per browser (localStorage) and all its rooms: the ones it
// joined and the ones others opened with its public id (the inbox), each with its
// history from the server, unread counts, typing and presence, and end-to-end
// encryption (its design in crypto.js).
// Configuration comes from the query string (?api=…&key=…&cluster=…&wsHost=…&wsPort=…)
// or from config.json next to this page (the local server serves one).
import { Realtime } from "./realtime.js";
import { e2e } from "./crypto.js";

const $ = (id) => document.getElementById(id);
const MAX_BYTES = 4096;
const PUBLIC_ID = /^\d{3}-\d{3}(-\d{3})?$/;
const encoder = new TextEncoder();
// Presence: a member says "here" when it joins a room's channel and every HEARTBEAT
// after; a peer unheard for longer than AWAY is shown offline.
const HEARTBEAT = 25_000;
const AWAY = 60_000;
// Typing: at most one event per TYPING_EVERY while typing; shown for TYPING_SHOWN.
const TYPING_EVERY = 2_000;
const TYPING_SHOWN = 4_000;

async function loadConfig() {
  const q = new URLSearchParams(location.search);
  if (q.get("key")) {
    return {
      fromAddress: true,
      apiBase: q.get("api") ?? "",
      pusher: {
        key: q.get("key"),
        cluster: q.get("cluster") ?? undefined,
        wsHost: q.get("wsHost") ?? undefined,
        wsPort: q.get("wsPort") ? Number(q.get("wsPort")) : undefined,
        forceTLS: q.get("forceTLS") !== "false",
      },
    };
  }
  const res = await fetch("config.json");
  if (!res.ok) throw new Error("config.json is missing: pass ?api=…&key=…&cluster=… in the address");
  const config = await res.json();
  if (config.pusher.sameOrigin) {
    Object.assign(config.pusher, {
      wsHost: location.hostname,
      wsPort: Number(location.port) || (location.protocol === "https:" ? 443 : 80),
      forceTLS: location.protocol === "https:",
    });
  }
  return config;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    Object.assign(this, { status, code });
  }
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setStatus(state, detail) {
  const labels = { connecting: "connecting…", connected: "live", reconnecting: "reconnecting…", failed: "offline" };
  $("status").dataset.state = state;
  $("status").textContent = labels[state] ?? state;
  $("status").title = detail ?? "";
  if (state === "failed") showError(`Realtime connection refused: ${detail ?? "unknown reason"}`);
}

const config = await loadConfig();

// The identity (and its rooms) belongs to the whole configuration, not to the API alone:
// a link that keeps the API but points the realtime settings elsewhere must not make
// this page sign that server's socket into the rooms of the identity it stored. Such a
// link gets an identity of its own, which has no rooms.
const { key, cluster, wsHost, wsPort, forceTLS } = config.pusher;
const apiBase = config.apiBase || location.origin;
const storageKey = `secret-rooms:${JSON.stringify([apiBase, key, cluster ?? null, wsHost ?? null, wsPort ?? null, forceTLS ?? null])}`;

// Identities stored before, under the API alone, move to the configuration this page's
// own config.json gives (never to one taken from the address).
if (!config.fromAddress) {
  const legacy = `secret-rooms:${apiBase}:`;
  for (const name of Object.keys(localStorage)) {
    if (name.startsWith(legacy) && localStorage.getItem(`${storageKey}:${name.slice(legacy.length)}`) === null) {
      localStorage.setItem(`${storageKey}:${name.slice(legacy.length)}`, localStorage.getItem(name));
    }
    if (name.startsWith(legacy)) localStorage.removeItem(name);
  }
}

async function api(path, body) {
  let res;
  try {
    res = await fetch(config.apiBase + path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body ?? {}),
    });
  } catch {
    throw new ApiError(0, "network", "The server cannot be reached. Check your connection and try again.");
  }
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    throw new ApiError(res.status, data?.error?.code ?? "unknown", data?.error?.message ?? `HTTP ${res.status}`);
  }
  return data;
}

function load(name) {
  try {
    return JSON.parse(localStorage.getItem(`${storageKey}:${name}`));
  } catch {
    return null;
  }
}

function save(name, value) {
  if (value === null) localStorage.removeItem(`${storageKey}:${name}`);
  else localStorage.setItem(`${storageKey}:${name}`, JSON.stringify(value));
}

/** The stored identity, or a new one: with a key pair where the browser can make and
 * keep one (its public key goes to the server, the pair stays in IndexedDB). Tabs that
 * open at once make it one at a time (a Web Lock), each looking again once its turn
 * comes: otherwise one tab's key pair could be kept beside the other tab's identity.
 * They look in IndexedDB too, where the identity is kept as well: a tab's localStorage
 * may not have the other tab's write yet when the lock passes to it. */
async function identity() {
  return load("me") ?? exclusively(`${storageKey}:identity`, async () => {
    const made = load("me") ?? (await e2e.loadKept(identityName));
    if (!made) return createIdentity();
    save("me", made);
    return made;
  });
}

const identityName = `${storageKey}:me`;

/** Store the identity (after a change: a rotation), in both places. */
async function saveMe(me) {
  save("me", me);
  await e2e.keep(identityName, me).catch(() => {});
}

async function createIdentity() {
  let publicKey;
  if (await e2e.supported()) {
    try {
      const keyPair = await e2e.generateKeyPair();
      await e2e.saveKeyPair(storageKey, keyPair);
      publicKey = await e2e.exportPublicKey(keyPair);
    } catch {
      publicKey = undefined;
    }
  }
  let me;
  try {
    me = await api("/users/create", publicKey ? { publicKey } : {});
  } catch (error) {
    // A server from before encryption refuses the field: a plaintext identity, and
    // every room says so.
    if (!publicKey || error.code !== "malformed_body") throw error;
    me = await api("/users/create", {});
    publicKey = undefined;
  }
  if (publicKey) me.publicKey = publicKey;
  else await e2e.deleteKeyPair(storageKey);
  await saveMe(me);
  return me;
}

/** One tab at a time for `name` (where the browser has Web Locks). */
function exclusively(name, task) {
  return navigator.locks ? navigator.locks.request(name, task) : task();
}

const me = await identity();

/** This identity's key pair, if it has one and this browser still holds it. */
async function myKeyPair() {
  if (!me.publicKey) return null;
  const keyPair = await e2e.loadKeyPair(storageKey);
  try {
    return keyPair && (await e2e.exportPublicKey(keyPair)) === me.publicKey ? keyPair : null;
  } catch {
    return null;
  }
}
const myKeys = await myKeyPair();

/** Another tab of this identity may have rotated its public id: what is stored wins,
 * and no id this tab knew as mine is forgotten. */
let meSeen = null;
function syncMe() {
  // Read again only when it changed (this runs for each of the peer's messages).
  const raw = localStorage.getItem(`${storageKey}:me`);
  if (raw === meSeen) return false;
  meSeen = raw;
  const stored = load("me");
  if (!stored || stored.privateId !== me.privateId || stored.publicId === me.publicId) return false;
  const past = new Set([...(me.pastIds ?? []), me.publicId, ...(stored.pastIds ?? [])]);
  past.delete(stored.publicId);
  Object.assign(me, stored, { pastIds: [...past] });
  return true;
}

/** My messages: sent under my public id, or under one I had before a rotation (here or
 * in another tab). */
function isMine(publicId) {
  const known = () => publicId === me.publicId || (me.pastIds ?? []).includes(publicId);
  return known() || (syncMe() && known());
}

function showIdentity() {
  $("my-name").textContent = me.username;
  $("my-public-id").textContent = me.publicId;
  const keys = myKeys ? "encrypted" : me.publicKey ? "lost" : "none";
  $("identity").dataset.keys = keys;
  $("my-keys").textContent = {
    encrypted: "🔒 Your key pair stays in this browser: rooms with people who have one "
      + "are end-to-end encrypted.",
    lost: "⚠ This browser no longer has your identity's key pair: encrypted rooms can be "
      + "neither read nor written. Start over with a new identity (below).",
    none: "This identity has no encryption key (it was made before encryption, or this "
      + "browser cannot keep one): your rooms are not encrypted. Start over (below) for one "
      + "that has.",
  }[keys];
}
showIdentity();

const realtime = new Realtime({
  ...config.pusher,
  onStatus: setStatus,
  authorize: async (socketId, channel) => {
    const { auth } = await api("/pusher/auth", { socket_id: socketId, channel_name: channel, privateId: me.privateId });
    return auth;
  },
});
realtime.connect();

// --- Rooms -------------------------------------------------------------------------

/** roomId -> { roomId, channel, peer, joined, closed, lastMessageAt, messages (id -> message), subscribed, … } */
const rooms = new Map();
let openId = null;
let inboxChannel = null;

function room(entry) {
  let r = rooms.get(entry.roomId);
  if (!r) {
    // views: message id -> what it shows (its text, or why it cannot).
    // kept: message id -> whether what is shown came from the history (not a live event).
    r = { messages: new Map(), views: new Map(), kept: new Map(), subscribed: false, peerSeenAt: 0 };
    rooms.set(entry.roomId, r);
  }
  // What the list says wins, but what this page learnt since stays (a name, a join).
  Object.assign(r, {
    roomId: entry.roomId,
    channel: entry.channel,
    peer: { publicId: entry.peer.publicId, username: entry.peer.username ?? r.peer?.username ?? null },
    joined: entry.joined || r.joined === true,
    closed: entry.closed || r.closed === true,
    lastMessageAt: entry.lastMessageAt ?? r.lastMessageAt ?? null,
  });
  return r;
}

// --- End-to-end encryption: what this page knows of each room's keys --------------------

/** Per room, in localStorage: { key: the peer's public key this room is encrypted to,
 * the first one the room list reported; others: any different key it reported since }.
 * A member's key is fixed when the identity is made and a room is a fixed pair of
 * members, so the peer's key in a room never changes: another key means someone in
 * between (or a broken server). Such a room is compromised for good: it warns, sends
 * nothing more, and shows what only opens with another key as a notice. Once a room has
 * a key it stays encrypted: it never goes back to sending in clear.
 *
 * Keys (and a peer's lack of one) are learnt from the room list alone, the API's answer
 * to POST /users/rooms: the API server is the key directory (and the safety code is
 * there for a lying one). A realtime event can be forged by whoever holds the realtime
 * app, so a `room` event is only a hint to ask for the list again. */
const trustName = (r) => `e2e:${r.roomId}`;
function trust(r) {
  const t = load(trustName(r));
  if (!t?.key) return null;
  if (Array.isArray(t.others)) return t;
  // Kept by an earlier version of this page: { key (trusted last), changed (reported
  // since), previous (trusted before, newest first) }. The first key is the room's.
  const seen = [...(t.previous ?? []).slice().reverse(), t.key, t.changed].filter(Boolean);
  return { key: seen[0], others: [...new Set(seen.slice(1).filter((k) => k !== seen[0]))] };
}

/** The list reported another key for the peer than the room's: nothing more is sent. */
const compromised = (r) => (trust(r)?.others.length ?? 0) > 0;

/** "encrypted", "waiting" (for the peer to join with a key: messages wait in the outbox),
 * "compromised" (the peer's key changed: nothing is sent any more), "plaintext" (the peer
 * joined without a key, or this identity has none) or "unavailable" (this identity has
 * a key, but this browser lost it). */
function encryption(r) {
  if (me.publicKey && !myKeys) return "unavailable";
  if (compromised(r)) return "compromised";
  if (trust(r)?.key) return "encrypted";
  if (!myKeys || r.peerWithoutKey) return "plaintext";
  return "waiting";
}

/** What the room list says of the peer: a name once they connected to this identity,
 * and their public key if they have one. Never called with what a realtime event says. */
function learnPeer(r, peer) {
  if (!peer || peer.username == null) return; // not connected to us yet: nothing new
  const before = JSON.stringify([trust(r), r.peerWithoutKey]);
  if (!e2e.isPublicKey(peer.publicKey)) {
    r.peerWithoutKey = true;
  } else {
    r.peerWithoutKey = false;
    const t = trust(r);
    if (myKeys && !t) save(trustName(r), { key: peer.publicKey, others: [] });
    else if (myKeys && t.key !== peer.publicKey && !t.others.includes(peer.publicKey)) {
      save(trustName(r), { key: t.key, others: [...t.others, peer.publicKey] });
    }
  }
  if (JSON.stringify([trust(r), r.peerWithoutKey]) !== before) keysChanged(r);
}

const roomKeys = new Map();
function roomKey(r, peerKey) {
  const name = `${r.roomId} ${peerKey}`;
  if (!roomKeys.has(name)) roomKeys.set(name, e2e.roomKey(myKeys, peerKey, r.roomId));
  return roomKeys.get(name);
}

/** Open an envelope of `from` with the room key of `peerKey`: bound to my key if `from`
 * is one of my public ids, else to the peer's key. */
async function openWith(r, peerKey, from, envelope) {
  const sender = isMine(from) ? me.publicKey : peerKey;
  return e2e.open(await roomKey(r, peerKey), r.roomId, sender, envelope);
}

/** What a kept or live message shows: its text (sealed or in clear), or why it cannot.
 * Only the room's own key opens a message for reading. */
async function decrypt(r, message) {
  if (!e2e.looksSealed(message.message)) return { kind: "clear", text: message.message };
  if (!e2e.isEnvelope(message.message)) return { kind: "failed" };
  const t = trust(r);
  if (!myKeys || !t) return { kind: "locked" };
  try {
    return { kind: "sealed", text: await openWith(r, t.key, message.from.publicId, message.message) };
  } catch {
    // Sealed with a key this room never agreed to? It says so, and shows nothing of it.
    for (const other of t.others) {
      try {
        await openWith(r, other, message.from.publicId, message.message);
        return { kind: "foreign" };
      } catch {
        // the next one, if any
      }
    }
    return { kind: "failed" };
  }
}

/** Keys learnt or changed, or my ids: read again what could not be read, show the
 * room's state, and send what waits in its outbox (if the room may still be sent to). */
async function keysChanged(r) {
  for (const message of r.messages.values()) {
    const view = r.views.get(message.id);
    if (view?.kind !== "locked" && view?.kind !== "failed") continue;
    const opened = await decrypt(r, message);
    // (Unless the history replaced it meanwhile.)
    if (r.messages.get(message.id) === message) r.views.set(message.id, opened);
  }
  if (r.roomId === openId) {
    showComposer(r);
    showE2E(r);
    renderMessages(r);
  }
  renderList();
  flush(r);
}

// --- The outbox: what was written before the room could be sent to, per room ------------

const outboxName = (r) => `outbox:${r.roomId}`;
const outbox = (r) => load(outboxName(r)) ?? [];
function saveOutbox(r, items) {
  save(outboxName(r), items.length ? items : null);
}

/** 128 random bits, base64url: a message's id on the server. */
const newMessageId = () => e2e.toBase64url(crypto.getRandomValues(new Uint8Array(16)));

/** Post `message` under `id`. A 409 `id_conflict` says an earlier attempt under this id
 * got there (an answer lost on the way back): sent. */
async function sendOnce(r, message, id) {
  try {
    await api(`/rooms/${r.roomId}/message`, { privateId: me.privateId, message, id });
  } catch (error) {
    if (error.code !== "id_conflict") throw error;
  }
}

function enqueue(r, text) {
  const id = newMessageId();
  saveOutbox(r, [...outbox(r), { id, text, queuedAt: new Date().toISOString() }]);
}

/** Send the outbox in order, sealed, once the room is encrypted and its channel joined;
 * or in clear, in a room that is not encrypted, the items of `clear` alone: the ids of
 * the ones the person saw when they said so. That consent is for this attempt only: a
 * retry after a failure never sends in clear. */
async function flush(r, { clear = null } = {}) {
  const state = encryption(r);
  const allowed = state === "encrypted" || (clear?.size > 0 && state === "plaintext");
  if (!allowed || r.flushing || !r.subscribed || r.closed || outbox(r).length === 0) return;
  const sendable = (item) => state === "encrypted" || clear.has(item.id);
  const nextItem = () => outbox(r).find(sendable);
  r.flushing = true;
  clearTimeout(r.retry);
  let current = null;
  try {
    // One send at a time for the identity, across its rooms and tabs: the server knows a
    // retry of the identity's last message only.
    await exclusively(`${storageKey}:send`, async () => {
      // What a tab sent before the lock passed here: this tab's localStorage may not
      // have that tab's write yet, IndexedDB has.
      const sent = await sentFrom(r);
      saveOutbox(r, outbox(r).filter((item) => !sent.includes(item.id)));
      // Each one only while the room is still as it was (not compromised since).
      for (let next = nextItem(); next && encryption(r) === state; next = nextItem()) {
        current = next;
        if (r.roomId === openId) renderMessages(r);
        // Sealed once, and kept so: a retry sends the same envelope under the same id,
        // which the server keeps once (items queued by an older page have shorter ids,
        // and go without).
        let message = next.text;
        if (state === "encrypted") {
          message = next.sealed ?? (await sealFor(r, next.text));
          saveOutbox(r, outbox(r).map((item) => (item.id === next.id ? { ...item, sealed: message } : item)));
        }
        const id = next.id.length >= 22 ? next.id : undefined;
        await sendOnce(r, message, id);
        sent.push(next.id);
        await keepSent(r, sent);
        saveOutbox(r, outbox(r).filter((item) => item.id !== next.id));
      }
    });
  } catch (error) {
    if (error.code === "room_closed") {
      saveOutbox(r, []);
      closeRoom(r);
    } else if (error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429) {
      // Never sendable (too long, empty, refused): it leaves the outbox, and the person
      // hears why.
      saveOutbox(r, outbox(r).filter((item) => item.id !== current?.id));
    } else {
      // Only what goes sealed is retried by itself; what was to go in clear waits for
      // the person to say so again.
      r.retry = setTimeout(() => flush(r), error.code === "rate_limited" ? 15_000 : 5_000);
    }
    if (r.roomId === openId) showError(sendError(error));
  } finally {
    r.flushing = false;
    if (r.roomId === openId) {
      renderMessages(r);
      showE2E(r);
    }
  }
}

// The ids of the outbox items last sent from a room, kept in IndexedDB, whose commits
// every tab sees at once; at most SENT_KEPT (more than an outbox holds between two
// tabs' turns). Without IndexedDB, an empty record: one tab then sends alone.
const SENT_KEPT = 200;
const sentName = (r) => `${storageKey}:sent:${r.roomId}`;
async function sentFrom(r) {
  return (await e2e.loadKept(sentName(r))) ?? [];
}
async function keepSent(r, sent) {
  await e2e.keep(sentName(r), sent.slice(-SENT_KEPT)).catch(() => {});
}

/** `text` sealed to the room's key, bound to my public key. */
async function sealFor(r, text) {
  return e2e.seal(await roomKey(r, trust(r).key), r.roomId, me.publicKey, text);
}

// Another tab of this identity sent from an outbox, learnt a key, or rotated the public id.
addEventListener("storage", (event) => {
  if (!event.key?.startsWith(`${storageKey}:`)) return;
  const name = event.key.slice(storageKey.length + 1);
  if (name === "me") {
    // Started over in another tab: this one follows (to the new identity, once made).
    if (event.newValue === null) {
      location.reload();
      return;
    }
    // (Possibly read already, for a message under the new id.)
    syncMe();
    showIdentity();
    for (const r of rooms.values()) keysChanged(r);
    return;
  }
  const r = rooms.get(openId);
  if (!r) return;
  if (name === outboxName(r)) renderMessages(r);
  if (name === trustName(r)) keysChanged(r);
});

function sendError(error) {
  return error.code === "realtime_unavailable"
    ? "The message could not be delivered right now. Try again in a moment."
    : error.message;
}

const readKey = (r) => `read:${r.roomId}`;

/** Messages from the peer after the last one read in this browser. */
function unread(r) {
  if (r.roomId === openId) return 0;
  const read = load(readKey(r)) ?? "";
  let count = 0;
  for (const m of r.messages.values()) if (!isMine(m.from.publicId) && m.sentAt > read) count += 1;
  return count;
}

function markRead(r) {
  let newest = load(readKey(r)) ?? "";
  for (const m of r.messages.values()) if (m.sentAt > newest) newest = m.sentAt;
  save(readKey(r), newest);
}

function peerName(r) {
  return r.peer.username ?? r.peer.publicId;
}

function activity(r) {
  let newest = r.lastMessageAt ?? "";
  for (const m of r.messages.values()) if (m.sentAt > newest) newest = m.sentAt;
  return newest;
}

function renderList() {
  const list = [...rooms.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
  $("no-rooms").hidden = list.length > 0;
  $("rooms").replaceChildren(...list.map((r) => {
    const item = document.createElement("li");
    item.className = `room${r.roomId === openId ? " open" : ""}`;
    Object.assign(item.dataset, { roomId: r.roomId, joined: String(r.joined), closed: String(r.closed) });
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = peerName(r);
    if (r.joined) {
      const state = encryption(r);
      item.dataset.encryption = state;
      const lock = document.createElement("span");
      lock.className = "lock";
      lock.textContent = { encrypted: "🔒", waiting: "⏳", compromised: "⚠", plaintext: "not encrypted", unavailable: "⚠" }[state];
      lock.title = {
        encrypted: "end-to-end encrypted",
        waiting: `waiting for ${peerName(r)} to join`,
        compromised: `${peerName(r)}'s key changed: nothing is sent`,
        plaintext: "not encrypted",
        unavailable: "your key is missing",
      }[state];
      who.prepend(lock);
    }
    if (r.peer.username) {
      const id = document.createElement("small");
      id.textContent = r.peer.publicId;
      who.append(id);
    }
    const badge = document.createElement("span");
    badge.className = "unread";
    const count = unread(r);
    badge.textContent = String(count);
    badge.hidden = count === 0;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = r.closed ? "closed" : r.joined ? (r.peerOnline ? "online" : "") : "wants to talk";
    item.append(who, badge, state);
    if (!r.joined && !r.closed) {
      const join = document.createElement("button");
      join.type = "button";
      join.className = "join";
      join.textContent = "Join";
      join.addEventListener("click", (event) => {
        event.stopPropagation();
        connectTo(r.peer.publicId);
      });
      item.append(join);
    }
    item.addEventListener("click", () => (r.joined ? open(r.roomId) : connectTo(r.peer.publicId)));
    return item;
  }));
}

// One room list at a time; a call during one gets the list asked for after it.
let listing = null;
let relisting = null;
function refreshRooms() {
  if (!listing) {
    listing = listRooms().finally(() => (listing = null));
    return listing;
  }
  relisting ??= listing.catch(() => {}).then(() => {
    relisting = null;
    return refreshRooms();
  });
  return relisting;
}

/** A realtime event says the list changed (a room offered, a peer joined): ask for it
 * again, once for any number of hints that come close together, and, while the list
 * does not show it yet (`shown`), a few times more, further apart: the list trails the
 * writes by the projection's delay (on AWS, the table stream's). What the event says only tells when to
 * stop asking: anyone who holds the realtime app could have sent it. */
const awaited = new Set();
let hinted = null;
let hintedAgain = false;
function hint(shown = () => true) {
  awaited.add(shown);
  if (hinted) {
    hintedAgain = true;
    return;
  }
  let delay = 200;
  const ask = () => {
    hinted = setTimeout(async () => {
      const round = [...awaited];
      hintedAgain = false;
      await refreshRooms().catch(() => {});
      for (const done of round) if (done()) awaited.delete(done);
      if (hintedAgain) {
        // A hint came while the list was on its way: it gets a list asked for after it.
        delay = 200;
        ask();
      } else if (awaited.size && delay < 3200) {
        delay *= 2;
        ask();
      } else {
        awaited.clear();
        hinted = null;
      }
    }, delay);
  };
  ask();
}

async function listRooms() {
  const list = await api("/users/rooms", { privateId: me.privateId });
  for (const entry of list.rooms) {
    const r = room(entry);
    listen(r);
    // The one place where a peer's key (or their lack of one) is learnt.
    learnPeer(r, entry.peer);
  }
  if (inboxChannel !== list.inboxChannel) {
    if (inboxChannel) realtime.unsubscribe(inboxChannel);
    inboxChannel = list.inboxChannel;
    realtime.subscribe(inboxChannel, {
      // Each (re)subscription: what was announced while away is in the list.
      subscribed: () => refreshRooms().catch(() => {}),
      // Someone opened a room with this public id (or connected back to us): the list
      // has it, or soon will.
      room: (data) => hint(() => typeof data?.roomId !== "string" || rooms.has(data.roomId)),
    });
  }
  renderList();
  // How many lists the page has applied: a barrier for tests ("the page has taken in
  // every list it asked for"), never a state the page reads.
  document.body.dataset.lists = String(Number(document.body.dataset.lists ?? 0) + 1);
}

/** Subscribe to a joined room's channel: live messages, typing, presence; and, each
 * time the subscription succeeds (again after a reconnect), what was missed. */
function listen(r) {
  if (!r.joined || r.closed || r.listening) return;
  r.listening = true;
  realtime.subscribe(
    r.channel,
    {
      // Anyone who holds the realtime app could forge one: only a well-formed message
      // from one of this room's two members is shown, and the history has the last word.
      message: (message) => {
        if (!wellFormed(message)) return;
        if (fromMember(r, message)) add(r, message, { live: true });
        // From an id this page does not know: the peer may have a new public id. The
        // room list says so if they do, and the history has the message if it is real.
        else catchUp(r);
      },
      // The peer joined (connected back; this page's own connects are announced here
      // too): the list says with which key, if any, once it names them.
      room: (data) => hint(() => isMine(data?.from?.publicId) || r.peer.username != null),
      "client-typing": () => !r.closed && typing(r),
      "client-here": (data) => !r.closed && here(r, data),
      subscribed: async () => {
        r.subscribed = true;
        if (r.roomId === openId) say(r, { hello: true });
        if (r.roomId === openId) showComposer(r);
        // A peer who joined between the last room list and this subscription was
        // announced to nobody here: the list has their key.
        if (encryption(r) === "waiting") await refreshRooms().catch(() => {});
        await fetchHistory(r);
        flush(r);
      },
    },
    (error) => r.roomId === openId && showError(`Could not join the room's channel: ${error.message}`),
  );
}

/** The room's history, newest first: the newest page at once, and, on a later visit,
 * back to what this page already read (what came while it was away), never the whole
 * room; older pages wait for "Load older messages" (`r.older`, their cursor). */
async function fetchHistory(r) {
  const first = r.older === undefined;
  let before = "";
  try {
    for (;;) {
      const page = await api(`/rooms/${r.roomId}/messages`, { privateId: me.privateId, before, limit: 100 });
      let known = false;
      for (const message of page.messages) {
        if (r.kept.get(message.id) === true) known = true;
        await add(r, message, { quiet: true });
      }
      if (first) r.older = page.next;
      if (first || known || !page.next) break;
      before = page.next;
    }
  } catch (error) {
    if (error.code !== "room_not_found") throw error;
  }
  if (r.roomId === openId) {
    renderMessages(r);
    markRead(r);
  }
  renderList();
}

/** A realtime `message` event with fields of the right types. */
function wellFormed(message) {
  return typeof message?.id === "string" && typeof message.sentAt === "string"
    && typeof message.message === "string" && typeof message.from?.publicId === "string";
}

/** From me or from the room's peer. */
const fromMember = (r, message) => message.from.publicId === r.peer.publicId || isMine(message.from.publicId);

/** The room list, then the room's history, again (once for any number of calls close
 * together). */
function catchUp(r) {
  r.catchingUp ??= setTimeout(async () => {
    try {
      await refreshRooms();
      await fetchHistory(r);
    } catch {
      // the next event, or the next subscription, tries again
    } finally {
      r.catchingUp = null;
    }
  }, 200);
}

const sameMessage = (a, b) => a.message === b.message && a.sentAt === b.sentAt && a.from.publicId === b.from.publicId;

/** Show a message, from the history or (`live`) from the room's channel. An id is shown
 * once; but what the history says replaces a live event that differs: a forged event
 * with a real message's id does not hide it. */
async function add(r, message, { quiet = false, live = false } = {}) {
  const seen = r.kept.get(message.id);
  if (seen !== undefined) {
    const known = r.messages.get(message.id);
    if (seen || live || (known && sameMessage(known, message))) {
      if (!live) r.kept.set(message.id, true);
      return;
    }
  }
  r.kept.set(message.id, !live);
  let view = await decrypt(r, message);
  // A key learnt while this one was being opened.
  if (view.kind === "locked" && trust(r)?.key) view = await decrypt(r, message);
  // The history's version came while this live one was being opened: it stays.
  if (live && r.kept.get(message.id)) return;
  r.views.set(message.id, view);
  r.messages.set(message.id, message);
  const theirs = !isMine(message.from.publicId);
  if (message.from.publicId === r.peer.publicId) hideTyping(r);
  // The peer writes, so they joined: the room list says with which key, if any, and
  // their name (never taken from a message).
  if (theirs && (encryption(r) === "waiting" || !r.peer.username)) hint();
  if (quiet) return;
  if (r.roomId === openId) {
    renderMessages(r);
    markRead(r);
  }
  renderList();
}

const UNREADABLE = {
  failed: "This message could not be decrypted: it was altered or not meant for this room.",
  locked: "An encrypted message this browser cannot read: it has no key for it.",
  foreign: "Not shown: this message was sealed with a key this room never agreed to.",
};

function bubble(mine, authorName, { sentAt, status } = {}) {
  const item = document.createElement("li");
  item.className = `message ${mine ? "mine" : "theirs"}`;
  const meta = document.createElement("div");
  meta.className = "meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = mine ? "You" : authorName;
  meta.append(author);
  if (sentAt) {
    const time = document.createElement("time");
    time.dateTime = sentAt;
    time.textContent = new Date(sentAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    meta.append(time);
  }
  if (status) {
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.textContent = status;
    meta.append(mark);
  }
  item.append(meta);
  return item;
}

function messageItem(r, message, state) {
  const view = r.views.get(message.id) ?? { kind: "clear", text: message.message };
  // In a room that is (or is to be) encrypted, a message in clear is marked as such.
  const clearHere = view.kind === "clear" && state !== "plaintext";
  // The peer's name is the room list's, never what a message says.
  const item = bubble(isMine(message.from.publicId), peerName(r), {
    sentAt: message.sentAt,
    status: clearHere ? "not encrypted" : undefined,
  });
  item.dataset.id = message.id;
  item.dataset.e2e = view.kind;
  const body = document.createElement("div");
  if (view.kind === "sealed" || view.kind === "clear") {
    body.className = "text";
    body.textContent = view.text;
  } else {
    item.classList.add("unreadable");
    body.className = "notice";
    body.textContent = UNREADABLE[view.kind] ?? UNREADABLE.failed;
  }
  if (clearHere) item.classList.add("clear");
  item.append(body);
  return item;
}

/** A message in the outbox: not sent yet. */
function pendingItem(r, entry, state, first) {
  const status = {
    waiting: `waiting for ${peerName(r)} to join`,
    encrypted: first && r.flushing ? "sending…" : "queued",
    compromised: "not sent",
    plaintext: "not sent",
    unavailable: "not sent",
  }[state];
  const item = bubble(true, "", { status });
  item.classList.add("pending");
  item.dataset.pending = entry.id;
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = entry.text;
  item.append(text);
  return item;
}

/** The page of the open room's history before the oldest one shown. */
async function loadOlder() {
  const r = rooms.get(openId);
  if (!r?.older) return;
  $("older").disabled = true;
  try {
    const page = await api(`/rooms/${r.roomId}/messages`, { privateId: me.privateId, before: r.older, limit: 100 });
    for (const message of page.messages) await add(r, message, { quiet: true });
    r.older = page.next;
  } catch (error) {
    showError(`Could not load older messages: ${error.message}`);
  } finally {
    $("older").disabled = false;
  }
  if (r.roomId === openId) renderMessages(r, { keepScroll: true });
}

$("older").addEventListener("click", loadOlder);

function renderMessages(r, { keepScroll = false } = {}) {
  const state = encryption(r);
  const ordered = [...r.messages.values()].sort((a, b) => a.sentAt.localeCompare(b.sentAt) || a.id.localeCompare(b.id));
  const waiting = r.closed ? [] : outbox(r);
  $("messages").replaceChildren(
    ...ordered.map((message) => messageItem(r, message, state)),
    ...waiting.map((entry, index) => pendingItem(r, entry, state, index === 0)),
  );
  $("older").hidden = !r.older;
  if (!keepScroll) $("messages").lastElementChild?.scrollIntoView({ block: "end" });
  showOutbox(r);
}

const count = (n) => (n === 1 ? "1 message" : `${n} messages`);

function showOutbox(r) {
  const n = r.closed ? 0 : outbox(r).length;
  const state = encryption(r);
  const name = peerName(r);
  $("outbox-note").hidden = n === 0;
  $("outbox-note").dataset.state = state;
  $("outbox-text").textContent = {
    waiting: `${count(n)} will be sent encrypted when ${name} joins.`,
    encrypted: `Sending ${count(n)}, encrypted…`,
    compromised: `${count(n)} will not be sent: ${name}'s encryption key changed.`,
    plaintext: `${name} joined without encryption: ${count(n)} ${n === 1 ? "was" : "were"} not sent. `
      + "Sent unencrypted, the server can read them.",
    unavailable: `${count(n)} cannot be sent: this browser lost your encryption key.`,
  }[state];
  $("outbox-actions").hidden = state !== "plaintext" && state !== "compromised";
  // In clear only to a peer who has no key; never in a compromised room.
  $("outbox-clear").hidden = state !== "plaintext";
}

/** Show the safety code of my key and `peerKey` in `element` (once it is computed, if
 * the element still stands for that pair). */
function showCode(element, peerKey) {
  const pair = peerKey ? `${me.publicKey} ${peerKey}` : "";
  if (element.dataset.pair === pair) return;
  element.dataset.pair = pair;
  element.textContent = "";
  if (!peerKey) return;
  e2e.safetyCode(me.publicKey, peerKey).then((digits) => {
    if (element.dataset.pair === pair) element.textContent = digits;
  });
}

/** The room's encryption: the label, the safety code, any warning. */
function showE2E(r) {
  const state = encryption(r);
  const t = trust(r);
  const name = peerName(r);
  $("chat").dataset.encryption = state;
  $("chat").dataset.keyChanged = String(state === "compromised");
  // A name learnt since the room was opened.
  $("peer-name").textContent = r.peer.username ?? "";
  $("e2e").dataset.state = state;
  $("e2e-label").textContent = {
    encrypted: "🔒 End-to-end encrypted · safety code",
    waiting: `⏳ Waiting for ${name} to join: messages will be sent encrypted when ${name} joins`,
    compromised: `⚠ Not safe: ${name}'s encryption key changed. Nothing more can be sent here`,
    plaintext: myKeys
      ? `Not encrypted: ${name} joined without an encryption key`
      : "Not encrypted: your identity has no encryption key",
    unavailable: "⚠ Not readable here: this browser lost your encryption key",
  }[state];
  $("e2e-help").textContent = {
    encrypted: `Only you and ${name} can read this room: the server relays and keeps sealed `
      + `envelopes. Compare this safety code with ${name} another way (in person, on a call): `
      + "the same code on both screens means nobody is in between. "
      + `Up to ${e2e.PLAINTEXT_CAPACITY} bytes of text fit in one message.`,
    waiting: `${name} has not joined yet, so their key is not known. What you write waits in `
      + `this browser (it survives a reload) and is sent encrypted as soon as ${name} joins. `
      + `Up to ${e2e.PLAINTEXT_CAPACITY} bytes of text fit in one message.`,
    compromised: `A person's key never changes in a room, so a new one means someone may be `
      + `in between, or the server is broken. What was sealed with the key this room agreed `
      + `on is still shown; nothing sealed with another key is. To talk to ${name} safely, `
      + "meet another way and start over with new identities.",
    plaintext: `The server can read what is written here. Up to ${MAX_BYTES} bytes fit in one message.`,
    unavailable: "Start over with a new identity (at the bottom of the page) to chat again.",
  }[state];
  // The code of the key this room agreed on, whatever was reported since.
  const agreed = state === "encrypted" || state === "compromised" ? t.key : null;
  $("safety").hidden = !agreed;
  showCode($("safety-code"), agreed);
  // The last key reported since, if any.
  const changed = state === "compromised" ? t.others[t.others.length - 1] : null;
  showCode($("key-warning-old"), changed ? t.key : null);
  showCode($("key-warning-new"), changed);
  let warning = "";
  if (changed) {
    warning = `⚠ ${name}'s encryption key changed. A key never changes in a room: someone may `
      + "be trying to read it, or the server is broken. Nothing more is sent here, and messages "
      + "sealed with the new key are not shown.";
  } else if (state === "encrypted" && r.peerWithoutKey) {
    warning = `⚠ The server now says ${name} has no encryption key. This room stays encrypted to the key you had: nothing is sent in clear.`;
  }
  $("key-warning").hidden = !warning;
  $("key-warning-text").textContent = warning;
  $("key-warning-codes").hidden = !changed;
  if (changed) $("e2e").open = true;
  $("message").placeholder = {
    waiting: `Write a message (sent encrypted when ${name} joins)`,
    compromised: "Nothing can be sent in this room",
  }[state] ?? "Write a message";
  showOutbox(r);
  updateCounter();
}

function showComposer(r) {
  // A compromised room takes nothing more, for good.
  const shut = r.closed || compromised(r);
  $("chat").dataset.joined = String(r.subscribed);
  $("send").disabled = !r.subscribed || shut;
  $("message").disabled = shut;
  $("block").disabled = r.closed;
  $("closed-note").hidden = !r.closed;
}

function open(roomId) {
  const r = rooms.get(roomId);
  if (!r) return;
  openId = roomId;
  save("open", roomId);
  $("chat").hidden = false;
  // A peer known by id only is named once.
  $("peer-name").textContent = r.peer.username ?? "";
  $("peer-label").textContent = r.peer.publicId;
  hideTyping(r);
  showPresence(r);
  showComposer(r);
  showE2E(r);
  renderMessages(r);
  markRead(r);
  renderList();
  say(r, { hello: true });
  if (!r.closed) $("message").focus();
}

/** A closed room: no more posts, and its channel's events no longer matter. */
function closeRoom(r) {
  r.closed = true;
  // Nothing can be posted to it any more.
  saveOutbox(r, []);
  r.peerOnline = false;
  hideTyping(r);
  if (r.listening) realtime.unsubscribe(r.channel);
  r.listening = false;
  r.subscribed = false;
  if (r.roomId === openId) {
    showComposer(r);
    showPresence(r);
  }
  renderList();
}

// --- Typing and presence (client events on the room's channel) -----------------------

function say(r, data) {
  if (r.subscribed && !r.closed) realtime.trigger(r.channel, "client-here", data);
}

function here(r, data) {
  r.peerSeenAt = Date.now();
  r.peerOnline = true;
  // A peer that just arrived says hello; it hears back at once.
  if (data?.hello) say(r, { hello: false });
  if (r.roomId === openId) showPresence(r);
  renderList();
}

function showPresence(r) {
  $("presence").dataset.online = String(Boolean(r.peerOnline));
  $("presence").textContent = r.peerOnline ? "online" : "";
}

// Presence is said in the open room only, so that a person in many rooms stays well
// under the realtime server's 10 client events a second.
setInterval(() => {
  const current = rooms.get(openId);
  if (current?.joined) say(current, { hello: false });
  for (const r of rooms.values()) {
    if (r.peerOnline && Date.now() - r.peerSeenAt > AWAY) {
      r.peerOnline = false;
      if (r.roomId === openId) showPresence(r);
    }
  }
  renderList();
}, HEARTBEAT);

function typing(r) {
  r.peerOnline = true;
  r.peerSeenAt = Date.now();
  clearTimeout(r.typingTimer);
  r.typingTimer = setTimeout(() => hideTyping(r), TYPING_SHOWN);
  if (r.roomId === openId) {
    $("typing-name").textContent = peerName(r);
    $("typing").hidden = false;
  }
}

function hideTyping(r) {
  clearTimeout(r.typingTimer);
  if (r.roomId === openId) $("typing").hidden = true;
}

let typedAt = 0;
function iAmTyping() {
  const r = rooms.get(openId);
  if (!$("message").value || !r?.subscribed || r.closed || Date.now() - typedAt < TYPING_EVERY) return;
  typedAt = Date.now();
  realtime.trigger(r.channel, "client-typing", {});
}

// --- Actions ---------------------------------------------------------------------------

async function connectTo(peer) {
  showError("");
  if (!PUBLIC_ID.test(peer)) {
    showError("A public id is six digits written 123-456 (or nine: 123-456-789).");
    return;
  }
  if (peer === me.publicId) {
    showError("That is your own public id: ask the other person for theirs.");
    return;
  }
  $("connect").disabled = true;
  try {
    const joined = await api(`/users/${peer}/connect`, { privateId: me.privateId });
    // The answer says nothing of the peer (a name learnt before stays): the room list
    // and the room's channel do.
    const r = room({ ...joined, peer: { publicId: peer, username: null }, joined: true, closed: false });
    listen(r);
    open(r.roomId);
    // The peer may have connected to this id before (an offer this page has not seen):
    // then the list has their key.
    if (encryption(r) === "waiting") refreshRooms().catch(() => {});
  } catch (error) {
    showError(error.code === "unknown_private_id"
      ? "This server does not know your identity any more. Use “Start over” below."
      : error.message);
  } finally {
    $("connect").disabled = false;
  }
}

$("peer-id").addEventListener("input", (event) => {
  // Typing six digits inserts the dash.
  const digits = event.target.value.replace(/\D/g, "").slice(0, 9);
  const groups = digits.match(/.{1,3}/g) ?? [];
  event.target.value = groups.join("-");
});

$("connect-form").addEventListener("submit", (event) => {
  event.preventDefault();
  connectTo($("peer-id").value.trim());
});

/** UTF-8 bytes a message may have in this room: in an encrypted one, what fits in an
 * envelope of MAX_BYTES. */
function limit(r) {
  return r && encryption(r) !== "plaintext" ? e2e.PLAINTEXT_CAPACITY : MAX_BYTES;
}

function updateCounter() {
  const bytes = encoder.encode($("message").value).length;
  const most = limit(rooms.get(openId));
  $("counter").textContent = `${bytes} / ${most}`;
  $("counter").title = most === MAX_BYTES
    ? `At most ${MAX_BYTES} bytes of text per message`
    : `At most ${most} bytes of text per message: encrypted, they take the ${MAX_BYTES} bytes a message may have`;
  $("counter").classList.toggle("over", bytes > most);
  return bytes;
}

$("message").addEventListener("input", () => {
  updateCounter();
  iAmTyping();
});
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const r = rooms.get(openId);
  const text = $("message").value;
  if (!r || !text.trim()) return;
  if (!r.subscribed) {
    showError("Still joining the room; try again in a moment.");
    return;
  }
  const state = encryption(r);
  const bytes = updateCounter();
  if (bytes > limit(r)) {
    showError(state === "plaintext"
      ? `The message is ${bytes} bytes; the limit is ${MAX_BYTES}. Shorten it a little.`
      : `The message is ${bytes} bytes; encrypted, the limit is ${limit(r)} bytes of text. Shorten it a little.`);
    return;
  }
  if (state === "unavailable") {
    showError("This browser lost your encryption key: this room can be neither read nor written here.");
    return;
  }
  if (state === "compromised") {
    showError(`${peerName(r)}'s encryption key changed: nothing more can be sent in this room.`);
    return;
  }
  showError("");
  const sent = () => {
    $("message").value = "";
    updateCounter();
    // The next keystroke is news again.
    typedAt = 0;
  };
  // Before the peer's key is known, or behind messages still waiting: the outbox, so
  // that everything goes out encrypted and in order. And to a peer without a key while
  // this identity has one (the room may have turned so while this was typed): the
  // outbox too, where it goes in clear only when the person says so for it.
  const clearNeedsSay = state === "plaintext" && myKeys;
  if (state === "waiting" || clearNeedsSay || (state === "encrypted" && (r.flushing || outbox(r).length > 0))) {
    enqueue(r, text);
    sent();
    renderMessages(r);
    flush(r);
    return;
  }
  $("send").disabled = true;
  try {
    // In clear only from an identity without a key (every room of it is in clear).
    if (state !== "encrypted" && me.publicKey) throw new Error("Not sent: this room is not encrypted.");
    // Sending the same text again after a failure is a retry: the same id and envelope.
    if (r.sending?.text !== text || r.sending.state !== state) {
      const message = state === "encrypted" ? await sealFor(r, text) : text;
      r.sending = { text, state, message, id: newMessageId() };
    }
    const { message, id } = r.sending;
    await exclusively(`${storageKey}:send`, () => sendOnce(r, message, id));
    r.sending = null;
    sent();
  } catch (error) {
    if (error.code === "room_closed") closeRoom(r);
    showError(sendError(error));
  } finally {
    showComposer(r);
    if (!r.closed) $("message").focus();
  }
});

$("block").addEventListener("click", async () => {
  const r = rooms.get(openId);
  if (!r || !confirm(`Block ${peerName(r)}? The room closes for good, for both of you.`)) return;
  try {
    await api(`/rooms/${r.roomId}/block`, { privateId: me.privateId });
    closeRoom(r);
  } catch (error) {
    showError(error.message);
  }
});

$("rotate").addEventListener("click", async () => {
  if (!confirm("Get a new public id? Your current one stops working for good: nobody can reach you with it any more. Your rooms stay.")) return;
  try {
    const { publicId } = await api("/users/rotate", { privateId: me.privateId });
    // Another tab may have rotated it before: its id is a past one too.
    syncMe();
    // Messages sent under the old id stay mine.
    me.pastIds = [...(me.pastIds ?? []), me.publicId];
    me.publicId = publicId;
    await saveMe(me);
    showIdentity();
    await refreshRooms();
  } catch (error) {
    showError(error.message);
  }
});

$("copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(me.publicId);
    $("copy").textContent = "Copied";
  } catch {
    getSelection().selectAllChildren($("my-public-id"));
    $("copy").textContent = "Press Ctrl+C";
  }
  setTimeout(() => ($("copy").textContent = "Copy"), 2000);
});

$("reset").addEventListener("click", async () => {
  if (!confirm("Forget this identity and create a new one? Your peers will need your new public id.")) return;
  // Under the lock identities are made under, the copy in IndexedDB first: a tab that
  // looks for the identity meanwhile waits, then finds neither copy to bring back.
  await exclusively(`${storageKey}:identity`, async () => {
    await e2e.forget(identityName);
    await e2e.deleteKeyPair(storageKey);
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith(`${storageKey}:`)) localStorage.removeItem(key);
    }
  });
  location.reload();
});

// The peer joined without a key: what waited to be sent encrypted goes only if the
// person says so.
// Only the messages shown when the person clicked: not one written (in another tab)
// since.
$("outbox-clear").addEventListener("click", () => {
  const r = rooms.get(openId);
  if (!r || encryption(r) !== "plaintext") return;
  const shown = new Set([...$("messages").querySelectorAll(".pending[data-pending]")].map((item) => item.dataset.pending));
  flush(r, { clear: shown });
});

$("outbox-discard").addEventListener("click", () => {
  const r = rooms.get(openId);
  if (!r) return;
  saveOutbox(r, []);
  renderMessages(r);
});

// --- Start -----------------------------------------------------------------------------

try {
  await refreshRooms();
  const previous = load("open");
  if (previous && rooms.get(previous)?.joined) open(previous);
} catch (error) {
  showError(error.code === "unknown_private_id"
    ? "This server does not know your identity any more. Use “Start over” below."
    : error.message);
}
