// The chat page: a view on the client library (clients/js, served here under /client/),
// which carries the protocol: the identity, the rooms and the inbox, history, the
// outbox, trust and end-to-end encryption, typing and presence. This file wires the
// library to the page's parts (view/): the identity card, the room list, the open room,
// presence. One identity per browser and configuration, kept in IndexedDB.

import { SecretRooms, indexedDBStorage } from "./client/index.js";
import { Realtime } from "./realtime.js";
import { loadConfig, storageKeyOf } from "./config.js";
import { upgrade } from "./upgrade.js";
import { $, showError, explain, setStatus, localValues } from "./view/dom.js";
import { showIdentity, identityActions } from "./view/identity.js";
import { rooms } from "./view/rooms.js";
import { chat } from "./view/chat.js";
import { presence } from "./view/presence.js";

const config = await loadConfig();
const storageKey = storageKeyOf(config);
const apiBase = config.apiBase || location.origin;
// The client's storage: a database of its own per configuration, where the key pair is
// a non-extractable CryptoKey and every tab sees each commit at once.
const storage = indexedDBStorage(storageKey, "values");
// Tabs of this identity: one that starts over makes the others follow.
const tabs = new BroadcastChannel(`${storageKey}:page`);
tabs.onmessage = (event) => event.data === "reset" && location.reload();

/** Everything this browser keeps of the identity, gone (under the lock identities are
 * made under: a tab that looks for it meanwhile waits, then finds nothing). */
async function forget() {
  page.client?.close();
  const wipe = async () => {
    await new Promise((resolve) => {
      const request = indexedDB.deleteDatabase(storageKey);
      request.onsuccess = request.onerror = request.onblocked = () => resolve();
    });
    for (const name of Object.keys(localStorage)) if (name.startsWith(`${storageKey}:`)) localStorage.removeItem(name);
  };
  await (navigator.locks ? navigator.locks.request(`${storageKey}:identity`, wipe) : wipe());
  tabs.postMessage("reset");
}

/** The Pusher-protocol client the library asks for, signing channels through the API. */
function realtime({ authEndpoint, params }) {
  const client = new Realtime({
    ...config.pusher,
    onStatus: setStatus,
    authorize: async (socketId, channel) => {
      const res = await fetch(authEndpoint, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ socket_id: socketId, channel_name: channel, ...params }),
      });
      const data = await res.json().catch(() => null);
      if (!res.ok || typeof data?.auth !== "string") throw new Error(data?.error?.message ?? `HTTP ${res.status}`);
      return data.auth;
    },
  });
  client.connect();
  return client;
}

/** What the parts of the view share: the client, the open room, the page's own values. */
const page = { client: null, openId: null, local: localValues(storageKey) };
identityActions(page, forget);

try {
  await upgrade({ storageKey, apiBase, fromAddress: config.fromAddress === true, storage });
  // e2e2: forward secrecy, a transcript nobody can cut, sizes by class
  // (clients/js/PROTOCOL.md); e2e1 envelopes still open.
  page.client = new SecretRooms({ baseUrl: apiBase, storage, realtime, name: storageKey, e2e2: true });
} catch (error) {
  showError(explain(error));
  throw error;
}
const client = page.client;

page.presence = presence(page);
const list = rooms(page);
const room = chat(page);
Object.assign(page, { open: room.open, renderList: list.render, markRead: list.markRead });

client.on("identity", () => showIdentity(client));
client.on("rooms", () => {
  list.render();
  // How many lists the page has applied: a barrier for tests ("the page has taken in
  // every list it asked for"), never a state the page reads.
  document.body.dataset.lists = String(Number(document.body.dataset.lists ?? 0) + 1);
});
client.on("room", ({ room: changed }) => {
  if (changed.roomId === page.openId) room.render({ keepScroll: true });
  list.render();
});
client.on("subscribed", ({ channel }) => {
  // In the open room: hello, which the peer answers.
  if (channel === client.room(page.openId)?.channel) client.here(page.openId, { hello: true });
});
client.on("message", ({ roomId }) => {
  if (roomId === page.openId) {
    room.render();
    list.markRead(roomId);
  }
  list.render();
});
client.on("failed", ({ roomId, error }) => roomId === page.openId && showError(explain(error)));
client.on("retry", ({ roomId, error }) => roomId === page.openId && showError(explain(error)));
client.on("sent", ({ roomId }) => roomId === page.openId && showError(""));
client.on("error", ({ error, roomId }) => {
  if (roomId !== undefined && roomId === page.openId) showError(explain(error));
  else console.warn("secret-rooms:", explain(error));
});

try {
  await client.start();
  const previous = page.local.load("open");
  if (previous && client.room(previous)?.joined) room.open(previous);
} catch (error) {
  showError(explain(error));
}
if (client.identity) showIdentity(client);
$("chat").dataset.ready = "true";
