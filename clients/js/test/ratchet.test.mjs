// The client with e2e2 (option `e2e2: true`) against the local server, with pusher-js:
// the hello and the start, forward secrecy of what was read (a stolen state opens
// nothing), the local archive across a reload, the transcript's notices, sizes only
// by class, and e2e1 still read (a step back flagged).

import { test } from "node:test";
import assert from "node:assert/strict";
import { memoryStorage, e2e2 } from "../src/index.js";
import { open, next, until, kept, pair, BASE } from "./helpers.mjs";

const V2 = { e2e2: true };

/** Two e2e2 clients in one room, the ratchet started on both sides. */
async function started(options = {}) {
  const storages = { alice: memoryStorage(), bob: memoryStorage() };
  const { alice, bob, roomId } = await pair({
    alice: { ...V2, storage: storages.alice, ...options.alice },
    bob: { ...V2, storage: storages.bob, ...options.bob },
  });
  await until(() => alice.room(roomId).ratchet === "started" && bob.room(roomId).ratchet === "started", "the ratchet started on both sides");
  return { alice, bob, roomId, storages };
}

async function say(from, to, roomId, text) {
  const arrived = next(to, "message", ({ message }) => message.text === text);
  await from.send(roomId, text);
  return (await arrived).message;
}

/** What a thief gets from a client's storage: the local key, the session, the identity key. */
async function steal(storage, roomId) {
  const localKey = await storage.get("localKey");
  const sealed = await storage.get(`e2e2:${roomId}`);
  const name = `e2e2:${roomId}`;
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: e2e2.fromBase64url(sealed.iv), additionalData: new TextEncoder().encode(name) },
    localKey,
    e2e2.fromBase64url(sealed.data),
  );
  const record = JSON.parse(new TextDecoder().decode(plain));
  return { session: e2e2.deserialize(record.session), keyPair: await storage.get("keyPair") };
}

test("e2e2: two clients chat; the server holds envelopes of three sizes only; messages written early wait for the ratchet", async () => {
  const storages = { alice: memoryStorage(), bob: memoryStorage() };
  const alice = await open({ ...V2, storage: storages.alice });
  const bob = await open({ ...V2, storage: storages.bob });
  const offered = next(bob, "room", ({ room: r }) => r.peer.publicId === alice.identity.publicId);
  const room = await alice.connect(bob.identity.publicId);
  await alice.send(room.roomId, "written before Bob joined");
  await offered;
  const arrived = next(bob, "message", ({ message }) => message.text === "written before Bob joined");
  await bob.connect(alice.identity.publicId);
  const first = (await arrived).message;
  assert.equal(first.version, 2);
  assert.equal(first.encrypted, true);
  await say(bob, alice, room.roomId, "and a reply, " + "long ".repeat(100));
  await say(alice, bob, room.roomId, "x".repeat(e2e2.PLAINTEXT_CAPACITY));
  const stored = await kept(bob.identity.privateId, room.roomId);
  const sizes = new Set(e2e2.SIZE_CLASSES.map(e2e2.envelopeLength));
  // The hello, the start, and the three messages: sealed, and sized by class only.
  assert.equal(stored.length, 5);
  for (const m of stored) {
    assert.ok(e2e2.isEnvelope(m.message), "an e2e2 envelope");
    assert.ok(sizes.has(m.message.length), `length ${m.message.length} is a class's`);
    assert.ok(!m.message.includes("written") && !m.message.includes("reply"));
  }
  assert.deepEqual(alice.messages(room.roomId).map((m) => m.text.slice(0, 10)), ["written be", "and a repl", "xxxxxxxxxx"]);
  assert.deepEqual(bob.messages(room.roomId).map((m) => m.text.slice(0, 10)), ["written be", "and a repl", "xxxxxxxxxx"]);
});

test("e2e2: a stolen state (identity key, session, local key) opens none of the messages already read", async () => {
  const { alice, bob, roomId, storages } = await started();
  for (let round = 0; round < 3; round += 1) {
    await say(alice, bob, roomId, `from Alice ${round}`);
    await say(bob, alice, roomId, `from Bob ${round}`);
  }
  const envelopes = (await kept(bob.identity.privateId, roomId)).filter((m) => m.from.publicId === alice.identity.publicId);
  assert.ok(envelopes.length >= 4, "Alice's hello or start and her messages");
  const stolen = await steal(storages.bob, roomId);
  for (const m of envelopes) {
    // With Bob's session as it is now,
    await assert.rejects(e2e2.open(stolen.session, m.message), e2e2.OpenError, "the session opens nothing read");
  }
  // and with a session made afresh from Bob's identity key.
  const fresh = await e2e2.createSession({
    privateKey: stolen.keyPair.privateKey,
    publicKey: bob.identity.publicKey,
    peerPublicKey: alice.identity.publicKey,
    roomId,
  });
  for (const m of envelopes) {
    // Only a hello opens so (it is authenticated by the identity keys, and carries nothing).
    const opened = await e2e2.open(fresh.session, m.message).catch((error) => error);
    if (opened instanceof e2e2.OpenError) continue;
    assert.equal(opened.text, null, "the identity key opens no message");
    assert.equal(opened.seq, 0);
  }
  // Yet Bob, reloaded, still reads them all: from his archive.
  const again = await open({ ...V2, storage: storages.bob, realtime: undefined });
  await again.loadOlder(roomId, 100);
  const texts = again.messages(roomId).map((m) => m.text);
  for (let round = 0; round < 3; round += 1) assert.ok(texts.includes(`from Alice ${round}`) && texts.includes(`from Bob ${round}`));
});

test("e2e2: the archive is sealed: the storage holds no plaintext and the session's keys move on", async () => {
  const { alice, bob, roomId, storages } = await started();
  await say(alice, bob, roomId, "a secret text");
  const values = [];
  for (const storage of [storages.alice, storages.bob]) {
    // memoryStorage has no listing: read what the client names.
    for (const name of [`e2e2:${roomId}`]) values.push(JSON.stringify(await storage.get(name)));
  }
  for (const [who, storage] of [[bob, storages.bob], [alice, storages.alice]]) {
    for (const m of who.messages(roomId)) values.push(JSON.stringify(await storage.get(`read:${roomId}:${m.mine ? "me" : "peer"}:${m.id}`)));
  }
  assert.equal(values.length, 4);
  for (const v of values) assert.ok(v && v.includes('"iv"') && !v.includes("secret"), `sealed: ${v}`);
});

test("e2e2: a replayed, a dropped and a reordered message each show, never silently", async () => {
  const { alice, bob, roomId, storages } = await started();
  await say(alice, bob, roomId, "before");
  bob.close();
  for (const text of ["one", "two", "three", "four"]) {
    const sent = next(alice, "sent");
    await alice.send(roomId, text);
    await sent;
  }
  // Bob comes back through a server that withholds "two", serves "one" again under a
  // new id, and puts "four" before "three".
  const rewrite = (messages) => {
    const byText = (t) => messages.find((m) => m.id === ids[t]);
    const out = messages.filter((m) => m.id !== ids.two);
    const one = byText("one");
    if (one) out.push({ ...one, id: "replayed-one-000000000", sentAt: new Date(Date.parse(one.sentAt) + 1).toISOString() });
    const three = out.find((m) => m.id === ids.three);
    const four = out.find((m) => m.id === ids.four);
    if (three && four) [three.sentAt, four.sentAt] = [four.sentAt, three.sentAt];
    return out;
  };
  const ids = {};
  for (const m of alice.messages(roomId)) ids[m.text] = m.id;
  const fetch = async (url, init) => {
    const response = await globalThis.fetch(url, init);
    if (!String(url).endsWith("/messages")) return response;
    const page = await response.json();
    return new Response(JSON.stringify({ ...page, messages: rewrite(page.messages) }), { status: 200, headers: { "content-type": "application/json" } });
  };
  const back = await open({ ...V2, storage: storages.bob, fetch });
  // Everything the rewritten history holds is taken (in the order it shows).
  const took = (m) => m.id === "replayed-one-000000000" || ["one", "three", "four"].includes(m.text);
  await until(() => back.messages(roomId).filter(took).length === 4, "Bob read what came");
  const shown = back.messages(roomId);
  const four = shown.find((m) => m.text === "four");
  const three = shown.find((m) => m.text === "three");
  assert.equal(shown.find((m) => m.text === "one").missing, 0);
  assert.equal(three.missing, 1, "\"two\" is missing before \"three\"");
  assert.equal(three.outOfOrder, true, "\"three\" shows after \"four\", sealed before it");
  assert.equal(four.outOfOrder, false);
  const replayed = shown.find((m) => m.id === "replayed-one-000000000");
  assert.equal(replayed.text, null);
  assert.equal(replayed.unreadable, "replayed");
  assert.ok(!shown.some((m) => m.text === "two"));
});

test("e2e2: a reload reads the conversation from the archive; e2e1 still opens, and a step back is flagged", async () => {
  const { alice, bob, roomId, storages } = await started();
  await say(alice, bob, roomId, "in e2e2");
  await say(bob, alice, roomId, "also in e2e2");
  // A client of the earlier version on Alice's storage (an old tab): e2e1.
  const old = await open({ storage: storages.alice });
  const stepBack = next(bob, "message", ({ message }) => message.text === "the old way");
  await old.send(roomId, "the old way");
  const flagged = (await stepBack).message;
  assert.equal(flagged.version, 1);
  assert.equal(flagged.downgraded, true, "after e2e2, an e2e1 envelope is a step back");
  old.close();
  const reloaded = await open({ ...V2, storage: storages.bob, realtime: undefined });
  await reloaded.loadOlder(roomId, 100);
  assert.deepEqual(reloaded.messages(roomId).map((m) => [m.text, m.version]), [["in e2e2", 2], ["also in e2e2", 2], ["the old way", 1]]);
  assert.ok(BASE);
});

test("e2e2: a room only offered takes no hello; joined, the session starts (the hello is never dropped)", async () => {
  const bob = await open(V2);
  // An Alice with the larger key: the member who says hello.
  let alice;
  let storage;
  const posts = [];
  const spying = async (url, init) => {
    if (String(url).endsWith("/message")) posts.push(url);
    return globalThis.fetch(url, init);
  };
  for (;;) {
    storage = memoryStorage();
    alice = await open({ ...V2, storage, fetch: spying });
    if (Buffer.compare(Buffer.from(e2e2.fromBase64url(alice.identity.publicKey)), Buffer.from(e2e2.fromBase64url(bob.identity.publicKey))) > 0) break;
    alice.close();
  }
  const offered = next(alice, "room", ({ room }) => room.peer.publicId === bob.identity.publicId && room.peer.username != null);
  const { roomId } = await bob.connect(alice.identity.publicId);
  await offered;
  // Alice reloads: a client starts by sending what each room's outbox and session hold.
  alice.close();
  alice = await open({ ...V2, storage, fetch: spying });
  assert.equal(alice.room(roomId).joined, false);
  assert.equal(alice.room(roomId).encryption, "encrypted", "the list names Bob's key for the room he opened");
  // Its sends are over once another room's message is through (they go one at a time).
  const carol = await open(V2);
  const withCarol = (await alice.connect(carol.identity.publicId)).roomId;
  await carol.connect(alice.identity.publicId);
  await until(() => alice.room(withCarol)?.ratchet === "started", "Alice's session with Carol started");
  const sent = next(alice, "sent");
  await alice.send(withCarol, "to Carol");
  await sent;
  assert.ok(posts.some((url) => url.includes(withCarol)), "the spy sees Alice's posts");
  assert.ok(!posts.some((url) => url.includes(roomId)), "nothing posted to a room Alice has not joined");
  await alice.connect(bob.identity.publicId);
  await until(() => alice.room(roomId).ratchet === "started" && bob.room(roomId).ratchet === "started", "the ratchet started");
  await say(bob, alice, roomId, "started after the join");
});
