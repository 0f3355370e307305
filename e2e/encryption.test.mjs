// End-to-end encryption in the chat page, in headless Chromium (Debian's chromium, driven
// by playwright-core) against the local server that ./scripts/test.sh starts: two pages
// chat encrypted both ways, through the outbox while the peer is away; what reaches the
// realtime server and the history is sealed; forged realtime events neither pick a
// peer's key nor make the peer keyless (the room list alone does); a rotation in another
// tab changes nothing; two tabs opening at once make one identity; a tampered envelope
// shows a notice; a peer without a key is marked and never gets the outbox in clear by
// itself; a key that disappears is flagged, never a downgrade, and one that changes
// compromises the room for good.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import crypto from "node:crypto";
import { chromium } from "playwright-core";
import Pusher from "pusher-js";
import { storedIdentity, storedValues, store, openRoomId } from "./stored.mjs";

const BASE = process.env.SECRET_ROOMS_URL;
const KEY = process.env.PUSHER_KEY ?? "local-key";
if (!BASE) throw new Error("SECRET_ROOMS_URL is not set: run ./scripts/test.sh");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const PHONE = { viewport: { width: 390, height: 780 }, deviceScaleFactor: 2 };
// What the page seals (e2e2, clients/js/PROTOCOL.md): one of three lengths.
const ENVELOPE = /^e2e2\.[A-Za-z0-9_-]+$/;
const SIZES = [475, 1499, 4096];
const ENVELOPE1 = /^e2e1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}$/;
const SAFETY_CODE = /^\d{5}( \d{5}){11}$/;
const NOTICE = "could not be decrypted: it was altered or not meant for this room";
const NOT_FROM_HERE = "not from this browser";
const REPLAYED = "sent a message again that was read before";

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
 * frame the page sends, from before it loads, and `posts` every API path it posts to.
 * `answered` the API paths whose answers it received, in order.
 * `keys: false`: a browser without X25519. `socket`: the page's realtime socket goes
 * through the test, which can then add frames of its own (`forge`), as a realtime server
 * that lies would. */
async function person({ keys = true, socket = null } = {}) {
  const context = await browser.newContext(PHONE);
  if (socket) {
    await context.routeWebSocket(/\/app\//, (ws) => {
      // Everything is relayed both ways, as if the test were not there (but what
      // `socket.drop`, if set, says to leave out of the server's frames).
      const server = ws.connectToServer();
      server.onMessage((frame) => {
        if (!socket.drop?.(String(frame))) ws.send(frame);
      });
      socket.route = ws;
    });
  }
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
  const posts = [];
  const answered = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("response", (response) => {
    if (response.request().method() === "POST") answered.push(new URL(response.url()).pathname);
  });
  page.on("request", (request) => {
    sent.push(request.postData() ?? "");
    if (request.method() === "POST") posts.push(new URL(request.url()).pathname);
  });
  page.on("websocket", (ws) => ws.on("framesent", (frame) => sent.push(String(frame.payload))));
  await page.goto(BASE);
  await page.locator("#my-public-id", { hasText: /^\d{3}-\d{3}(-\d{3})?$/ }).waitFor();
  await page.locator('#status[data-state="connected"]').waitFor();
  await page.locator(`#identity[data-keys="${keys ? "encrypted" : "none"}"]`).waitFor();
  const publicId = await page.locator("#my-public-id").textContent();
  const name = await page.locator("#my-name").textContent();
  const stored = await storedIdentity(page, publicId);
  assert.ok(stored?.privateId, "the identity is stored");
  const { privateId, storageKey } = stored;
  return { context, page, publicId, name, privateId, storageKey, problems, sent, posts, answered };
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
  for (const who of [alice, bob]) await who.page.locator('#chat[data-encryption="encrypted"][data-ratchet="started"]').waitFor();
  return { alice, bob, room: await openRoom(alice) };
}

/** What the people wrote in a room's history: all but its first two envelopes, which
 * are the e2e2 session's hello and start (nothing is sealed before them). */
const spoken = (kept) => kept.slice(2);

async function send(who, text) {
  await who.page.fill("#message", text);
  await who.page.press("#message", "Enter");
}

const texts = (who) => who.page.locator("#messages .text").allTextContents();

/** The room open on the page, as its channel and id. */
async function openRoom(who) {
  const roomId = await openRoomId(who.page);
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

/** The safety code of two raw X25519 public keys (base64url): SHA-256 of both, sorted
 * bytewise and concatenated, as a big-endian number modulo 10^60, in 12 groups of 5. */
function independentSafetyCode(a, b) {
  const [low, high] = [Buffer.from(a, "base64url"), Buffer.from(b, "base64url")].sort(Buffer.compare);
  const digest = crypto.createHash("sha256").update(Buffer.concat([low, high])).digest("hex");
  const digits = (BigInt(`0x${digest}`) % 10n ** 60n).toString().padStart(60, "0");
  return digits.match(/.{5}/g).join(" ");
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
  const plaintexts = ["Before you joined: the first 🔐", "Before you joined: the second", "Alice here, reading you", "é".repeat(1485) + "!"];

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

  // Alice replies; then the most text one encrypted message holds (2971 bytes).
  await send(alice, plaintexts[2]);
  await bob.page.locator(".message.theirs .text", { hasText: plaintexts[2] }).waitFor();
  await alice.page.locator("#counter", { hasText: "/ 2971" }).waitFor();
  await send(alice, plaintexts[3]);
  await bob.page.locator(".message.theirs .text", { hasText: "é!" }).waitFor();
  assert.deepEqual(await texts(bob), plaintexts);
  assert.deepEqual(await texts(alice), plaintexts);

  // The same safety code on both sides, and the one computed here from the two keys the
  // server's room lists name, as docs/chat-page.md describes it (not with the page's code).
  const code = await safetyCode(alice);
  assert.equal(await safetyCode(bob), code);
  const keyOf = async (lister) =>
    (await api("/users/rooms", { privateId: lister.privateId })).body.rooms[0].peer.publicKey;
  assert.equal(code, independentSafetyCode(await keyOf(alice), await keyOf(bob)));

  // Nothing in clear reached the realtime server or the history.
  // Four messages, and the session's two first envelopes: the hello of the member with
  // the larger key, and the other's start.
  await until(() => heard.messages.length === 6, "six relayed envelopes");
  const kept = await history(alice.privateId, room.roomId);
  assert.equal(kept.length, 6);
  assert.deepEqual(kept.filter((m) => m.from.publicId === bob.publicId).length, 3);
  for (const { message } of [...heard.messages, ...kept]) {
    assert.match(message, ENVELOPE);
    assert.ok(SIZES.includes(message.length), `a size class's length: ${message.length}`);
    for (const text of plaintexts) assert.ok(!message.includes(text));
  }
  // Nor did it leave either browser in anything else it sent (which was recorded: the
  // envelopes are in it).
  for (const who of [alice, bob]) {
    assert.ok(who.sent.filter((body) => /e2e2\.[A-Za-z0-9_-]{400}/.test(body)).length >= 2, "the pages' requests were recorded");
    for (const text of plaintexts) {
      assert.ok(!who.sent.some((body) => body.includes(text) || body.includes(JSON.stringify(text).slice(1, -1))),
        `"${text.slice(0, 20)}…" never left the browser`);
    }
  }
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

/** Resolves once every request `who`'s page made so far has been seen by the test: the
 * page fetches itself, and requests are reported in the order they were made. A POST
 * the page made before (a message sent in clear, say) is in `who.posts` by then. */
async function requestsSoFar(who) {
  const marker = `/?barrier=${Math.random()}`;
  const seen = new Promise((resolve) => {
    const onRequest = (request) => {
      if (request.url().endsWith(marker)) {
        who.page.off("request", onRequest);
        resolve();
      }
    };
    who.page.on("request", onRequest);
  });
  await who.page.evaluate((url) => fetch(url, { cache: "no-store" }).then((r) => r.text()), marker);
  await seen;
}

/** Resolves once every send `who`'s page queued so far is over, and its requests seen:
 * the page's client sends one message at a time under the Web Lock `<storage key>:send`
 * (its `name` is the page's storage key), so taking that lock waits for any send under
 * way or waiting for it. */
async function sendsSettled(who) {
  await who.page.evaluate((storageKey) => navigator.locks.request(`${storageKey}:send`, () => {}), who.storageKey);
  await requestsSoFar(who);
}

/** `data` as event `event` on `channel`, added to the page's socket as if its realtime
 * server had sent it: what a publish through the realtime server's REST API delivers
 * when whoever holds the app's secret (the Pusher account, or anyone who has its
 * credentials) forges one. */
function forge(socket, channel, event, data) {
  assert.ok(socket.route, "the page's socket goes through the test");
  socket.route.send(JSON.stringify({ event, channel, data: JSON.stringify(data) }));
}

test("a peer's key comes from the room list only: forged room events neither pick it nor make the peer keyless", async () => {
  const socket = {};
  const bob = await person({ socket });
  const alice = await person();
  await connect(bob, alice.publicId);
  await bob.page.locator('#chat[data-encryption="waiting"]').waitFor();
  await send(bob, "for Alice only");
  await bob.page.locator(".message.pending .text", { hasText: "for Alice only" }).waitFor();
  const room = await openRoom(bob);
  const { inboxChannel } = (await api("/users/rooms", { privateId: bob.privateId })).body;
  const lists = () => bob.posts.filter((path) => path === "/users/rooms").length;

  // Alice "joins" with a key of the attacker's, announced on the room's channel and on
  // Bob's inbox; then "joins" without any key.
  const attacker = otherKey();
  const announced = (from) => ({ roomId: room.roomId, channel: room.channel, from });
  const forgeries = [
    [room.channel, announced({ publicId: alice.publicId, username: alice.name, publicKey: attacker })],
    [inboxChannel, announced({ publicId: alice.publicId, username: alice.name, publicKey: attacker })],
    [room.channel, announced({ publicId: alice.publicId, username: alice.name })],
    [inboxChannel, announced({ publicId: alice.publicId, username: alice.name })],
  ];
  for (const [channel, data] of forgeries) {
    const before = lists();
    forge(socket, channel, "room", data);
    // The page heard it (it is a hint: it asks the server for the room list again), and
    // the list, which has no key for Alice, is all it goes by: once the page has applied
    // every list it asked for, the forged key or its absence would have shown.
    await until(() => lists() > before, `a room list asked for after the forged event on ${channel}`);
    await bob.page.waitForFunction((asked) => Number(document.body.dataset.lists ?? 0) >= asked, lists());
    assert.equal(await bob.page.locator("#chat").getAttribute("data-encryption"), "waiting");
  }
  await bob.page.locator("#e2e-label", { hasText: "Waiting for" }).waitFor();
  await bob.page.locator(".message.pending .mark", { hasText: "waiting for" }).waitFor();
  assert.equal(await bob.page.locator("#safety").isHidden(), true, "no safety code");
  assert.ok(!bob.posts.includes(`/rooms/${room.roomId}/message`), "nothing was sent");
  assert.deepEqual(await history(bob.privateId, room.roomId), [], "nothing was kept");

  // Alice really joins: the outbox goes out sealed to her real key, which she can open.
  const offered = alice.page.locator('#rooms .room[data-joined="false"]', { hasText: bob.name });
  await offered.locator(".join").click();
  await alice.page.locator(".message.theirs .text", { hasText: "for Alice only" }).waitFor();
  await bob.page.locator('#chat[data-encryption="encrypted"]').waitFor();
  await bob.page.locator("#outbox-note").waitFor({ state: "hidden" });
  // Bob's message, after the session's hello and start (one from each side).
  const kept = await history(bob.privateId, room.roomId);
  assert.equal(kept.length, 3);
  assert.equal(kept.filter((m) => m.from.publicId === bob.publicId).length, 2);
  for (const m of kept) assert.match(m.message, ENVELOPE);
  assert.equal(await safetyCode(bob), await safetyCode(alice), "Bob's page has Alice's real key");
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

test("a public id rotated in another tab: what each tab seals opens for the peer and stays mine", async () => {
  const { alice, bob, room } = await pair();
  // A second tab of Alice's identity, in the same room.
  const tab = { page: await alice.context.newPage(), problems: [] };
  tab.page.on("pageerror", (error) => tab.problems.push(error.message));
  await tab.page.goto(BASE);
  await tab.page.locator('#chat[data-joined="true"]').waitFor();
  await tab.page.locator('#chat[data-encryption="encrypted"]').waitFor();
  tab.page.once("dialog", (dialog) => dialog.accept());
  await tab.page.click("#rotate");
  const rotated = tab.page.locator("#my-public-id", { hasText: /^\d{3}-\d{3}-\d{3}$/ });
  await rotated.waitFor();
  const newId = await rotated.textContent();

  await send(alice, "from the first tab");
  await bob.page.locator(".message.theirs .text", { hasText: "from the first tab" }).waitFor();
  await send(tab, "from the second tab");
  await bob.page.locator(".message.theirs .text", { hasText: "from the second tab" }).waitFor();
  await alice.page.locator(".message.mine .text", { hasText: "from the second tab" }).waitFor();
  await tab.page.locator(".message.mine .text", { hasText: "from the first tab" }).waitFor();
  await send(bob, "both arrived");
  for (const page of [alice.page, tab.page]) await page.locator(".message.theirs .text", { hasText: "both arrived" }).waitFor();
  for (const page of [alice.page, tab.page, bob.page]) {
    assert.equal(await page.locator(".message.unreadable").count(), 0, "nothing shows as altered");
  }
  // The first tab caught up with the new id.
  await alice.page.locator("#my-public-id", { hasText: newId }).waitFor();
  const kept = spoken(await history(bob.privateId, room.roomId));
  assert.deepEqual(kept.map((m) => m.from.publicId), [newId, newId, bob.publicId], "the server says the new id");
  for (const who of [alice, bob, tab]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

test("an outbox two tabs share goes out once: one tab at a time sends it (a Web Lock)", async () => {
  const bob = await person();
  const alice = await person();
  await connect(bob, alice.publicId);
  await bob.page.locator('#chat[data-encryption="waiting"]').waitFor();
  const tab = { page: await bob.context.newPage(), problems: [], posts: [] };
  tab.page.on("pageerror", (error) => tab.problems.push(error.message));
  tab.page.on("request", (request) => {
    if (request.method() === "POST") tab.posts.push(new URL(request.url()).pathname);
  });
  await tab.page.goto(BASE);
  await tab.page.locator('#chat[data-encryption="waiting"]').waitFor();
  // Each one queued before the next is typed (the composer clears itself once its send
  // is queued, which would take the next text with it).
  for (const text of ["one", "two", "three"]) {
    await send(bob, text);
    await bob.page.locator(".message.pending .text", { hasText: text }).waitFor();
  }
  await tab.page.locator(".message.pending .text", { hasText: "three" }).waitFor();
  // Alice joins: both tabs learn her key at once, and both would flush what they share.
  await connect(alice, bob.publicId);
  await alice.page.locator(".message.theirs .text", { hasText: "three" }).waitFor();
  for (const page of [bob.page, tab.page]) {
    await until(async () => (await page.locator(".message.pending").count()) === 0, "the outbox sent");
  }
  await requestsSoFar(bob);
  await requestsSoFar(tab);
  const room = await openRoom(bob);
  // A message shows as sent once it arrives live, and the server publishes only what it
  // kept: the three are in the history.
  const kept = spoken(await history(alice.privateId, room.roomId));
  assert.equal(kept.length, 3, `each message once: ${kept.length} kept`);
  // Posted once each, by one tab or the other: the server would keep a second post
  // under the same id only once, so the kept count alone cannot show a missing lock.
  // Three messages and Bob's hello or start.
  const posted = [...bob.posts, ...tab.posts].filter((path) => path === `/rooms/${room.roomId}/message`);
  assert.equal(posted.length, 4, `each message posted once: ${posted.length} posts`);
  assert.deepEqual(tab.problems, [], "no script errors on the page");
});

test("an answer lost mid-send: the outbox sends again under the same id and envelope, kept and shown once", async () => {
  const bob = await person();
  const alice = await person();
  await connect(bob, alice.publicId);
  await bob.page.locator('#chat[data-encryption="waiting"]').waitFor();
  await send(bob, "only once");
  await bob.page.locator(".message.pending .text", { hasText: "only once" }).waitFor();
  // The message's first post (after the session's hello or start, Bob's first post)
  // reaches the server, which keeps and publishes it; its answer is lost.
  const posts = [];
  let bodies = [];
  await bob.context.route(/\/rooms\/[^/]+\/message$/, async (route) => {
    const body = JSON.parse(route.request().postData());
    posts.push(body);
    const ids = [...new Set(posts.map((p) => p.id))];
    bodies = posts.filter((p) => p.id === ids[1]);
    if (body.id === ids[1] && bodies.length === 1) {
      await route.fetch();
      await route.abort("connectionreset");
    } else {
      await route.continue();
    }
  });
  await connect(alice, bob.publicId);
  await alice.page.locator(".message.theirs .text", { hasText: "only once" }).waitFor();
  // The message arrived live (from the first post): the page shows it as sent at once;
  // the outbox still sends it again, for the answer it never had.
  await until(() => bodies.length === 2, "the outbox sent it again");
  await until(async () => (await bob.page.locator(".message.pending").count()) === 0, "nothing pending");
  assert.ok(bodies[0].id.length >= 22, "under an id of 128 bits");
  assert.equal(bodies[1].id, bodies[0].id, "the same id");
  assert.equal(bodies[1].message, bodies[0].message, "the same envelope");
  const room = await openRoom(bob);
  const kept = spoken(await history(alice.privateId, room.roomId));
  assert.deepEqual(kept.map((m) => m.id), [bodies[0].id], "kept once, under the page's id");
  // A later message, after which the lost one still shows once on both pages.
  await send(bob, "and then");
  for (const page of [alice.page, bob.page]) {
    await page.locator(".message .text", { hasText: "and then" }).waitFor();
    assert.equal(await page.locator(".message .text", { hasText: "only once" }).count(), 1);
  }
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

test("tabs that open at once make one identity, whose key pair is the one kept", async () => {
  const context = await browser.newContext(PHONE);
  // A slow create: both tabs are making their identity at the same time.
  await context.route(`${BASE}/users/create`, async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    await route.continue();
  });
  const pages = await Promise.all([context.newPage(), context.newPage(), context.newPage()]);
  await Promise.all(pages.map((page) => page.goto(BASE)));
  const ids = [];
  for (const page of pages) {
    const id = page.locator("#my-public-id", { hasText: /^\d{3}-\d{3}(-\d{3})?$/ });
    await id.waitFor();
    await page.locator('#identity[data-keys="encrypted"]').waitFor();
    ids.push(await id.textContent());
  }
  assert.deepEqual(new Set(ids).size, 1, `one identity: ${ids.join(", ")}`);
  // What is stored agrees: a page opened after them has the same identity and its key.
  const later = await context.newPage();
  await later.goto(BASE);
  await later.locator("#my-public-id", { hasText: ids[0] }).waitFor();
  await later.locator('#identity[data-keys="encrypted"]').waitFor();
  await context.close();
});

test("a tampered or re-attributed envelope shows a notice, never garbage; a message in clear is marked", async () => {
  const { alice, bob, room } = await pair();
  await send(bob, "the real one");
  await alice.page.locator(".message.theirs .text", { hasText: "the real one" }).waitFor();
  const [original] = spoken(await history(alice.privateId, room.roomId));
  assert.match(original.message, ENVELOPE);

  // A byte of the ciphertext flipped (after the 80-byte header), under a sequence number
  // not used yet (a used one is refused as a replay before any key is tried), posted by
  // Bob's identity: it looks like an envelope.
  const bytes = Buffer.from(original.message.slice("e2e2.".length), "base64url");
  bytes.writeUInt32BE(999, 40);
  bytes[100] ^= 0x01;
  const tampered = `e2e2.${bytes.toString("base64url")}`;
  assert.match(tampered, ENVELOPE);
  assert.equal(tampered.length, original.message.length);
  assert.equal((await api(`/rooms/${room.roomId}/message`, { privateId: bob.privateId, message: tampered })).status, 204);
  // Bob's untouched envelope, posted again by Alice's identity: the server says she sent
  // it, which its additional data denies.
  assert.equal((await api(`/rooms/${room.roomId}/message`, { privateId: alice.privateId, message: original.message })).status, 204);
  // A message in clear, from a client that does not encrypt.
  assert.equal((await api(`/rooms/${room.roomId}/message`, { privateId: bob.privateId, message: "sent in clear" })).status, 204);
  await send(bob, "after all that");

  for (const who of [alice, bob]) {
    await who.page.locator(".message .text", { hasText: "after all that" }).waitFor();
    // Each page: one that does not open (the peer's, altered or re-attributed), and one
    // the server says it sent, which it never sealed (the other: e2e2 opens none of
    // its own, it shows what it kept).
    // Live events are opened side by side: a later one may show first. The peer's
    // envelope that does not open is "altered", or "replayed" where its sequence
    // number was read before (which one depends on who sealed what first).
    const refused = new RegExp(`${NOTICE}|${REPLAYED}`);
    for (const text of [refused, NOT_FROM_HERE]) await who.page.locator(".message.unreadable .notice", { hasText: text }).first().waitFor();
    assert.equal(await who.page.locator(".message.unreadable .notice", { hasText: refused }).count(), 1, "one notice");
    assert.equal(await who.page.locator(".message.unreadable .notice", { hasText: NOT_FROM_HERE }).count(), 1, "one notice");
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
  // Each text goes in clear only when Bob says so for it.
  await send(bob, "and a plain reply");
  await bob.page.locator(".message.pending .text", { hasText: "and a plain reply" }).waitFor();
  await bob.page.click("#outbox-clear");
  await bob.page.locator(".message.mine:not(.pending) .text", { hasText: "and a plain reply" }).waitFor();
  assert.deepEqual((await history(dave.privateId, room.roomId)).map((m) => m.message),
    ["hello from a plain client", "meant to be sealed", "and a plain reply"]);
  // In a room that is not encrypted at all, the page says it once, not on every message.
  assert.equal(await bob.page.locator(".message.clear").count(), 0);
  assert.equal(await bob.page.locator('#rooms .room[data-encryption="plaintext"]').count(), 1);
  assert.deepEqual(bob.problems, [], "no script errors on the page");
});

test("text typed while waiting is not sent in clear when the peer turns out keyless; consent covers only what was shown", async () => {
  const bob = await person();
  const dave = (await api("/users/create", {})).body;
  await connect(bob, dave.publicId);
  await bob.page.locator('#chat[data-encryption="waiting"]').waitFor();
  const room = await openRoom(bob);
  // Typed while the room waits; Dave joins without a key before Enter.
  await bob.page.fill("#message", "typed while waiting");
  assert.equal((await api(`/users/${bob.publicId}/connect`, { privateId: dave.privateId })).status, 200);
  await bob.page.locator('#chat[data-encryption="plaintext"]').waitFor();
  await bob.page.press("#message", "Enter");
  await bob.page.locator(".message.pending .text", { hasText: "typed while waiting" }).waitFor();
  await bob.page.locator("#outbox-note", { hasText: "joined without encryption" }).waitFor();
  await sendsSettled(bob);
  assert.deepEqual(await history(dave.privateId, room.roomId), [], "nothing went out in clear");
  assert.ok(!bob.posts.includes(`/rooms/${room.roomId}/message`), "nothing was posted");

  // A message put in the outbox where Bob cannot see it (as another tab could, just
  // before the click) is not covered by his say.
  const [{ value: items }] = (await storedValues(bob.page, `outbox:${room.roomId}`)).filter((entry) => entry.database === bob.storageKey);
  assert.equal(items.length, 1, "the page's outbox holds what Bob wrote");
  const unseen = { id: crypto.randomBytes(16).toString("base64url"), text: "never shown", clear: false, queuedAt: Date.now(), attempts: 0 };
  await store(bob.page, bob.storageKey, `outbox:${room.roomId}`, [...items, unseen]);
  await bob.page.click("#outbox-clear");
  await bob.page.locator(".message.mine:not(.pending) .text", { hasText: "typed while waiting" }).waitFor();
  await bob.page.locator(".message.pending .text", { hasText: "never shown" }).waitFor();
  await sendsSettled(bob);
  assert.deepEqual((await history(dave.privateId, room.roomId)).map((m) => m.message), ["typed while waiting"]);
  // One post in all: the one Bob consented to (a retry of an earlier one, made without
  // his say, would be kept once under its id, but posted twice).
  assert.equal(bob.posts.filter((path) => path === `/rooms/${room.roomId}/message`).length, 1);
  assert.deepEqual(bob.problems, [], "no script errors on the page");
});

test("forged message events: malformed or from strangers are dropped, never name the peer, and the history wins", async () => {
  const socket = {};
  const bob = await person({ socket });
  const alice = await person();
  await connect(bob, alice.publicId);
  await connect(alice, bob.publicId);
  // The session started on both sides (its hello and start read) before any event of
  // Bob's is dropped: Alice can seal without a word from him.
  for (const who of [alice, bob]) await who.page.locator('#chat[data-encryption="encrypted"][data-ratchet="started"]').waitFor();
  const room = await openRoom(bob);
  const sentAt = new Date().toISOString();
  const answeredBefore = bob.answered.length;
  // Malformed, and from someone not in the room: dropped.
  forge(socket, room.channel, "message", { id: 7, sentAt, message: "bad id", from: { publicId: alice.publicId } });
  forge(socket, room.channel, "message", { id: "x1", sentAt, message: "stranger", from: { publicId: "999-999" } });
  // A message from an id the page does not know makes it read the room list, then the
  // history, again: that catch-up is over before Alice writes, or it could read her
  // message from the history before the forged copy below arrives.
  // The client asks a few times, backing off (7 rounds of list then history, about
  // 2.5 s), in case the list or the history trails the event (a server of an earlier
  // version published a message beside its history write): all of them are over first.
  await until(() => {
    const since = bob.answered.slice(answeredBefore);
    const lists = since.flatMap((path, at) => (path === "/users/rooms" ? [at] : []));
    return lists.length >= 7 && since.indexOf(`/rooms/${room.roomId}/messages`, lists[6]) > lists[6];
  }, "the page's catch-up after a stranger's message", 20_000);
  // From "Alice", with another name: shown (marked as in clear), under the list's name.
  forge(socket, room.channel, "message", { id: "x2", sentAt, message: "forged hello", from: { publicId: alice.publicId, username: "Mallory" } });
  await bob.page.locator(".message.theirs .text", { hasText: "forged hello" }).waitFor();
  assert.equal(await bob.page.locator(".message.theirs .author").first().textContent(), alice.name);
  assert.equal(await bob.page.locator("#peer-name").textContent(), alice.name);
  assert.deepEqual(await texts(bob), ["forged hello"]);

  // Alice writes, but the real event does not reach Bob's page: a forged one with the
  // real message's id does. The history, fetched when the channel is joined again, wins.
  socket.drop = (frame) => frame.includes('"event":"message"');
  await send(alice, "the real one");
  await until(async () => spoken(await history(alice.privateId, room.roomId)).length === 1, "Alice's message kept");
  const [real] = spoken(await history(alice.privateId, room.roomId));
  forge(socket, room.channel, "message", { id: real.id, sentAt: real.sentAt, message: "a fake one", from: { publicId: alice.publicId } });
  await bob.page.locator(".message.theirs .text", { hasText: "a fake one" }).waitFor();
  socket.drop = null;
  // The connection drops; the page reconnects, joins the channel again, reads the history.
  socket.route.close();
  await bob.page.locator(".message.theirs .text", { hasText: "the real one" }).waitFor({ timeout: 20_000 });
  assert.equal(await bob.page.locator(".message.theirs .text", { hasText: "a fake one" }).count(), 0);
  assert.equal(await bob.page.locator(`.message[data-id="${real.id}"]`).count(), 1);
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
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
  // Alice has a key: what she writes to a peer without one waits for her say.
  await send(alice, "plain back");
  await alice.page.locator(".message.pending .text", { hasText: "plain back" }).waitFor();
  await alice.page.click("#outbox-clear");
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

/** `who`'s page, with the room list's answer for `roomId` changed by `edit(peer)`;
 * `edited` counts the answers it changed (a check that passes because nothing matched
 * would prove nothing). */
async function editPeerInList(who, roomId, edit) {
  const counter = { edited: 0 };
  await who.page.route(`${BASE}/users/rooms`, async (route) => {
    const response = await route.fetch();
    const list = await response.json();
    for (const entry of list.rooms) {
      if (entry.roomId !== roomId) continue;
      edit(entry.peer);
      counter.edited += 1;
    }
    await route.fulfill({ response, json: list });
  });
  return counter;
}

const rawKey = (publicKey) => publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("base64url");

function otherKey() {
  return rawKey(crypto.generateKeyPairSync("x25519").publicKey);
}

/** An envelope as crypto.js seals one, made here: with `privateKey` and the peer's raw
 * public key `peerKey`, bound to `roomId` and the sender's raw public key `senderKey`. */
function sealWith(privateKey, peerKey, roomId, senderKey, text) {
  const peer = crypto.createPublicKey({ key: { kty: "OKP", crv: "X25519", x: peerKey }, format: "jwk" });
  const shared = crypto.diffieHellman({ privateKey, publicKey: peer });
  const key = Buffer.from(crypto.hkdfSync("sha256", shared, Buffer.alloc(0), `secret-rooms e2e v1 ${roomId}`, 32));
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(`${roomId}\n${senderKey}`));
  const sealed = Buffer.concat([cipher.update(text, "utf8"), cipher.final(), cipher.getAuthTag()]);
  return `e2e1.${iv.toString("base64url")}.${sealed.toString("base64url")}`;
}

test("an encrypted room is never downgraded: a dropped key is flagged, a changed one compromises the room for good", async () => {
  const { alice, bob, room } = await pair();
  const code = await safetyCode(bob);

  // The server stops reporting Alice's key: the room stays encrypted to the one Bob has,
  // and says so.
  const dropped = await editPeerInList(bob, room.roomId, (peer) => delete peer.publicKey);
  await bob.page.reload();
  await bob.page.locator('#chat[data-joined="true"]').waitFor();
  await bob.page.locator("#key-warning:not([hidden])", { hasText: "no encryption key" }).waitFor();
  assert.ok(dropped.edited > 0, "the list Bob's page read was edited");
  assert.equal(await bob.page.locator("#chat").getAttribute("data-encryption"), "encrypted");
  await send(bob, "still sealed");
  await alice.page.locator(".message.theirs .text", { hasText: "still sealed" }).waitFor();
  const [kept] = spoken(await history(alice.privateId, room.roomId));
  assert.match(kept.message, ENVELOPE);

  // The server reports another key for Alice (one it holds the private half of): the room
  // is compromised. A warning with both safety codes, no way to trust the new key, and
  // nothing can be sent.
  await bob.page.unroute(`${BASE}/users/rooms`);
  const attacker = crypto.generateKeyPairSync("x25519");
  const attackerKey = rawKey(attacker.publicKey);
  const changed = await editPeerInList(bob, room.roomId, (peer) => (peer.publicKey = attackerKey));
  await bob.page.reload();
  await bob.page.locator('#chat[data-joined="true"]').waitFor();
  await bob.page.locator('#chat[data-encryption="compromised"]').waitFor();
  assert.ok(changed.edited > 0, "the list Bob's page read was edited");
  assert.equal(await bob.page.locator("#chat").getAttribute("data-key-changed"), "true");
  await bob.page.locator("#key-warning:not([hidden])", { hasText: "key changed" }).waitFor();
  const old = bob.page.locator("#key-warning-old", { hasText: SAFETY_CODE });
  const reported = bob.page.locator("#key-warning-new", { hasText: SAFETY_CODE });
  await old.waitFor();
  await reported.waitFor();
  assert.equal(await old.textContent(), code, "the code the room agreed on");
  assert.notEqual(await reported.textContent(), code, "the new key's code");
  assert.equal(await bob.page.locator("#safety-code").textContent(), code, "the room's code stays the agreed one");
  assert.equal(await bob.page.locator("#key-warning button, #trust-key").count(), 0, "no way to trust the new key");
  assert.equal(await bob.page.locator("#message").isDisabled(), true);
  assert.equal(await bob.page.locator("#send").isDisabled(), true);
  await bob.page.locator('#rooms .room[data-encryption="compromised"]').waitFor();
  // Even a submit that gets past the disabled composer sends nothing.
  await bob.page.evaluate(() => {
    document.getElementById("message").value = "should not go";
    document.getElementById("composer").requestSubmit();
  });
  await bob.page.locator("#error", { hasText: "key changed" }).waitFor();

  // A message sealed with the new key, which the server says Alice sent: a notice, never
  // its text. One sealed with Alice's real key still opens.
  const listed = (await api("/users/rooms", { privateId: alice.privateId })).body.rooms;
  const bobKey = listed.find((entry) => entry.roomId === room.roomId)?.peer.publicKey;
  assert.ok(bobKey, "Bob's key, as Alice's list has it");
  const planted = sealWith(attacker.privateKey, bobKey, room.roomId, attackerKey, "read me, I am Alice");
  assert.equal((await api(`/rooms/${room.roomId}/message`, { privateId: alice.privateId, message: planted })).status, 204);
  await send(alice, "the real Alice");
  await bob.page.locator(".message.theirs .text", { hasText: "the real Alice" }).waitFor();
  const notice = bob.page.locator(".message.unreadable .notice", { hasText: "sealed with a key this room never agreed to" });
  assert.equal(await notice.count(), 1);
  assert.deepEqual(await texts(bob), ["still sealed", "the real Alice"], "the planted text is never shown");
  const all = spoken(await history(alice.privateId, room.roomId));
  assert.deepEqual(all.map((m) => m.from.publicId), [bob.publicId, alice.publicId, alice.publicId], "nothing more from Bob");

  // For good: the list reports Alice's real key again, and the room stays compromised.
  await bob.page.unroute(`${BASE}/users/rooms`);
  await bob.page.reload();
  await bob.page.locator('#chat[data-joined="true"]').waitFor();
  await bob.page.locator(".message.theirs .text", { hasText: "the real Alice" }).waitFor();
  assert.equal(await bob.page.locator("#chat").getAttribute("data-encryption"), "compromised");
  assert.equal(await bob.page.locator("#message").isDisabled(), true);
  await notice.waitFor();
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

// --- e2e2 in the page: forward secrecy, the archive, the transcript's notices ---------

/** In `who`'s page: its session of `roomId` (unsealed with the page's own local key, as
 * a thief with the page's state would), then each of `envelopes` tried with it, and with
 * a session made afresh from the page's identity key. What opened, or why not. */
function stealAndOpen(who, roomId, peerKey, envelopes) {
  return who.page.evaluate(async ([database, roomId, peerKey, envelopes]) => {
    const e2e2 = await import("/client/e2e2.js");
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open(database);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const get = (name) => new Promise((resolve, reject) => {
      const request = db.transaction("values", "readonly").objectStore("values").get(name);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const [localKey, sealed, keyPair, identity] = [await get("localKey"), await get(`e2e2:${roomId}`), await get("keyPair"), await get("identity")];
    db.close();
    const name = `e2e2:${roomId}`;
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: e2e2.fromBase64url(sealed.iv), additionalData: new TextEncoder().encode(name) },
      localKey,
      e2e2.fromBase64url(sealed.data),
    );
    const session = e2e2.deserialize(JSON.parse(new TextDecoder().decode(plain)).session);
    const fresh = (await e2e2.createSession({ privateKey: keyPair.privateKey, publicKey: identity.publicKey, peerPublicKey: peerKey, roomId })).session;
    const tryOpen = async (state, envelope) => {
      try {
        const opened = await e2e2.open(state, envelope);
        return opened.text === null ? "a hello" : `opened: ${opened.text}`;
      } catch (error) {
        return error.reason ?? String(error);
      }
    };
    const results = [];
    for (const envelope of envelopes) results.push([await tryOpen(session, envelope), await tryOpen(fresh, envelope)]);
    return { role: session.role, results };
  }, [who.storageKey, roomId, peerKey, envelopes]);
}

test("e2e2: a page's stolen state opens nothing already read; a reload reads it all from the page's archive", async () => {
  const { alice, bob, room } = await pair();
  const said = [];
  for (let round = 0; round < 3; round += 1) {
    for (const [from, to] of [[alice, bob], [bob, alice]]) {
      const text = `${from === alice ? "Alice" : "Bob"} ${round}`;
      said.push(text);
      await send(from, text);
      await to.page.locator(".message.theirs .text", { hasText: text }).waitFor();
    }
  }
  const kept = await history(bob.privateId, room.roomId);
  for (const m of kept) {
    assert.match(m.message, ENVELOPE);
    assert.ok(SIZES.includes(m.message.length));
  }
  const fromAlice = kept.filter((m) => m.from.publicId === alice.publicId).map((m) => m.message);
  const aliceKey = (await api("/users/rooms", { privateId: bob.privateId })).body.rooms.find((r) => r.roomId === room.roomId).peer.publicKey;
  const { results } = await stealAndOpen(bob, room.roomId, aliceKey, fromAlice);
  assert.equal(results.length, 4, "Alice's hello or start, and her three messages");
  for (const [withSession, withIdentity] of results) {
    assert.ok(!withSession.startsWith("opened"), `the page's session opens nothing read: ${withSession}`);
    assert.ok(!withIdentity.startsWith("opened"), `the identity key opens nothing read: ${withIdentity}`);
  }
  // Bob reloads: the page reads what it read before from its archive, not the server.
  await bob.page.reload();
  await bob.page.locator('#chat[data-joined="true"]').waitFor();
  await bob.page.locator(".message .text", { hasText: "Bob 2" }).waitFor();
  assert.deepEqual(await texts(bob), said);
  assert.equal(await bob.page.locator(".message.unreadable").count(), 0);
  for (const who of [alice, bob]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

test("e2e2: a message the server drops, replays or reorders shows its notice on the page", async () => {
  const { alice, bob, room } = await pair();
  await send(alice, "before");
  await bob.page.locator(".message.theirs .text", { hasText: "before" }).waitFor();
  await bob.page.close();
  for (const text of ["one", "two", "three", "four"]) {
    await send(alice, text);
    await alice.page.locator(".message.mine:not(.pending) .text", { hasText: text }).waitFor();
  }
  const ids = {};
  const written = spoken(await history(alice.privateId, room.roomId));
  ["before", "one", "two", "three", "four"].forEach((text, at) => (ids[text] = written[at].id));
  // Bob comes back through a server that withholds "two", puts "four" before "three",
  // and sends "one" again under another id.
  const page = await bob.context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  await page.route(/\/rooms\/[^/]+\/messages$/, async (route) => {
    const response = await route.fetch();
    const body = await response.json();
    const messages = body.messages.filter((m) => m.id !== ids.two);
    const three = messages.find((m) => m.id === ids.three);
    const four = messages.find((m) => m.id === ids.four);
    if (three && four) [three.sentAt, four.sentAt] = [four.sentAt, three.sentAt];
    const one = messages.find((m) => m.id === ids.one);
    if (one) messages.push({ ...one, id: "replayed-one-0000000000", sentAt: new Date(Date.parse(one.sentAt) + 1).toISOString() });
    await route.fulfill({ response, json: { ...body, messages } });
  });
  await page.goto(BASE);
  await page.locator('#chat[data-joined="true"]').waitFor();
  await page.locator(".message.theirs .text", { hasText: "three" }).waitFor();
  await page.locator(".message.unreadable .notice", { hasText: REPLAYED }).waitFor();
  await page.locator("#messages .gap", { hasText: "A message is missing here" }).waitFor();
  assert.equal(await page.locator(".message.theirs .text", { hasText: "two" }).count(), 0);
  const outOfOrder = page.locator(".message", { has: page.locator(".text", { hasText: "three" }) }).locator(".mark");
  assert.equal(await outOfOrder.textContent(), "⚠ out of order");
  // The gap stands right before "three", after "four".
  const order = await page.locator("#messages > li").evaluateAll((items) =>
    items.map((item) => (item.classList.contains("gap") ? "gap" : item.querySelector(".text")?.textContent ?? "notice")));
  assert.deepEqual(order, ["before", "one", "notice", "four", "gap", "three"]);
  assert.deepEqual(problems, [], "no script errors on the page");
});
