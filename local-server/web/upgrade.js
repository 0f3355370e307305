// What earlier versions of the page stored, moved to where this one keeps it: the client
// library's storage, an IndexedDB database named after the page's storage key.
//
// - Before v2, an identity was kept in localStorage under the API alone
//   (`secret-rooms:<api>:…`): it moves to the configuration this page's own config.json
//   gives, never to one taken from the address.
// - Up to v3, the page kept its identity in localStorage (`<storage key>:me`, with a copy
//   in IndexedDB "secret-rooms"/"keys"), its key pair in that IndexedDB store, the peer
//   keys it trusts under `<storage key>:e2e:<roomId>` and its outbox under
//   `<storage key>:outbox:<roomId>`: they move into the library's storage, once, under
//   the lock identities are made under (tabs opened at once move them once).

import { indexedDBStorage } from "./client/index.js";

const newId = () => {
  let binary = "";
  for (const byte of crypto.getRandomValues(new Uint8Array(16))) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

function read(name) {
  try {
    return JSON.parse(localStorage.getItem(name));
  } catch {
    return null;
  }
}

function fromBeforeV2(storageKey, apiBase) {
  const legacy = `secret-rooms:${apiBase}:`;
  for (const name of Object.keys(localStorage)) {
    if (!name.startsWith(legacy)) continue;
    const moved = `${storageKey}:${name.slice(legacy.length)}`;
    if (localStorage.getItem(moved) === null) localStorage.setItem(moved, localStorage.getItem(name));
    localStorage.removeItem(name);
  }
}

/** A room's trust as the page kept it: `{key, others}`, or, earlier, `{key (trusted
 * last), changed, previous (newest first)}`, whose first key is the room's. */
function trustOf(t) {
  if (!t?.key) return null;
  if (Array.isArray(t.others)) return { key: t.key, others: t.others };
  const seen = [...(t.previous ?? []).slice().reverse(), t.key, t.changed].filter(Boolean);
  return { key: seen[0], others: [...new Set(seen.slice(1).filter((k) => k !== seen[0]))] };
}

async function fromPageStorage(storageKey, storage) {
  if (await storage.get("identity")) return;
  const old = indexedDBStorage("secret-rooms", "keys");
  const kept = (name) => old.get(name).catch(() => undefined);
  const me = read(`${storageKey}:me`) ?? (await kept(`${storageKey}:me`));
  if (!me?.privateId) return;
  const pair = await kept(storageKey);
  if (pair && me.publicKey) await storage.set("keyPair", pair);
  const prefix = `${storageKey}:`;
  for (const name of Object.keys(localStorage)) {
    if (!name.startsWith(prefix)) continue;
    const [kind, roomId] = name.slice(prefix.length).split(":");
    if (kind === "e2e" && trustOf(read(name))) await storage.set(`trust:${roomId}`, trustOf(read(name)));
    if (kind === "outbox" && Array.isArray(read(name))) {
      // Items of the oldest pages have ids too short for the server: they get new ones
      // (they were never sent under theirs, so no retry is lost).
      const items = read(name).map((item) => ({
        id: item.id?.length >= 22 ? item.id : newId(),
        text: item.text,
        clear: false,
        queuedAt: Date.parse(item.queuedAt) || Date.now(),
        attempts: 0,
        ...(item.sealed ? { sealed: item.sealed } : {}),
      }));
      await storage.set(`outbox:${roomId}`, items);
    }
  }
  // The identity last: once it is there, the move is done.
  const { publicId, privateId, username } = me;
  await storage.set("identity", { publicId, privateId, username, publicKey: me.publicKey ?? null, pastIds: me.pastIds ?? [] });
  for (const name of Object.keys(localStorage)) {
    if (name.startsWith(prefix) && /^(me|(e2e|outbox):[^:]+)$/.test(name.slice(prefix.length))) localStorage.removeItem(name);
  }
  for (const name of [storageKey, `${storageKey}:me`]) await old.delete(name).catch(() => {});
}

export async function upgrade({ storageKey, apiBase, fromAddress, storage }) {
  if (!fromAddress) fromBeforeV2(storageKey, apiBase);
  const move = () => fromPageStorage(storageKey, storage);
  await (navigator.locks ? navigator.locks.request(`${storageKey}:identity`, move) : move());
}
