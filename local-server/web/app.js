// The chat page: one identity per browser (localStorage) and all its rooms: the ones it
// joined and the ones others opened with its public id (the inbox), each with its
// history from the server, unread counts, typing and presence.
// Configuration comes from the query string (?api=…&key=…&cluster=…&wsHost=…&wsPort=…)
// or from config.json next to this page (the local server serves one).
import { Realtime } from "./realtime.js";

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

async function identity() {
  let me = load("me");
  if (!me) {
    me = await api("/users/create", {});
    save("me", me);
  }
  return me;
}

const me = await identity();
function showIdentity() {
  $("my-name").textContent = me.username;
  $("my-public-id").textContent = me.publicId;
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
    r = { messages: new Map(), subscribed: false, peerSeenAt: 0 };
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

const readKey = (r) => `read:${r.roomId}`;

/** Messages from the peer after the last one read in this browser. */
function unread(r) {
  if (r.roomId === openId) return 0;
  const read = load(readKey(r)) ?? "";
  let count = 0;
  for (const m of r.messages.values()) if (m.from.publicId !== me.publicId && m.sentAt > read) count += 1;
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

async function refreshRooms() {
  const list = await api("/users/rooms", { privateId: me.privateId });
  for (const entry of list.rooms) listen(room(entry));
  if (inboxChannel !== list.inboxChannel) {
    if (inboxChannel) realtime.unsubscribe(inboxChannel);
    inboxChannel = list.inboxChannel;
    realtime.subscribe(inboxChannel, {
      // Each (re)subscription: what was announced while away is in the list.
      subscribed: () => refreshRooms().catch(() => {}),
      // Someone opened a room with this public id (or connected back to us).
      room: (offer) => {
        const known = rooms.get(offer.roomId);
        listen(room({ ...offer, peer: offer.from, joined: known?.joined ?? false, closed: known?.closed ?? false }));
        renderList();
      },
    });
  }
  renderList();
}

/** Subscribe to a joined room's channel: live messages, typing, presence; and, each
 * time the subscription succeeds (again after a reconnect), what was missed. */
function listen(r) {
  if (!r.joined || r.closed || r.listening) return;
  r.listening = true;
  realtime.subscribe(
    r.channel,
    {
      message: (message) => add(r, message),
      "client-typing": () => !r.closed && typing(r),
      "client-here": (data) => !r.closed && here(r, data),
      subscribed: async () => {
        r.subscribed = true;
        if (r.roomId === openId) say(r, { hello: true });
        if (r.roomId === openId) showComposer(r);
        await fetchHistory(r);
      },
    },
    (error) => r.roomId === openId && showError(`Could not join the room's channel: ${error.message}`),
  );
}

async function fetchHistory(r) {
  let after = null;
  try {
    do {
      const page = await api(`/rooms/${r.roomId}/messages`, { privateId: me.privateId, after, limit: 100 });
      for (const message of page.messages) add(r, message, { quiet: true });
      after = page.next;
    } while (after);
  } catch (error) {
    if (error.code !== "room_not_found") throw error;
  }
  if (r.roomId === openId) {
    renderMessages(r);
    markRead(r);
  }
  renderList();
}

function add(r, message, { quiet = false } = {}) {
  if (r.messages.has(message.id)) return;
  r.messages.set(message.id, message);
  if (message.from.publicId !== me.publicId && !r.peer.username) r.peer.username = message.from.username;
  if (message.from.publicId === r.peer.publicId) hideTyping(r);
  if (quiet) return;
  if (r.roomId === openId) {
    renderMessages(r);
    markRead(r);
  }
  renderList();
}

function messageItem(message) {
  const mine = message.from.publicId === me.publicId;
  const item = document.createElement("li");
  item.className = `message ${mine ? "mine" : "theirs"}`;
  item.dataset.id = message.id;
  const meta = document.createElement("div");
  meta.className = "meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = mine ? "You" : message.from.username;
  const time = document.createElement("time");
  time.dateTime = message.sentAt;
  time.textContent = new Date(message.sentAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = message.message;
  meta.append(author, time);
  item.append(meta, text);
  return item;
}

function renderMessages(r) {
  const ordered = [...r.messages.values()].sort((a, b) => a.sentAt.localeCompare(b.sentAt) || a.id.localeCompare(b.id));
  $("messages").replaceChildren(...ordered.map(messageItem));
  $("messages").lastElementChild?.scrollIntoView({ block: "end" });
}

function showComposer(r) {
  const ready = r.subscribed && !r.closed;
  $("chat").dataset.joined = String(r.subscribed);
  $("send").disabled = !ready;
  $("message").disabled = r.closed;
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
  renderMessages(r);
  markRead(r);
  renderList();
  say(r, { hello: true });
  if (!r.closed) $("message").focus();
}

/** A closed room: no more posts, and its channel's events no longer matter. */
function closeRoom(r) {
  r.closed = true;
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
    const known = rooms.get(joined.roomId);
    const r = room({ ...joined, peer: { publicId: peer, username: known?.peer.username ?? null }, joined: true, closed: false });
    listen(r);
    open(r.roomId);
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

function updateCounter() {
  const bytes = encoder.encode($("message").value).length;
  $("counter").textContent = `${bytes} / ${MAX_BYTES}`;
  $("counter").classList.toggle("over", bytes > MAX_BYTES);
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
  const bytes = updateCounter();
  if (bytes > MAX_BYTES) {
    showError(`The message is ${bytes} bytes; the limit is ${MAX_BYTES}. Shorten it a little.`);
    return;
  }
  showError("");
  $("send").disabled = true;
  try {
    await api(`/rooms/${r.roomId}/message`, { privateId: me.privateId, message: text });
    $("message").value = "";
    updateCounter();
    // The next keystroke is news again.
    typedAt = 0;
  } catch (error) {
    if (error.code === "room_closed") closeRoom(r);
    showError(error.code === "realtime_unavailable"
      ? "The message could not be delivered right now. Try again in a moment."
      : error.message);
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
    me.publicId = publicId;
    save("me", me);
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

$("reset").addEventListener("click", () => {
  if (!confirm("Forget this identity and create a new one? Your peers will need your new public id.")) return;
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith(`${storageKey}:`)) localStorage.removeItem(key);
  }
  location.reload();
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
