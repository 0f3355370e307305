// What a client must not believe, and what it must not lose: forged realtime events, a
// key the server swaps, a key pair the storage lost, a peer without a key, and other
// clients (tabs) on the same storage. Against the local server, as client.test.mjs.

import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryStorage, e2e1 } from "../src/index.js";
import { BASE, open, next, until, kept, pair, realtime } from "./helpers.mjs";

/** POST to the API as whoever holds `privateId`, as the test's own client would. */
async function post(path, body) {
  const res = await fetch(BASE + path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.text() };
}

/** A realtime factory that also hands the test each channel's `message` handlers, so it
 * can play an event as whoever holds the realtime app could. */
function spying() {
  const handlers = new Map();
  const factory = (auth) => {
    const client = realtime(auth);
    const subscribe = client.subscribe.bind(client);
    client.subscribe = (name) => {
      const channel = subscribe(name);
      const bind = channel.bind.bind(channel);
      channel.bind = (event, handler) => {
        if (event === "message") handlers.set(name, [...(handlers.get(name) ?? []), handler]);
        return bind(event, handler);
      };
      return channel;
    };
    return client;
  };
  const forge = (channel, data) => (handlers.get(channel) ?? []).forEach((handler) => handler(data));
  return { factory, forge };
}

/** The room's outbox has been tried: a barrier once the client's sends ran (asking for
 * nothing new to go in clear awaits the flush that is running, and one after it). */
const tried = (client, roomId) => client.sendInClear(roomId, []);

test("a forged live event under a real message's id does not hide it: the history's version wins", async () => {
  const spy = spying();
  const { alice, bob, roomId } = await pair({ bob: { realtime: spy.factory } });
  const channel = bob.room(roomId).channel;
  const id = e2e1.toBase64url(crypto.getRandomValues(new Uint8Array(16)));
  const forged = next(bob, "message", ({ message }) => message.id === id);
  spy.forge(channel, { id, roomId, from: { publicId: alice.identity.publicId, username: "x" }, message: "forged", sentAt: new Date().toISOString() });
  assert.equal((await forged).message.text, "forged", "a live event is shown at once");
  // Alice's real message under that id (in clear: what matters is which one stays).
  // Awaited from before the post: Bob's catch-up on subscribing may still be running,
  // and may read the history's version first.
  const replaced = next(bob, "message", ({ message }) => message.id === id && message.text === "real");
  assert.equal((await post(`/rooms/${roomId}/message`, { privateId: alice.identity.privateId, message: "real", id })).status, 204);
  await bob.history(roomId, { before: "" });
  await replaced;
  assert.deepEqual(bob.messages(roomId).filter((m) => m.id === id).map((m) => m.text), ["real"], "once, as kept");
  // Malformed or from a stranger: not shown.
  const stranger = { id: "a".repeat(22), roomId, from: { publicId: "999-999-999", username: "x" }, message: "hi", sentAt: new Date().toISOString() };
  spy.forge(channel, { ...stranger, sentAt: 5 });
  spy.forge(channel, stranger);
  const later = next(bob, "message", ({ message }) => message.text === "later");
  await alice.send(roomId, "later");
  await later;
  assert.equal(bob.messages(roomId).some((m) => m.id === stranger.id), false);
});

test("a key the list swaps compromises the room for good: nothing is sent, and what the new key sealed is not shown", async () => {
  let swap = null;
  const swapping = async (url, init) => {
    const response = await fetch(url, init);
    if (!swap || !String(url).endsWith("/users/rooms")) return response;
    const list = await response.json();
    for (const room of list.rooms) if (room.peer.publicKey) room.peer.publicKey = swap;
    return new Response(JSON.stringify(list), { status: response.status, headers: response.headers });
  };
  const { alice, bob, roomId } = await pair({ alice: { fetch: swapping } });
  const mallory = await e2e1.generateKeyPair(false);
  swap = await e2e1.exportPublicKey(mallory);
  const compromised = next(alice, "room", ({ room }) => room.roomId === roomId && room.encryption === "compromised");
  await alice.refreshRooms();
  const { room } = await compromised;
  assert.equal(room.peerKey, bob.identity.publicKey, "the room's key stays the first one");
  assert.deepEqual(room.changedKeys, [swap]);
  assert.notEqual(await alice.safetyCode(roomId, swap), await alice.safetyCode(roomId), "both codes can be shown");
  // Sealed with the new key, as from Bob: not shown as his.
  const key = await e2e1.roomKey(mallory, alice.identity.publicKey, roomId);
  const envelope = await e2e1.seal(key, roomId, swap, "trust me");
  const foreign = next(alice, "message", ({ message }) => message.unreadable === "foreign");
  assert.equal((await post(`/rooms/${roomId}/message`, { privateId: bob.identity.privateId, message: envelope })).status, 204);
  assert.equal((await foreign).message.text, null);
  // What Bob really seals still opens.
  const real = next(alice, "message", ({ message }) => message.text === "still me");
  await bob.send(roomId, "still me");
  await real;
  // Nothing leaves Alice any more, also once the list shows Bob's key again.
  swap = null;
  await alice.refreshRooms();
  assert.equal(alice.room(roomId).encryption, "compromised", "for good");
  await alice.send(roomId, "not to go");
  await tried(alice, roomId);
  assert.equal((await alice.outbox(roomId)).length, 1, "it stays queued");
  assert.equal((await kept(bob.identity.privateId, roomId)).length, 2, "nothing more was kept");
});

test("an identity whose key pair the storage lost is unavailable: nothing is sent, nothing opened", async () => {
  const storage = memoryStorage();
  const { bob, roomId } = await pair({ alice: { storage } });
  await storage.delete("keyPair");
  const again = await open({ storage });
  assert.equal(again.room(roomId).encryption, "unavailable");
  const arrived = next(again, "message", ({ message }) => message.unreadable === "no_key");
  await bob.send(roomId, "can you read this?");
  assert.equal((await arrived).message.text, null);
  await again.send(roomId, "not to go");
  await tried(again, roomId);
  assert.equal((await again.outbox(roomId)).length, 1, "it stays queued");
});

test("a peer without a key: what waited goes in clear only as the person says, item by item", async () => {
  const alice = await open();
  const carol = await open({ encryption: false });
  assert.equal(carol.identity.publicKey, null);
  const room = await alice.connect(carol.identity.publicId);
  const first = await alice.send(room.roomId, "written while waiting");
  const plain = next(alice, "room", ({ room: r }) => r.roomId === room.roomId && r.encryption === "plaintext");
  await carol.connect(alice.identity.publicId);
  await plain;
  await alice.send(room.roomId, "written after");
  await tried(alice, room.roomId);
  assert.equal((await alice.outbox(room.roomId)).length, 2, "nothing went by itself");
  const arrived = next(carol, "message", ({ message }) => message.text === "written while waiting");
  await alice.sendInClear(room.roomId, [first]);
  assert.equal((await arrived).message.encrypted, false);
  assert.deepEqual((await alice.outbox(room.roomId)).map((i) => i.text), ["written after"], "only what was said");
  await alice.discard(room.roomId);
  assert.deepEqual(await alice.outbox(room.roomId), []);
  assert.deepEqual((await kept(carol.identity.privateId, room.roomId)).map((m) => m.message), ["written while waiting"]);
});

test("clients on one storage (tabs) share the identity, its rotations and the outbox", async () => {
  const storage = memoryStorage();
  const name = `tabs-${Math.random()}`;
  const { alice, bob, roomId } = await pair({ alice: { storage, name } });
  const other = await open({ storage, name });
  assert.equal(other.identity.privateId, alice.identity.privateId, "one identity");
  // A rotation in one reaches the other.
  const heard = next(alice, "identity");
  const fresh = await other.rotate();
  assert.equal((await heard).identity.publicId, fresh);
  assert.ok(alice.identity.pastIds.length === 1 && !alice.identity.pastIds.includes(fresh));
  // What the other one sends under the new id is mine here too.
  const mine = next(alice, "message", ({ message }) => message.text === "from the other tab");
  const seen = next(bob, "message", ({ message }) => message.text === "from the other tab");
  await other.send(roomId, "from the other tab");
  assert.equal((await mine).message.mine, true);
  assert.equal((await seen).message.from.publicId, fresh);
  // An outbox change in one is heard in the other.
  const changed = next(other, "outbox", ({ roomId: r }) => r === roomId);
  await alice.send(roomId, "from this tab");
  await changed;
  await until(async () => (await alice.outbox(roomId)).length === 0, "sent");
});
