// The client library against the local server (SECRET_ROOMS_URL, PUSHER_KEY), with
// pusher-js as its realtime client: what a chat front end built on it relies on. Run by
// ./scripts/test.sh (which starts the server); alone: see the README's "Tests".

import { test } from "node:test";
import assert from "node:assert/strict";
import { ApiError, memoryStorage, webStorage, backoff, e2e1 } from "../src/index.js";
import { open, next, until, kept, pair } from "./helpers.mjs";

test("two clients chat encrypted both ways, through the outbox while the peer is away", async () => {
  const alice = await open();
  const bob = await open();
  assert.match(alice.identity.publicId, /^\d{3}-\d{3}(-\d{3})?$/);
  assert.ok(e2e1.isPublicKey(alice.identity.publicKey), "a key pair was made");
  const offered = next(bob, "room", ({ room: r }) => r.peer.publicId === alice.identity.publicId && !r.joined);
  const room = await alice.connect(bob.identity.publicId);
  // Written before Bob joined: it waits for his key.
  await alice.send(room.roomId, "are you there?");
  assert.equal((await alice.outbox(room.roomId)).length, 1);
  // The offer reached Bob's inbox, live.
  await offered;
  const arrived = next(bob, "message", ({ message }) => message.text === "are you there?");
  await bob.connect(alice.identity.publicId);
  const { message } = await arrived;
  assert.equal(message.encrypted, true);
  assert.equal(message.from.publicId, alice.identity.publicId);
  await until(async () => (await alice.outbox(room.roomId)).length === 0, "Alice's outbox went out");
  const reply = next(alice, "message", ({ message: m }) => m.text === "here!");
  await bob.send(room.roomId, "here!");
  assert.equal((await reply).message.encrypted, true);
  // The server holds envelopes only.
  const stored = await kept(bob.identity.privateId, room.roomId);
  assert.equal(stored.length, 2);
  for (const m of stored) {
    assert.ok(e2e1.isEnvelope(m.message), "sealed");
    assert.ok(!m.message.includes("there") && !m.message.includes("here"));
  }
  assert.equal(await alice.safetyCode(room.roomId), await bob.safetyCode(room.roomId));
  assert.match(await alice.safetyCode(room.roomId), /^(\d{5} ){11}\d{5}$/);
});

test("history both ways: the newest page first, older pages on demand, each message once", async () => {
  const bobStorage = memoryStorage();
  const { alice, roomId } = await pair({ bob: { storage: bobStorage } });
  for (const text of ["one", "two", "three", "four", "five"]) {
    const sent = next(alice, "sent");
    await alice.send(roomId, text);
    await sent;
  }
  // Bob again, on the same storage with no realtime client (a reload): from the server.
  const later = await open({ storage: bobStorage, realtime: undefined });
  const newest = await later.history(roomId, { before: "", limit: 2 });
  assert.deepEqual(newest.messages.map((m) => m.text), ["five", "four"]);
  const older = await later.history(roomId, { before: newest.next, limit: 2 });
  assert.deepEqual(older.messages.map((m) => m.text), ["three", "two"]);
  const forward = await later.history(roomId, { after: older.next, limit: 10 });
  assert.deepEqual(forward.messages.map((m) => m.text), ["three", "four", "five"], "oldest first after a cursor");
  while (await later.loadOlder(roomId, 2));
  const texts = later.messages(roomId).map((m) => m.text);
  assert.deepEqual(texts, ["one", "two", "three", "four", "five"], "each once, oldest first");
  assert.ok(later.messages(roomId).every((m) => m.encrypted && m.mine === false));
});

test("an answer lost mid-send is sent again under the same id and envelope, and kept and shown once", async () => {
  const bodies = [];
  let lost = false;
  const losing = async (url, init) => {
    const response = await fetch(url, init);
    if (String(url).endsWith("/message")) {
      bodies.push(JSON.parse(init.body));
      if (!lost) {
        lost = true;
        throw new TypeError("the connection was reset");
      }
    }
    return response;
  };
  const { alice, bob, roomId } = await pair({ alice: { fetch: losing } });
  const retried = next(alice, "retry");
  const sent = next(alice, "sent");
  const shown = next(bob, "message", ({ message }) => message.text === "only once");
  const id = await alice.send(roomId, "only once");
  const { error } = await retried;
  assert.equal(error.code, "network");
  assert.equal((await sent).id, id);
  await shown;
  assert.equal(bodies.length, 2);
  assert.equal(bodies[1].id, bodies[0].id, "the same id");
  assert.equal(bodies[1].message, bodies[0].message, "the same envelope");
  assert.deepEqual((await kept(bob.identity.privateId, roomId)).map((m) => m.id), [id], "kept once");
  // A later message arrives after any copy of the first: it showed once.
  const then = next(bob, "message", ({ message }) => message.text === "and then");
  await alice.send(roomId, "and then");
  await then;
  assert.equal(bob.messages(roomId).filter((m) => m.text === "only once").length, 1);
});

test("messages sent at once, while the outbox drains, all go, each once", async () => {
  const { alice, bob, roomId } = await pair();
  const texts = Array.from({ length: 12 }, (_, n) => `burst ${n}`);
  const last = next(bob, "message", ({ message }) => message.text === "burst 11");
  await Promise.all(texts.map((text) => alice.send(roomId, text)));
  await last;
  await until(async () => (await alice.outbox(roomId)).length === 0, "the outbox emptied");
  const stored = await kept(bob.identity.privateId, roomId);
  assert.equal(stored.length, 12, "each once");
  await until(() => bob.messages(roomId).length === 12, "all shown");
  const shown = bob.messages(roomId).map((m) => m.text);
  assert.deepEqual([...shown].sort(), [...texts].sort(), "none lost");
});

test("a reload restores the identity, its key pair (kept as JWK in a Web Storage) and the outbox", async () => {
  const local = new Map();
  const store = { getItem: (k) => local.get(k) ?? null, setItem: (k, v) => local.set(k, String(v)), removeItem: (k) => local.delete(k) };
  const bob = await open();
  const first = await open({ storage: webStorage(store) });
  const room = await first.connect(bob.identity.publicId);
  await first.send(room.roomId, "written before the reload");
  const me = first.identity;
  first.close();
  assert.ok([...local.keys()].some((k) => k.startsWith("secret-rooms:outbox:")), "the outbox is in the storage");
  const again = await open({ storage: webStorage(store) });
  assert.equal(again.identity.publicId, me.publicId, "the same identity");
  assert.equal(again.identity.publicKey, me.publicKey, "the same key");
  assert.equal((await again.outbox(room.roomId)).length, 1, "the outbox came back");
  const arrived = next(bob, "message", ({ message }) => message.text === "written before the reload");
  await bob.connect(me.publicId);
  const { message } = await arrived;
  assert.equal(message.encrypted, true, "sealed with the restored key pair");
});

test("typing and presence reach the other member", async () => {
  const { alice, bob, roomId } = await pair();
  await until(() => alice.here(roomId) !== false && bob.here(roomId) !== false, "both subscribed");
  const typing = next(bob, "typing", (d) => d.roomId === roomId);
  assert.equal(alice.typing(roomId), true);
  await typing;
  assert.equal(alice.typing(roomId), false, "at most one every 3 s");
  // A hello is answered: each side hears the other.
  const heard = next(alice, "presence", (d) => d.roomId === roomId);
  const asked = next(bob, "presence", (d) => d.roomId === roomId);
  alice.here(roomId, { hello: true });
  await asked;
  await heard;
});

test("block closes the room for both: the other side's next message fails with room_closed", async () => {
  const { alice, bob, roomId } = await pair();
  await alice.block(roomId);
  assert.equal(alice.room(roomId).closed, true);
  await assert.rejects(alice.send(roomId, "no"), (e) => e instanceof ApiError && e.code === "room_closed");
  const failed = next(bob, "failed");
  await bob.send(roomId, "still there?");
  const { error } = await failed;
  assert.equal(error.code, "room_closed");
  assert.equal(error.status, 410);
  assert.equal(bob.room(roomId).closed, true);
  assert.deepEqual(await bob.outbox(roomId), [], "a final answer leaves the outbox");
});

test("rotate: a fresh public id; messages sent under the old one are still mine and still open", async () => {
  // Bob's first history answer after the rotation lacks the message, as a server of an
  // earlier version could answer (it published beside the history write, so the event
  // could come before the history had it).
  let fresh = null;
  let hidden = 0;
  const lagging = async (url, init) => {
    const response = await fetch(url, init);
    if (!fresh || !String(url).endsWith("/messages") || hidden > 0) return response;
    const page = await response.json();
    const messages = page.messages.filter((m) => m.from.publicId !== fresh);
    hidden = page.messages.length - messages.length;
    return new Response(JSON.stringify({ ...page, messages }), { status: response.status, headers: response.headers });
  };
  const { alice, bob, roomId } = await pair({ bob: { fetch: lagging } });
  const sent = next(alice, "sent");
  await alice.send(roomId, "before");
  await sent;
  const old = alice.identity.publicId;
  fresh = await alice.rotate();
  assert.notEqual(fresh, old);
  assert.deepEqual(alice.identity.pastIds, [old]);
  const later = next(bob, "message", ({ message }) => message.text === "after");
  await alice.send(roomId, "after");
  // From an id Bob does not know yet: he asks the history, again until it has it.
  assert.equal((await later).message.from.publicId, fresh);
  assert.equal(hidden, 1, "the first answer lacked it");
  const page = await alice.history(roomId, { before: "" });
  assert.deepEqual(page.messages.map((m) => [m.text, m.mine]), [["after", true], ["before", true]]);
});

test("errors carry the API's codes; back-off doubles up to its bound", async () => {
  const alice = await open({ realtime: undefined });
  await assert.rejects(alice.connect(alice.identity.publicId), (e) => e instanceof ApiError && e.code === "cannot_connect_to_self" && e.final);
  await assert.rejects(alice.connect("12-34"), (e) => e.status === 400);
  const gone = await open({ realtime: undefined, baseUrl: "http://127.0.0.1:9" }).catch((e) => e);
  assert.ok(gone instanceof ApiError && gone.code === "network" && !gone.final);
  for (const [attempt, low, high] of [[0, 750, 1000], [1, 1500, 2000], [3, 6000, 8000], [10, 22_500, 30_000]]) {
    const delay = backoff(attempt);
    assert.ok(delay >= low && delay <= high, `${attempt}: ${delay}`);
  }
});
