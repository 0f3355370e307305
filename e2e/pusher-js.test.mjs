// End to end with the official Pusher client library (pusher-js, Node build) against
// the local server that ./scripts/test.sh starts: SECRET_ROOMS_URL and PUSHER_KEY
// come from it. Members subscribe through /pusher/auth and receive each other's
// messages; non-members, forged signatures (4009), unknown keys (4001) and badly signed
// REST publishes are refused; client events reach the other member only, from
// subscribers only, at most 10 a second; connects are announced on the inbox channel.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import Pusher from "pusher-js";

const BASE = process.env.SECRET_ROOMS_URL;
const KEY = process.env.PUSHER_KEY ?? "local-key";
if (!BASE) throw new Error("SECRET_ROOMS_URL is not set: run ./scripts/test.sh");
const { hostname, port } = new URL(BASE);
const clients = [];

after(() => clients.forEach((c) => c.disconnect()));

async function post(path, body, headers = { "content-type": "application/json" }) {
  const res = await fetch(BASE + path, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

async function createUser() {
  const { status, body } = await post("/users/create", {});
  assert.equal(status, 201);
  return body;
}

function client(privateId, overrides = {}) {
  const pusher = new Pusher(KEY, {
    cluster: "local",
    wsHost: hostname,
    wsPort: Number(port),
    forceTLS: false,
    enabledTransports: ["ws"],
    disableStats: true,
    channelAuthorization: { endpoint: `${BASE}/pusher/auth`, transport: "ajax", params: { privateId } },
    ...overrides,
  });
  clients.push(pusher);
  return pusher;
}

/** Resolves with "ok" on subscription_succeeded, or the error on subscription_error. */
function subscribe(pusher, channelName) {
  const channel = pusher.subscribe(channelName);
  return new Promise((resolve) => {
    channel.bind("pusher:subscription_succeeded", () => resolve({ channel, result: "ok" }));
    channel.bind("pusher:subscription_error", (error) => resolve({ channel, result: error }));
  });
}

function nextEvent(channel, name, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event within ${ms} ms`)), ms);
    channel.bind(name, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

async function pairedRoom() {
  const alice = await createUser();
  const bob = await createUser();
  const a = await post(`/users/${bob.publicId}/connect`, { privateId: alice.privateId });
  const b = await post(`/users/${alice.publicId}/connect`, { privateId: bob.privateId });
  assert.equal(a.status, 200);
  assert.deepEqual(a.body, b.body, "both sides get the same room");
  return { alice, bob, room: a.body };
}

test("two members subscribe through /pusher/auth and receive each other's messages", async () => {
  const { alice, bob, room } = await pairedRoom();
  const aliceSub = await subscribe(client(alice.privateId), room.channel);
  const bobSub = await subscribe(client(bob.privateId), room.channel);
  assert.equal(aliceSub.result, "ok");
  assert.equal(bobSub.result, "ok");

  const atBob = nextEvent(bobSub.channel, "message");
  const sent = await post(`/rooms/${room.roomId}/message`, { privateId: alice.privateId, message: "hi Bob 👋" });
  assert.equal(sent.status, 204);
  const data = await atBob;
  assert.equal(data.message, "hi Bob 👋");
  assert.equal(data.roomId, room.roomId);
  assert.deepEqual(data.from, { publicId: alice.publicId, username: alice.username });
  assert.match(data.id, /^[0-9a-f]{32}$/);
  assert.ok(!Number.isNaN(Date.parse(data.sentAt)));
  assert.deepEqual(Object.keys(data).sort(), ["from", "id", "message", "roomId", "sentAt"]);

  const atAlice = nextEvent(aliceSub.channel, "message");
  await post(`/rooms/${room.roomId}/message`, { privateId: bob.privateId, message: "hi Alice" });
  assert.equal((await atAlice).from.publicId, bob.publicId);
});

test("a non-member's subscription is refused", async () => {
  const { room } = await pairedRoom();
  const carol = await createUser();
  const { result } = await subscribe(client(carol.privateId), room.channel);
  assert.notEqual(result, "ok");
  assert.equal(result.status, 403, "the service's /pusher/auth refuses a non-member");
});

test("the realtime server refuses a forged channel signature", async () => {
  const { alice, bob, room } = await pairedRoom();
  const forged = client(alice.privateId, {
    channelAuthorization: {
      customHandler: (_params, callback) => callback(null, { auth: `${KEY}:${"0".repeat(64)}` }),
    },
  });
  const connectionError = new Promise((resolve) => forged.connection.bind("error", resolve));
  const { channel, result } = await subscribe(forged, room.channel);
  assert.notEqual(result, "ok");
  assert.equal(result.type, "AuthError");
  // Pusher's code for a failed authorization, as a pusher:error frame.
  const error = await connectionError;
  assert.equal(error.type, "PusherError");
  assert.equal(error.data?.code, 4009);
  // The forged subscriber hears nothing of the room: everything its connection receives
  // is logged, and a ping sent after the message was published is answered after
  // anything the server had queued for it (one socket, in order).
  const heard = [];
  forged.bind_global((event) => heard.push(event));
  let leaked = false;
  channel.bind("message", () => (leaked = true));
  const bobSub = await subscribe(client(bob.privateId), room.channel);
  const atBob = nextEvent(bobSub.channel, "message");
  await post(`/rooms/${room.roomId}/message`, { privateId: alice.privateId, message: "secret" });
  await atBob;
  const pong = new Promise((resolve) => forged.connection.bind("message", (m) => m.event === "pusher:pong" && resolve()));
  forged.send_event("pusher:ping", {});
  await pong;
  assert.equal(leaked, false);
  assert.ok(heard.includes("pusher:pong"), "what the connection received was recorded, the ping's answer included");
  assert.deepEqual(heard.filter((e) => !String(e).startsWith("pusher")), []);
});

test("an unknown app key gets pusher:error 4001", async () => {
  const wrong = new Pusher("wrong-key", { cluster: "local", wsHost: hostname, wsPort: Number(port), forceTLS: false, enabledTransports: ["ws"], disableStats: true });
  clients.push(wrong);
  const error = await new Promise((resolve) => wrong.connection.bind("error", resolve));
  // pusher-js wraps the server's pusher:error frame in its WebSocketError.
  assert.equal(error.error?.type, "PusherError");
  assert.equal(error.error?.data?.code, 4001);
});

test("a REST publish with a bad signature is refused", async () => {
  const body = JSON.stringify({ name: "message", channels: ["private-x"], data: "{}" });
  const md5 = crypto.createHash("md5").update(body).digest("hex");
  const timestamp = Math.floor(Date.now() / 1000);
  const query = `auth_key=${KEY}&auth_timestamp=${timestamp}&auth_version=1.0&body_md5=${md5}`;
  const path = "/apps/local/events";
  const signature = crypto.createHmac("sha256", "not-the-secret").update(`POST\n${path}\n${query}`).digest("hex");
  const res = await fetch(`${BASE}${path}?${query}&auth_signature=${signature}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  assert.equal(res.status, 401);
});

/** Resolves once the server answered a ping on `pusher`'s socket: everything the server
 * had queued for that socket before (events included) has arrived by then. */
function barrier(pusher) {
  return new Promise((resolve) => {
    const onMessage = (m) => {
      if (m.event === "pusher:pong") {
        pusher.connection.unbind("message", onMessage);
        resolve();
      }
    };
    pusher.connection.bind("message", onMessage);
    pusher.send_event("pusher:ping", {});
  });
}

test("typing: a client event reaches the other member, never its sender", async () => {
  const { alice, bob, room } = await pairedRoom();
  const a = client(alice.privateId);
  const b = client(bob.privateId);
  const aliceSub = await subscribe(a, room.channel);
  const bobSub = await subscribe(b, room.channel);
  let echoed = false;
  aliceSub.channel.bind("client-typing", () => (echoed = true));
  const atBob = nextEvent(bobSub.channel, "client-typing");
  assert.equal(aliceSub.channel.trigger("client-typing", { typing: true }), true);
  assert.deepEqual(await atBob, { typing: true });
  // Bob's reply reaches Alice after her own event would have, on her one socket.
  const atAlice = nextEvent(aliceSub.channel, "client-here");
  bobSub.channel.trigger("client-here", { hello: false });
  assert.deepEqual(await atAlice, { hello: false });
  assert.equal(echoed, false, "the sender does not hear its own client event");
});

test("client events: only from a subscriber, at most 10 a second per connection", async () => {
  const { alice, bob, room } = await pairedRoom();
  const a = client(alice.privateId);
  const b = client(bob.privateId);
  const bobSub = await subscribe(b, room.channel);
  // Alice is not subscribed: her client event is refused and reaches nobody.
  if (a.connection.state !== "connected") {
    await new Promise((resolve) => a.connection.bind("connected", resolve));
  }
  const refused = new Promise((resolve) => a.connection.bind("error", resolve));
  a.send_event("client-typing", { typing: true }, room.channel);
  const error = await refused;
  assert.match(error.data?.message ?? "", /subscription/);
  let heard = 0;
  bobSub.channel.bind("client-typing", () => (heard += 1));
  await barrier(b);
  assert.equal(heard, 0, "nothing from a socket that is not subscribed");
  // Subscribed, 25 events at once: 10 a second are relayed, the rest refused with code
  // 4301. However the server's seconds fall across the burst, at most 10 pass in each
  // second it spans: the bound follows from how long the burst took to send (a busy
  // machine may stretch it), never from a guess about the server's clock.
  const aliceSub = await subscribe(a, room.channel);
  const limited = [];
  a.connection.bind("error", (e) => e.data?.code === 4301 && limited.push(e));
  const started = Date.now();
  for (let n = 0; n < 25; n += 1) aliceSub.channel.trigger("client-typing", { n });
  await barrier(a);
  const spanned = Math.floor((Date.now() - started) / 1000) + 2;
  await barrier(b);
  assert.ok(heard >= 10, `relayed ${heard}: the first 10 of a second pass`);
  assert.ok(heard <= 10 * spanned, `relayed ${heard} in at most ${spanned} seconds`);
  assert.equal(heard + limited.length, 25, "each event relayed or refused");
});

test("the inbox: a connect to my public id is announced live on my inbox channel", async () => {
  const alice = await createUser();
  const bob = await createUser();
  const listed = await post("/users/rooms", { privateId: alice.privateId });
  assert.equal(listed.status, 200);
  const inbox = await subscribe(client(alice.privateId), listed.body.inboxChannel);
  assert.equal(inbox.result, "ok");
  // Somebody else may not listen on it.
  const spy = await subscribe(client(bob.privateId), listed.body.inboxChannel);
  assert.equal(spy.result.status, 403);
  const offered = nextEvent(inbox.channel, "room");
  const room = await post(`/users/${alice.publicId}/connect`, { privateId: bob.privateId });
  assert.equal(room.status, 200);
  assert.deepEqual(await offered, {
    roomId: room.body.roomId,
    channel: room.body.channel,
    from: { publicId: bob.publicId, username: bob.username },
  });
});
