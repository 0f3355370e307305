// The chat page served by the local server, in headless Chromium (Debian's chromium,
// driven by playwright-core): two people chat both ways; a third who connects to an
// unknown public id sees nothing of it. SECRET_ROOMS_URL comes from ./scripts/test.sh.
// Also: malformed ids and oversize messages reported, a reload keeping the identity, the
// history's newest page first, a realtime server that goes away, stored identities of
// older versions, hijack links, the Content-Security-Policy, and absence (an offered
// room, the outbox read in order once the peer joins, unread counts, typing, presence,
// rotation, block). Screenshots go to target/screenshots/ (the README shows two).
// Every page here makes its identity with a key pair, so rooms are end-to-end encrypted
// (encryption.test.mjs covers that part).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { storedIdentity, openRoomId } from "./stored.mjs";

const BASE = process.env.SECRET_ROOMS_URL;
if (!BASE) throw new Error("SECRET_ROOMS_URL is not set: run ./scripts/test.sh");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SCREENSHOTS = path.resolve(process.env.SCREENSHOT_DIR ?? "../target/screenshots");
const PHONE = { viewport: { width: 390, height: 780 }, deviceScaleFactor: 2 };

let browser;

before(async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: ./scripts/test.sh installs Debian's chromium`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => browser?.close());

async function person(context) {
  context ??= await browser.newContext(PHONE);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  if (process.env.PAGE_CONSOLE) page.on("console", (m) => console.log(`page: ${m.type()} ${m.text()}`));
  await page.goto(BASE);
  await page.locator("#my-public-id", { hasText: /^\d{3}-\d{3}(-\d{3})?$/ }).waitFor();
  await page.locator('#status[data-state="connected"]').waitFor();
  const publicId = await page.locator("#my-public-id").textContent();
  const name = await page.locator("#my-name").textContent();
  return { context, page, publicId, name, problems };
}

async function connect(who, peer) {
  await who.page.fill("#peer-id", peer);
  await who.page.click("#connect");
  // This room is open (not still the one before) and joined: its channel subscription
  // succeeded, so sending is enabled.
  await who.page.locator("#peer-label", { hasText: peer }).waitFor();
  await who.page.locator('#chat[data-joined="true"]').waitFor();
}

async function send(who, text) {
  await who.page.fill("#message", text);
  await who.page.press("#message", "Enter");
}

const texts = (who) => who.page.locator("#messages .text").allTextContents();

async function api(path, body) {
  const res = await fetch(BASE + path, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

test("two browsers chat both ways; a third sees nothing of it", async () => {
  const alice = await person();
  const bob = await person();
  assert.notEqual(alice.publicId, bob.publicId);

  await connect(alice, bob.publicId);
  await connect(bob, alice.publicId);
  // Each has the other's key: Bob's from Alice's offer, Alice's from Bob's connect.
  await alice.page.locator('#chat[data-encryption="encrypted"]').waitFor();
  await bob.page.locator('#chat[data-encryption="encrypted"]').waitFor();

  await send(alice, "Hi Bob, it's me 👋");
  await bob.page.locator(".message.theirs .text", { hasText: "Hi Bob, it's me 👋" }).waitFor();
  await alice.page.locator(".message.mine .text", { hasText: "Hi Bob, it's me 👋" }).waitFor();
  const author = await bob.page.locator(".message.theirs .author").first().textContent();
  assert.equal(author, await alice.page.locator("#my-name").textContent());

  await send(bob, "Hello Alice! <b>not bold</b>");
  await alice.page.locator(".message.theirs .text", { hasText: "Hello Alice! <b>not bold</b>" }).waitFor();
  assert.equal(await alice.page.locator(".message.theirs b").count(), 0, "messages are text, never HTML");

  // Carol connects to a public id nobody holds: the room its holder will share, with
  // only her in it until then. Nobody's key is known, so what she writes waits.
  const carol = await person();
  const taken = new Set([alice.publicId, bob.publicId, carol.publicId]);
  const nobody = ["000-000", "000-001", "000-002", "000-003"].find((id) => !taken.has(id));
  await connect(carol, nobody);
  await carol.page.locator('#chat[data-encryption="waiting"]').waitFor();
  await send(carol, "is anyone there?");
  await carol.page.locator(".message.mine.pending .text", { hasText: "is anyone there?" }).waitFor();
  await send(alice, "only for Bob");
  await bob.page.locator(".message.theirs .text", { hasText: "only for Bob" }).waitFor();
  // Someone opens a room with Carol's id: its announcement reaches her socket after
  // anything published to it before, and makes her page ask for her room list. Once her
  // list shows it, a leak of "only for Bob" would have shown too.
  const dave = (await api("/users/create", {})).body;
  assert.equal((await api(`/users/${carol.publicId}/connect`, { privateId: dave.privateId })).status, 200);
  await carol.page.locator('#rooms .room[data-joined="false"]', { hasText: dave.username }).waitFor();
  assert.deepEqual(await texts(carol), ["is anyone there?"]);
  assert.equal(await carol.page.locator(".message:not(.pending)").count(), 0, "nothing left Carol's outbox");

  // Errors a person can act on.
  await alice.page.fill("#peer-id", "12");
  await alice.page.click("#connect");
  await alice.page.locator("#error", { hasText: "six digits" }).waitFor();
  // Encrypted (e2e2), 2971 bytes of text pad to the largest size class: an envelope of 4096.
  await alice.page.fill("#message", "x".repeat(2972));
  await alice.page.locator("#counter.over", { hasText: "2972 / 2971" }).waitFor();
  await alice.page.press("#message", "Enter");
  await alice.page.locator("#error", { hasText: "limit is 2971 bytes" }).waitFor();
  await alice.page.fill("#message", "");

  // The identity and the room survive a reload.
  await alice.page.reload();
  await alice.page.locator('#status[data-state="connected"]').waitFor();
  assert.equal(await alice.page.locator("#my-public-id").textContent(), alice.publicId);
  await alice.page.locator('#chat[data-joined="true"]').waitFor();
  assert.equal(await alice.page.locator("#peer-label").textContent(), bob.publicId);
  // Read back one by one (from the page's archive): the last one shown, all are.
  await alice.page.locator(".message .text", { hasText: "only for Bob" }).waitFor();
  assert.deepEqual(await texts(alice), ["Hi Bob, it's me 👋", "Hello Alice! <b>not bold</b>", "only for Bob"],
    "the conversation so far, read back from the room's history");
  await send(bob, "still there?");
  await alice.page.locator(".message.theirs .text", { hasText: "still there?" }).waitFor();

  // Copy puts the public id on the clipboard.
  await bob.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  await bob.page.click("#copy");
  await bob.page.locator("#copy", { hasText: "Copied" }).waitFor();
  assert.equal(await bob.page.evaluate(() => navigator.clipboard.readText()), bob.publicId);

  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const shot = path.join(SCREENSHOTS, "chat-page.png");
  await send(bob, "See you soon!");
  await alice.page.locator(".message.theirs .text", { hasText: "See you soon" }).waitFor();
  await alice.page.screenshot({ path: shot });
  const png = fs.readFileSync(shot);
  assert.equal(png.subarray(1, 4).toString(), "PNG");
  assert.ok(png.length > 10_000, "the screenshot shows a rendered page");

  for (const who of [alice, bob, carol]) assert.deepEqual(who.problems, [], "no script errors on the page");
});

test("a room of thousands of messages shows its newest page at once, older ones on demand", async () => {
  const alice = await person();
  // Bob, a keyless API client, writes 3000 messages to Alice before she joins.
  const bob = (await api("/users/create", {})).body;
  const opened = await api(`/users/${alice.publicId}/connect`, { privateId: bob.privateId });
  assert.equal(opened.status, 200);
  const room = opened.body.roomId;
  let next = 0;
  const writer = async () => {
    for (let n = next++; n < 3000; n = next++) {
      const sent = await api(`/rooms/${room}/message`, { privateId: bob.privateId, message: `m${n}` });
      assert.equal(sent.status, 204, JSON.stringify(sent.body));
    }
  };
  await Promise.all([writer(), writer(), writer(), writer()]);
  const page = async (before) => (await api(`/rooms/${room}/messages`, { privateId: bob.privateId, before, limit: 100 })).body;
  const newest = await page("");
  const older = await page(newest.next);
  const chronological = (p) => p.messages.map((m) => m.message).reverse();
  // The server's room lists catch up with the 3000 messages (Bob's list shows the last),
  // so that the tests after this one do not wait behind them.
  for (;;) {
    const listed = (await api("/users/rooms", { privateId: bob.privateId })).body;
    if (listed.rooms.find((r) => r.roomId === room)?.lastMessageAt === newest.messages[0].sentAt) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const reads = [];
  alice.page.on("request", (request) => {
    if (request.url().endsWith(`/rooms/${room}/messages`)) reads.push(JSON.parse(request.postData()));
  });
  await connect(alice, bob.publicId);
  await alice.page.locator("#messages .message .text", { hasText: chronological(newest).at(-1) }).waitFor();
  assert.deepEqual(await texts(alice), chronological(newest), "the newest page, oldest of it first");
  assert.equal(reads.length, 1, "one page read, not the whole room");
  assert.equal(reads[0].before, "");
  await alice.page.locator("#older:not([hidden])").waitFor();

  await alice.page.click("#older");
  await alice.page.locator("#messages .message .text", { hasText: new RegExp(`^${chronological(older)[0]}$`) }).waitFor();
  assert.deepEqual(await texts(alice), [...chronological(older), ...chronological(newest)]);
  assert.equal(reads.length, 2);
  assert.equal(reads[1].before, newest.next);
  assert.deepEqual(alice.problems, []);
  await alice.context.close();
});

test("a message that arrives live before its send's answer shows once, as sent", async () => {
  const alice = await person();
  const bob = await person();
  await connect(alice, bob.publicId);
  await connect(bob, alice.publicId);
  // The session started (its hello and start are through): only the message's post is held.
  for (const who of [alice, bob]) await who.page.locator('#chat[data-encryption="encrypted"][data-ratchet="started"]').waitFor();
  // The server keeps and publishes the message; its answer is held back until Alice's
  // page has shown the message as it came live, as on a busy network.
  let release;
  const held = new Promise((resolve) => (release = resolve));
  await alice.page.route(/\/rooms\/[^/]+\/message$/, async (route) => {
    const response = await route.fetch();
    await held;
    await route.fulfill({ response });
  });
  await send(alice, "said once");
  const mine = alice.page.locator(".message.mine .text", { hasText: "said once" });
  await alice.page.locator(".message.mine:not(.pending) .text", { hasText: "said once" }).waitFor();
  assert.equal(await mine.count(), 1, "arrived live while its answer is on the way: shown once");
  release();
  // The outbox sends in order: once the next message shows as sent, the first's answer
  // has come and gone.
  await send(alice, "and again");
  await alice.page.locator(".message.mine:not(.pending) .text", { hasText: "and again" }).waitFor();
  assert.equal(await alice.page.locator(".message.pending").count(), 0);
  assert.equal(await mine.count(), 1);
  await bob.page.locator(".message.theirs .text", { hasText: "said once" }).waitFor();
  assert.deepEqual(alice.problems, []);
  await alice.context.close();
  await bob.context.close();
});

test("the page reports a realtime server that goes away", async () => {
  const someone = await person();
  // Point this page's realtime at a port where nothing listens: it must say so, not hang.
  // (Without the page's Content-Security-Policy, which would refuse the port first.)
  const page = await someone.context.newPage();
  await page.route(`${BASE}/**`, async (route) => {
    const response = await route.fetch();
    const headers = { ...response.headers() };
    delete headers["content-security-policy"];
    await route.fulfill({ response, headers });
  });
  await page.goto(`${BASE}/?api=${encodeURIComponent(BASE)}&key=local-key&wsHost=127.0.0.1&wsPort=9&forceTLS=false`);
  await page.locator('#status[data-state="reconnecting"]').waitFor({ timeout: 10_000 });
});

// A link that keeps the API but points the realtime settings at another server (the
// hijack of issue 12): the page must not sign that server's socket into the rooms of
// the identity it stored, nor ever send that identity's private id along.
async function victimWithARoom() {
  const victim = await person();
  const bob = await person();
  await connect(victim, bob.publicId);
  const privateId = (await storedIdentity(victim.page, victim.publicId))?.privateId;
  assert.ok(privateId, "the victim's identity is stored");
  const roomId = await openRoomId(victim.page);
  assert.ok(roomId, "the victim's open room is stored");
  const channel = `private-${roomId}`;
  return { victim, bob, privateId, channel };
}

const HIJACK = `${BASE}/?api=${encodeURIComponent(BASE)}&key=local-key&wsHost=evil.test&wsPort=6001&forceTLS=false`;

test("an identity stored under the API alone (before v2) moves to the page's own configuration, never to a link's", async () => {
  const stored = (await api("/users/create", {})).body;
  const context = await browser.newContext(PHONE);
  const legacy = `secret-rooms:${BASE}:me`;
  await context.addInitScript(([name, me]) => {
    if (!sessionStorage.getItem("seeded")) {
      localStorage.setItem(name, JSON.stringify(me));
      sessionStorage.setItem("seeded", "yes");
    }
  }, [legacy, { publicId: stored.publicId, privateId: stored.privateId, username: stored.username }]);
  const page = await context.newPage();
  // A link that names its own realtime settings: a fresh identity, and the stored one
  // stays where it was, for the page's own configuration.
  await page.goto(HIJACK);
  await page.locator("#my-public-id", { hasText: /^\d{3}-\d{3}(-\d{3})?$/ }).waitFor();
  assert.notEqual(await page.locator("#my-public-id").textContent(), stored.publicId);
  assert.notEqual(await page.evaluate((name) => localStorage.getItem(name), legacy), null, "not moved to a link's");
  // The page's own configuration takes it, and the old entry goes.
  await page.goto(BASE);
  await page.locator("#my-public-id", { hasText: stored.publicId }).waitFor();
  assert.equal(await page.evaluate((name) => localStorage.getItem(name), legacy), null, "moved");
  await context.close();
});

test("what an earlier page kept in localStorage (identity, outbox) moves into the client's storage and goes on", async () => {
  // An identity without a key (as pages before encryption made), in a room with Dave,
  // who has none either; one message waited in that page's outbox, under a short id.
  const me = (await api("/users/create", {})).body;
  const dave = (await api("/users/create", {})).body;
  const opened = await api(`/users/${dave.publicId}/connect`, { privateId: me.privateId });
  assert.equal(opened.status, 200);
  const roomId = opened.body.roomId;
  assert.equal((await api(`/users/${me.publicId}/connect`, { privateId: dave.privateId })).status, 200);
  const context = await browser.newContext(PHONE);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  // Seeded from a file of the page's origin that runs no script (config.json).
  await page.goto(`${BASE}/config.json`);
  const storageKey = await page.evaluate(([me, roomId]) => {
    const key = `secret-rooms:${JSON.stringify([location.origin, "local-key", null, location.hostname, Number(location.port), false])}`;
    localStorage.setItem(`${key}:me`, JSON.stringify(me));
    localStorage.setItem(`${key}:outbox:${roomId}`, JSON.stringify([{ id: "k3x9", text: "waited in the old outbox", queuedAt: new Date().toISOString() }]));
    localStorage.setItem(`${key}:open`, JSON.stringify(roomId));
    return key;
  }, [{ publicId: me.publicId, privateId: me.privateId, username: me.username }, roomId]);
  await page.goto(BASE);
  await page.locator("#my-public-id", { hasText: me.publicId }).waitFor();
  await page.locator('#chat[data-joined="true"]').waitFor();
  await page.locator(".message.mine:not(.pending) .text", { hasText: "waited in the old outbox" }).waitFor();
  const kept = (await api(`/rooms/${roomId}/messages`, { privateId: dave.privateId, limit: 10 })).body.messages;
  assert.deepEqual(kept.map((m) => m.message), ["waited in the old outbox"], "sent once, in clear (neither side has a key)");
  assert.ok(kept[0].id.length >= 22, "under a new id of 128 bits");
  assert.equal((await storedIdentity(page, me.publicId))?.storageKey, storageKey, "in the client's storage");
  const left = await page.evaluate((key) => Object.keys(localStorage).filter((name) => name.startsWith(`${key}:`)), storageKey);
  assert.deepEqual(left.filter((name) => /:(me|outbox:.*)$/.test(name)), [], "the old entries are gone");
  // A reload finds it where it now is.
  await page.reload();
  await page.locator("#my-public-id", { hasText: me.publicId }).waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test("a hijack link gets a fresh identity, never the stored one's rooms or private id", async () => {
  const { victim, bob, privateId, channel } = await victimWithARoom();
  const page = await victim.context.newPage();
  const authBodies = [];
  // The page's own files without their Content-Security-Policy, so that this checks
  // the page's logic alone (the next test checks the policy).
  await page.route(`${BASE}/**`, async (route) => {
    if (route.request().url().endsWith("/pusher/auth")) authBodies.push(route.request().postData() ?? "");
    const response = await route.fetch();
    const headers = { ...response.headers() };
    delete headers["content-security-policy"];
    await route.fulfill({ response, headers });
  });
  // The attacker's realtime server: hands out a socket id and records what it is sent.
  const subscribes = [];
  let subscribed;
  const roomSubscribe = new Promise((resolve) => { subscribed = resolve; });
  await page.routeWebSocket("ws://evil.test:6001/**", (ws) => {
    ws.send(JSON.stringify({ event: "pusher:connection_established",
      data: JSON.stringify({ socket_id: "1234.5678", activity_timeout: 120 }) }));
    ws.onMessage((text) => {
      const message = JSON.parse(text);
      if (message.event !== "pusher:subscribe") return;
      subscribes.push(message.data);
      ws.send(JSON.stringify({ event: "pusher_internal:subscription_succeeded", channel: message.data.channel, data: "{}" }));
      if (!message.data.channel.startsWith("private-inbox-")) subscribed();
    });
  });
  await page.goto(HIJACK);
  await page.locator("#my-public-id", { hasText: /^\d{3}-\d{3}$/ }).waitFor();
  assert.notEqual(await page.locator("#my-public-id").textContent(), victim.publicId, "a fresh identity");
  await page.locator('#status[data-state="connected"]').waitFor();
  // A room subscription that must reach the attacker's server: any re-entry of the
  // stored rooms would have come before it. (The fresh identity's own inbox comes first.)
  await page.fill("#peer-id", bob.publicId);
  await page.click("#connect");
  await roomSubscribe;
  assert.equal(subscribes.length, 2, JSON.stringify(subscribes));
  assert.ok(subscribes[0].channel.startsWith("private-inbox-"), "its own inbox");
  for (const s of subscribes) assert.notEqual(s.channel, channel, "the victim's room was never subscribed");
  assert.ok(authBodies.length >= 1, "the page asked for its own signature");
  for (const body of authBodies) assert.ok(!body.includes(privateId), "the victim's private id never left");
  // The victim's own page still has its identity and room.
  await victim.page.reload();
  await victim.page.locator('#chat[data-joined="true"]').waitFor();
  assert.equal(await victim.page.locator("#my-public-id").textContent(), victim.publicId);
});

test("the page's Content-Security-Policy keeps it from connecting anywhere its server did not name", async () => {
  const { victim } = await victimWithARoom();
  const page = await victim.context.newPage();
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  const authRequests = [];
  page.on("request", (request) => {
    if (request.url().endsWith("/pusher/auth")) authRequests.push(request.url());
  });
  const violations = page.waitForEvent("console", { predicate: (m) => m.text().includes("Content Security Policy") });
  await page.goto(HIJACK);
  await violations;
  await page.locator('#status[data-state="reconnecting"]').waitFor();
  assert.deepEqual(sockets.filter((url) => url.includes("evil.test")), [], "no socket to the other server");
  assert.deepEqual(authRequests, [], "no signature asked for");
});

test("a conversation survives absence: the inbox, history, unread, typing, presence, block, rotate", async () => {
  // Alice opens the page once, which gives her an identity (and keeps her key pair in
  // this browser), and leaves.
  const first = await person();
  const alicePub = first.publicId;
  await first.page.close();

  // Bob opens a room with her id and writes three messages while she is away. Her key
  // is not known until she joins: they wait in his outbox, unsent.
  const bob = await person();
  await connect(bob, alicePub);
  await bob.page.locator('#chat[data-encryption="waiting"]').waitFor();
  for (const text of ["one", "two", "three"]) {
    await send(bob, text);
    await bob.page.locator(".message.mine.pending .text", { hasText: text }).waitFor();
  }
  await bob.page.locator("#outbox-note", { hasText: "3 messages will be sent encrypted" }).waitFor();

  // Alice comes back: Bob's room is offered in her list; one click joins it, Bob's page
  // learns her key and sends what waited, and the three messages are there, in order.
  const alice = await person(first.context);
  if (process.env.PAGE_CONSOLE) console.log("IDS alice", alicePub, "bob", bob.publicId);
  assert.equal(alice.publicId, alicePub, "the same identity");
  const offered = alice.page.locator('#rooms .room[data-joined="false"]', { hasText: bob.name });
  await offered.waitFor();
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  await offered.locator(".join").click();
  await alice.page.locator('#chat[data-joined="true"]').waitFor();
  await alice.page.locator(".message.theirs .text", { hasText: "three" }).waitFor();
  assert.deepEqual(await texts(alice), ["one", "two", "three"]);
  await bob.page.locator("#outbox-note").waitFor({ state: "hidden" });
  await bob.page.locator('#chat[data-encryption="encrypted"]').waitFor();
  assert.equal(await alice.page.locator("#peer-name").textContent(), bob.name);

  // Presence: each sees the other online once both are in the room.
  await alice.page.locator('#presence[data-online="true"]').waitFor();
  await bob.page.locator('#presence[data-online="true"]').waitFor();
  // Typing: Bob types, Alice sees it.
  await bob.page.locator("#message").pressSequentially("typing…", { delay: 20 });
  await alice.page.locator("#typing:not([hidden])", { hasText: bob.name }).waitFor();
  await bob.page.fill("#message", "");

  // Unread: with another room open, Bob's new message counts on his room's entry.
  const carol = await person();
  await connect(alice, carol.publicId);
  await send(bob, "four");
  const bobsRoom = alice.page.locator('#rooms .room[data-joined="true"]', { hasText: bob.name });
  await bobsRoom.locator(".unread", { hasText: "1" }).waitFor();
  await alice.page.screenshot({ path: path.join(SCREENSHOTS, "room-list.png") });
  await bobsRoom.click();
  await alice.page.locator(".message.theirs .text", { hasText: "four" }).waitFor();
  assert.equal(await bobsRoom.locator(".unread").isHidden(), true, "read once opened");
  await send(alice, "Good to hear from you, Bob.");
  await bob.page.locator(".message.theirs .text", { hasText: "Good to hear from you" }).waitFor();
  await alice.page.screenshot({ path: path.join(SCREENSHOTS, "conversation.png") });

  // Rotation: a new public id after a confirmation; the rooms stay.
  alice.page.once("dialog", (dialog) => dialog.accept());
  await alice.page.click("#rotate");
  await alice.page.locator("#my-public-id", { hasText: /^\d{3}-\d{3}-\d{3}$/ }).waitFor();
  assert.notEqual(await alice.page.locator("#my-public-id").textContent(), alicePub);
  await send(alice, "new id, same room");
  await bob.page.locator(".message.theirs .text", { hasText: "new id, same room" }).waitFor();

  // Block: after a confirmation the room closes for both; Bob's next message is refused.
  alice.page.once("dialog", (dialog) => dialog.accept());
  await alice.page.click("#block");
  await alice.page.locator("#closed-note:not([hidden])").waitFor();
  await send(bob, "hello?");
  await bob.page.locator("#error", { hasText: "closed for good" }).waitFor();
  assert.ok(!(await texts(alice)).includes("hello?"));
  await bob.page.locator("#closed-note:not([hidden])").waitFor();

  for (const who of [alice, bob, carol]) assert.deepEqual(who.problems, [], "no script errors on the page");
});
