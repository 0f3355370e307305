// What the client library's tests share: clients against the local server
// (SECRET_ROOMS_URL, PUSHER_KEY) with pusher-js as their realtime client, closed after
// the file's tests, and barriers on their events.

import { after } from "node:test";
import assert from "node:assert/strict";
import Pusher from "pusher-js";
import { SecretRooms, memoryStorage } from "../src/index.js";

export const BASE = process.env.SECRET_ROOMS_URL;
const KEY = process.env.PUSHER_KEY;
if (!BASE || !KEY) throw new Error("SECRET_ROOMS_URL and PUSHER_KEY must name a running local server");
const { hostname, port } = new URL(BASE);

const clients = [];
after(() => clients.forEach((c) => c.close()));

export const realtime = ({ authEndpoint, params }) =>
  new Pusher(KEY, {
    cluster: "local",
    wsHost: hostname,
    wsPort: Number(port),
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    channelAuthorization: { endpoint: authEndpoint, transport: "ajax", params },
  });

export async function open(options = {}) {
  const client = await SecretRooms.open({ baseUrl: BASE, storage: memoryStorage(), realtime, retry: { first: 50, max: 200 }, ...options });
  clients.push(client);
  // Subscribed before the test goes on: nothing published from then on is missed.
  await client.ready();
  return client;
}

/** The next `name` event of `client` for which `ok` holds. */
export function next(client, name, ok = () => true, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no ${name} event in ${ms} ms`));
    }, ms);
    const stop = client.on(name, (detail) => {
      if (!ok(detail)) return;
      clearTimeout(timer);
      stop();
      resolve(detail);
    });
  });
}

/** Until `condition` holds (a barrier on state the events change). */
export async function until(condition, what, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function kept(privateId, roomId) {
  const res = await fetch(`${BASE}/rooms/${roomId}/messages`, { method: "POST", body: JSON.stringify({ privateId, limit: 100 }) });
  assert.equal(res.status, 200);
  return (await res.json()).messages;
}

/** Two clients in one encrypted room, both subscribed. */
export async function pair(options = {}) {
  const alice = await open(options.alice);
  const bob = await open(options.bob);
  const offered = next(bob, "room", ({ room }) => room.peer.publicId === alice.identity.publicId);
  const room = await alice.connect(bob.identity.publicId);
  assert.equal(room.encryption, "waiting", "no key before the peer joins");
  await offered;
  const keyed = next(alice, "room", ({ room: r }) => r.roomId === room.roomId && r.encryption === "encrypted");
  const joined = await bob.connect(alice.identity.publicId);
  assert.equal(joined.roomId, room.roomId, "the same room whichever side asks");
  await keyed;
  return { alice, bob, roomId: room.roomId };
}
