// The chat page: one identity per browser (localStorage), one room at a time.
// Configuration comes from the query string (?api=…&key=…&cluster=…&wsHost=…&wsPort=…)
// or from config.json next to this page (the local server serves one).
import { Realtime } from "./realtime.js";

const $ = (id) => document.getElementById(id);
const MAX_BYTES = 4096;
const PUBLIC_ID = /^\d{3}-\d{3}(-\d{3})?$/;
const encoder = new TextEncoder();

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
$("my-name").textContent = me.username;
$("my-public-id").textContent = me.publicId;

const realtime = new Realtime({
  ...config.pusher,
  onStatus: setStatus,
  authorize: async (socketId, channel) => {
    const { auth } = await api("/pusher/auth", { socket_id: socketId, channel_name: channel, privateId: me.privateId });
    return auth;
  },
});
realtime.connect();

let room = null;
const seen = new Set();

// The server keeps no messages: this browser keeps the last ones of each room.
const HISTORY = 200;

function remember(message) {
  const key = `history:${room.roomId}`;
  save(key, [...(load(key) ?? []), message].slice(-HISTORY));
}

function render(message, { fromHistory = false } = {}) {
  if (seen.has(message.id)) return;
  seen.add(message.id);
  if (!fromHistory) remember(message);
  const mine = message.from.publicId === me.publicId;
  const item = document.createElement("li");
  item.className = `message ${mine ? "mine" : "theirs"}`;
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
  $("messages").append(item);
  item.scrollIntoView({ block: "end" });
}

function enter(peer, joined) {
  if (room) realtime.unsubscribe(room.channel);
  room = { peer, ...joined };
  save("room", room);
  seen.clear();
  $("messages").replaceChildren();
  $("peer-label").textContent = peer;
  $("chat").hidden = false;
  // Until the channel subscription succeeds, a message sent would not come back here.
  $("chat").dataset.joined = "false";
  $("send").disabled = true;
  for (const message of load(`history:${room.roomId}`) ?? []) render(message, { fromHistory: true });
  realtime.subscribe(
    room.channel,
    {
      message: (message) => render(message),
      subscribed: () => {
        $("chat").dataset.joined = "true";
        $("send").disabled = false;
      },
    },
    (error) => showError(`Could not join the room's channel: ${error.message}`),
  );
  $("message").focus();
}

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
    enter(peer, await api(`/users/${peer}/connect`, { privateId: me.privateId }));
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
  const digits = event.target.value.replace(/\D/g, "").slice(0, 6);
  event.target.value = digits.length > 3 ? `${digits.slice(0, 3)}-${digits.slice(3)}` : digits;
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

$("message").addEventListener("input", updateCounter);
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (!room || !text.trim()) return;
  if ($("chat").dataset.joined !== "true") {
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
    await api(`/rooms/${room.roomId}/message`, { privateId: me.privateId, message: text });
    $("message").value = "";
    updateCounter();
  } catch (error) {
    showError(error.code === "realtime_unavailable"
      ? "The message could not be delivered right now. Try again in a moment."
      : error.message);
  } finally {
    $("send").disabled = $("chat").dataset.joined !== "true";
    $("message").focus();
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
  if (!confirm("Forget this identity and create a new one? Your peer will need your new public id.")) return;
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith(`${storageKey}:`)) localStorage.removeItem(key);
  }
  location.reload();
});

const previous = load("room");
if (previous) {
  $("peer-id").value = previous.peer;
  enter(previous.peer, previous);
  // Connect again (idempotent): it is what lets this identity post to the room, and a
  // room saved by an older version of the server may not be recorded as joined.
  api(`/users/${previous.peer}/connect`, { privateId: me.privateId }).catch(() => {});
}
