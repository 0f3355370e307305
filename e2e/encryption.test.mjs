// End-to-end encryption in the chat page, in headless Chromium (Debian's chromium, driven
// by playwright-core) against the local server that ./scripts/test.sh starts: two pages
// chat encrypted both ways, through the outbox while the peer is away; what reaches the
// realtime server and the history is sealed; a tampered envelope shows a notice; a peer
// without a key is marked and never gets the outbox in clear by itself; a key that
// disappears or changes is flagged, never a downgrade.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import crypto from "node:crypto";
import { chromium } from "playwright-core";
import Pusher from "pusher-js";

const BASE = process.env.SECRET_ROOMS_URL;
const KEY = process.env.PUSHER_KEY ?? "local-key";
if (!BASE) throw new Error("SECRET_ROOMS_URL is not set: run ./scripts/test.sh");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const PHONE = { viewport: { width: 390, height: 780 }, deviceScaleFactor: 2 };
const ENVELOPE = /^e2e1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}$/;
const SAFETY_CODE = /^\d{5}( \d{5}){11}$/;
const NOTICE = "could not be decrypted: it was altered or not meant for this room";

let browser;
const clients = [];

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: ./scripts/test.sh installs Debian's chromium`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  clients.forEach((c) => c.disconnect());
  await browser?.close();
});

/** A page with an identity of its own; `sent` collects every request body and WebSocket
 * frame the page sends, from before it loads. `keys: false`: a browser without X25519. */
async function person({ keys = true } = {}) {
  const context = await browser.newContext(PHONE);
  if (!keys) {
    await context.addInitScript(() => {
      const generateKey = crypto.subtle.generateKey.bind(crypto.subtle);
      crypto.subtle.generateKey = (algorithm, ...rest) => (algorithm?.name === "X25519"
        ? Promise.reject(new DOMException("X25519 is not supported", "NotSupportedError"))
        : generateKey(algorithm, ...rest));
    });
  }
  const page = await context.newPage();
  const problems = [];
  const sent = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("request", (request) => sent.push(request.postData() ?? ""));
  page.on("websocket", (ws) => ws.on("framesent", (frame) => sent.push(String(frame.payload))));
  await page.goto(BASE);
  await page.locator("#my-public-id", { hasText: /^\d{3}-\d{3}(-\d{3})?$/ }).waitFor();
  await page.locator('#status[data-state="connected"]').waitFor();
  await page.locator(`#identity[data-keys="${keys ? "encrypted" : "none"}"]`).waitFor();
  const publicId = await page.locator("#my-public-id").textContent();
  const name = await page.locator("#my-name").textContent();
  const privateId = await page.evaluate((id) => {
    for (const key of Object.keys(localStorage)) {
      if (!key.endsWith(":me")) continue;
      const me = JSON.parse(localStorage.getItem(key));
      if (me?.publicId === id) return me.privateId;
    }
    return null;
  }, publicId);
  assert.ok(privateId, "the identity is stored");
  return { context, page, publicId, name, privateId, problems, sent };
}

async function connect(who, peer) {
  await who.page.fill("#peer-id", peer);
  await who.page.click("#connect");
  await who.page.locator("#peer-label", { hasText: peer }).waitFor();
  await who.page.locator('#chat[data-joined="true"]').waitFor();
}

/** Two people in one encrypted room. */
async function pair() {
  const alice = await person();
  const bob = await person();
  await connect(alice, bob.publicId);
  await connect(bob, alice.publicId);
  for (const who of [alice, bob]) await who.page.locator('#chat[data-encryption="encrypted"]').waitFor();
  return { alice, bob, room: await openRoom(alice) };
}

async function send(who, text) {
  await who.page.fill("#message", text);
  await who.page.press("#message", "Enter");
}

const texts = (who) => who.page.locator("#messages .text").allTextContents();

/** The room open on the page, as its channel and id. */
async function openRoom(who) {
  const roomId = await who.page.evaluate(() => {
    for (const key of Object.keys(localStorage)) if (key.endsWith(":open")) return JSON.parse(localStorage.getItem(key));
    return null;
  });
  assert.ok(roomId, "the open room is stored");
  return { roomId, channel: `private-${roomId}` };
}

async function api(path, body) {
  const res = await fetch(BASE + path, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function history(privateId, roomId) {
  const { status, body } = await api(`/rooms/${roomId}/messages`, { privateId, limit: 100 });
  assert.equal(status, 200);
  return body.messages;
}

/** A pusher-js client subscribed to `channel` as the member `privateId`; `messages`
 * collects the `message` events it hears. */
async function observer(privateId, channel) {
  const { hostname, port } = new URL(BASE);
  const pusher = new Pusher(KEY, {
    cluster: "local",
    wsHost: hostname,
    wsPort: Number(port),
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    channelAuthorization: { endpoint: `${BASE}/pusher/auth`, transport: "ajax", params: { privateId } },
  });
  clients.push(pusher);
  const subscription = pusher.subscribe(channel);
  const messages = [];
  subscription.bind("message", (m) => messages.push(m));
  await new Promise((resolve, reject) => {
    subscription.bind("pusher:subscription_succeeded", resolve);
    subscription.bind("pusher:subscription_error", reject);
  });
  return { messages };
}

async function until(condition, what, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function safetyCode(who) {
  await who.page.click("#e2e-label");
  const code = who.page.locator("#safety-code", { hasText: SAFETY_CODE });
  await code.waitFor();
  return code.textContent();
}

test("two pages chat encrypted both ways, through the outbox while the peer is away; nothing in clear leaves them", async () => {
  const alice = await person();
  const bob = await person();
  const plaintexts = ["Before you joined: the first 🔐", "Before you joined: the second", "Alice here, reading you", "é".repeat(1519) + "!"];

  // Bob opens a room with Alice's id before she has joined: her key is not known, so
  // what he writes waits in his outbox, marked, and the room says so.
  await connect(bob, alice.publicId);
  await bob.page.locator('#chat[data-encryption="waiting"]').waitFor();
  await bob.page.locator("#e2e-label", { hasText: "will be sent encrypted" }).waitFor();
  await send(bob, plaintexts[0]);
  await bob.page.locator(".message.mine.pending .text", { hasText: plaintexts[0] }).waitFor();
  await bob.page.locator(".message.pending .mark", { hasText: "waiting for" }).waitFor();
  await bob.page.locator("#outbox-note", { hasText: "1 message will be sent encrypted" }).waitFor();

  // The outbox survives a reload.
  await bob.page.reload();
  await bob.page.locator('#chat[data-joined="true"]').waitFor();
  await bob.page.locator('#chat[data-encryption="waiting"]').waitFor();
  await bob.page.locator(".message.mine.pending .text", { hasText: plaintexts[0] }).waitFor();
  await send(bob, plaintexts[1]);
  await bob.page.locator("#outbox-note", { hasText: "2 messages will be sent encrypted" }).waitFor();
  assert.deepEqual(await texts(bob), plaintexts.slice(0, 2));

  // A member's own pusher-js client hears what the realtime server relays in the room.
  const room = await openRoom(bob);
  const heard = await observer(bob.privateId, room.channel);

  // Alice joins from her list; her connect is announced on the room's channel, with her
  // key, to Bob's page (still open): it sends the outbox, sealed, in order.
  const offered = alice.page.locator('#rooms .room[data-joined="false"]', { hasText: bob.name });
  await offered.locator(".join").click();
  await alice.page.locator('#chat[data-encryption="encrypted"]').waitFor();
  await alice.page.locator(".message.theirs .text", { hasText: plaintexts[1] }).waitFor();
  assert.deepEqual(await texts(alice), plaintexts.slice(0, 2), "in order");
  await bob.page.locator('#chat[data-encryption="encrypted"]').waitFor();
  await bob.page.locator("#outbox-note").waitFor({ state: "hidden" });
  await bob.page.locator(".message.mine:not(.pending) .text", { hasText: plaintexts[1] }).waitFor();
  assert.equal(await bob.page.locator(".message.pending").count(), 0);

  // Alice replies; then the most text one encrypted message holds (3039 bytes).
  await send(alice, plaintexts[2]);
  await bob.page.locator(".message.theirs .text", { hasText: plaintexts[2] }).waitFor();
  await alice.page.locator("#counter", { hasText: "/ 3039" }).waitFor();
  await send(alice, plaintexts[3]);
  await bob.page.locator(".message.theirs .text", { hasText: "é!" }).waitFor();
  assert.deepEqual(await texts(bob), plaintexts);
  assert.deepEqual(await texts(alice), plaintexts);

  // The same safety code on both sides.
  const code = await safetyCode(alice);
  assert.equal(await safetyCode(bob), code);

  // Nothing in clear reached the realtime server or the history.
  await until(() => heard.messages.length === 4, "four relayed messages");
  const kept = await history(alice.privateId, room.roomId);
  assert.equal(kept.length, 4);
  assert.deepEqual(kept.map((m) => m.from.publicId), [bob.publicId, bob.publicId, alice.publicId, alice.publicId]);
  for (const { message } of [...heard.messages, ...kept]) {
    assert.match(message, ENVELOPE);
    assert.ok(message.length <= 4096);
    for (const text of plaintexts) assert.ok(!message.includes(text));
  }
  // Nor did it leave either browser in anything else it sent.
  for (const who of [alice, bob]) {
    for (const text of plaintexts) {
      assert.ok(!who.sent.some((body) => body.includes(text) || body.includes(JSON.stringify(text).slice(1, -1))),
        `"${text.slice(0, 20)}…" never left the browser`);
    }
  }
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

test("a tampered or re-attributed envelope shows a notice, never garbage; a message in clear is marked", async () => {
  const { alice, bob, room } = await pair();
  await send(bob, "the real one");
  await alice.page.locator(".message.theirs .text", { hasText: "the real one" }).waitFor();
  const [original] = await history(alice.privateId, room.roomId);
  assert.match(original.message, ENVELOPE);

  // A byte of the ciphertext flipped, posted by Bob's identity: it looks like an envelope.
  const [version, iv, sealed] = original.message.split(".");
  const bytes = Buffer.from(sealed, "base64url");
  bytes[3] ^= 0x01;
  const tampered = `${version}.${iv}.${bytes.toString("base64url")}`;
  assert.match(tampered, ENVELOPE);
  assert.equal((await api(`/rooms/${room.roomId}/message`, { privateId: bob.privateId, message: tampered })).status, 204);
  // Bob's untouched envelope, posted again by Alice's identity: the server says she sent
  // it, which its additional data denies.
  assert.equal((await api(`/rooms/${room.roomId}/message`, { privateId: alice.privateId, message: original.message })).status, 204);
  // A message in clear, from a client that does not encrypt.
  assert.equal((await api(`/rooms/${room.roomId}/message`, { privateId: bob.privateId, message: "sent in clear" })).status, 204);
  await send(bob, "after all that");

  for (const who of [alice, bob]) {
    await who.page.locator(".message .text", { hasText: "after all that" }).waitFor();
    assert.equal(await who.page.locator(".message.unreadable .notice", { hasText: NOTICE }).count(), 2, "two notices");
    assert.deepEqual(await texts(who), ["the real one", "sent in clear", "after all that"], "no garbage");
    const clear = who.page.locator(".message.clear", { hasText: "sent in clear" });
    assert.equal(await clear.locator(".mark").textContent(), "not encrypted");
  }
  await alice.page.locator('#chat[data-encryption="encrypted"]').waitFor();
  // Reloaded, from the history alone: the same.
  await alice.page.reload();
  await alice.page.locator(".message .text", { hasText: "after all that" }).waitFor();
  assert.equal(await alice.page.locator(".message.unreadable").count(), 2);
  assert.deepEqual(await texts(alice), ["the real one", "sent in clear", "after all that"]);
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

test("a peer without a key: the room is marked not encrypted, and the outbox goes in clear only when asked", async () => {
  const bob = await person();
  // Dave's client has no key (made before encryption, or another app).
  const dave = (await api("/users/create", {})).body;
  await connect(bob, dave.publicId);
  await bob.page.locator('#chat[data-encryption="waiting"]').waitFor();
  await send(bob, "meant to be sealed");
  await bob.page.locator(".message.pending .text", { hasText: "meant to be sealed" }).waitFor();
  const room = await openRoom(bob);

  // Dave joins, without a key, and writes.
  assert.equal((await api(`/users/${bob.publicId}/connect`, { privateId: dave.privateId })).status, 200);
  await bob.page.locator('#chat[data-encryption="plaintext"]').waitFor();
  await bob.page.locator("#e2e-label", { hasText: "Not encrypted" }).waitFor();
  assert.equal((await api(`/rooms/${room.roomId}/message`, { privateId: dave.privateId, message: "hello from a plain client" })).status, 204);
  await bob.page.locator(".message.theirs .text", { hasText: "hello from a plain client" }).waitFor();
  // The outbox was not sent: it waits for Bob's say.
  await bob.page.locator("#outbox-note", { hasText: "joined without encryption" }).waitFor();
  await bob.page.locator(".message.pending .mark", { hasText: "not sent" }).waitFor();
  assert.deepEqual((await history(dave.privateId, room.roomId)).map((m) => m.message), ["hello from a plain client"]);

  await bob.page.click("#outbox-clear");
  await bob.page.locator("#outbox-note").waitFor({ state: "hidden" });
  await bob.page.locator(".message.mine:not(.pending) .text", { hasText: "meant to be sealed" }).waitFor();
  await send(bob, "and a plain reply");
  await bob.page.locator(".message.mine .text", { hasText: "and a plain reply" }).waitFor();
  assert.deepEqual((await history(dave.privateId, room.roomId)).map((m) => m.message),
    ["hello from a plain client", "meant to be sealed", "and a plain reply"]);
  // In a room that is not encrypted at all, the page says it once, not on every message.
  assert.equal(await bob.page.locator(".message.clear").count(), 0);
  assert.equal(await bob.page.locator('#rooms .room[data-encryption="plaintext"]').count(), 1);
  assert.deepEqual(bob.problems, [], "no script errors on the page");
});

test("a page without a key pair chats in plaintext with one that has; both rooms say so", async () => {
  const alice = await person();
  const old = await person({ keys: false });
  await connect(old, alice.publicId);
  // No key on this side: never waiting, the room is plaintext from the start.
  await old.page.locator('#chat[data-encryption="plaintext"]').waitFor();
  await old.page.locator("#e2e-label", { hasText: "your identity has no encryption key" }).waitFor();
  await connect(alice, old.publicId);
  await alice.page.locator('#chat[data-encryption="plaintext"]').waitFor();
  await alice.page.locator("#e2e-label", { hasText: `${old.name} joined without an encryption key` }).waitFor();
  await alice.page.locator("#counter", { hasText: "/ 4096" }).waitFor();
  await send(old, "plain from the old page");
  await alice.page.locator(".message.theirs .text", { hasText: "plain from the old page" }).waitFor();
  await send(alice, "plain back");
  await old.page.locator(".message.theirs .text", { hasText: "plain back" }).waitFor();
  const room = await openRoom(alice);
  assert.deepEqual((await history(alice.privateId, room.roomId)).map((m) => m.message),
    ["plain from the old page", "plain back"]);
  for (const who of [alice, old]) {
    await who.page.locator('#rooms .room[data-encryption="plaintext"] .lock', { hasText: "not encrypted" }).waitFor();
    assert.equal(await who.page.locator("#safety").isHidden(), true, "no safety code");
    assert.deepEqual(who.problems, [], "no script errors on the page");
  }
});

/** Bob's page, with the room list's answer for `roomId` changed by `edit(peer)`. */
async function editPeerInList(who, roomId, edit) {
  await who.page.route(`${BASE}/users/rooms`, async (route) => {
    const response = await route.fetch();
    const list = await response.json();
    for (const entry of list.rooms) if (entry.roomId === roomId) edit(entry.peer);
    await route.fulfill({ response, json: list });
  });
}

function otherKey() {
  const { publicKey } = crypto.generateKeyPairSync("x25519");
  return publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64url");
}

test("an encrypted room is never downgraded: a key the server drops or changes is flagged", async () => {
  const { alice, bob, room } = await pair();
  const code = await safetyCode(bob);

  // The server stops reporting Alice's key: the room stays encrypted to the one Bob has,
  // and says so.
  await editPeerInList(bob, room.roomId, (peer) => delete peer.publicKey);
  await bob.page.reload();
  await bob.page.locator('#chat[data-joined="true"]').waitFor();
  await bob.page.locator("#key-warning:not([hidden])", { hasText: "no encryption key" }).waitFor();
  assert.equal(await bob.page.locator("#chat").getAttribute("data-encryption"), "encrypted");
  await send(bob, "still sealed");
  await alice.page.locator(".message.theirs .text", { hasText: "still sealed" }).waitFor();
  const [kept] = await history(alice.privateId, room.roomId);
  assert.match(kept.message, ENVELOPE);

  // The server reports another key for Alice: a visible warning with the new safety
  // code, and nothing is sent until Bob trusts it.
  await bob.page.unroute(`${BASE}/users/rooms`);
  await editPeerInList(bob, room.roomId, (peer) => (peer.publicKey = otherKey()));
  await bob.page.reload();
  await bob.page.locator('#chat[data-key-changed="true"]').waitFor();
  await bob.page.locator("#key-warning:not([hidden])", { hasText: "key changed" }).waitFor();
  const changed = bob.page.locator("#safety-code", { hasText: SAFETY_CODE });
  await changed.waitFor();
  assert.notEqual(await changed.textContent(), code, "the new safety code");
  await send(bob, "should not go");
  await bob.page.locator("#error", { hasText: "key changed" }).waitFor();
  await send(alice, "barrier");
  await bob.page.locator(".message.theirs .text", { hasText: "barrier" }).waitFor();
  assert.deepEqual((await history(alice.privateId, room.roomId)).length, 2, "nothing more was sent");
  // Trusting the new key (after comparing codes) clears the warning.
  bob.page.once("dialog", (dialog) => dialog.accept());
  await bob.page.click("#trust-key");
  await bob.page.locator('#chat[data-key-changed="false"]').waitFor();
  await bob.page.locator("#key-warning").waitFor({ state: "hidden" });
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
});
