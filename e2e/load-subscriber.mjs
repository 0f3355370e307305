// The listening side of ./load/run.sh: makes PAIRS pairs of users that are connected to
// each other, subscribes (with pusher-js, through /pusher/auth) to every room's channel,
// writes the pairs for wrk's script, and counts the `message` events it receives until
// it gets SIGTERM, when it writes the count.
//
// usage: node load-subscriber.mjs BASE_URL PAIRS PAIRS_LUA READY_FILE COUNT_FILE
import fs from "node:fs";
import Pusher from "pusher-js";

const [base, pairCount, luaFile, readyFile, countFile] = process.argv.slice(2);
const { hostname, port } = new URL(base);

async function post(path, body) {
  const res = await fetch(base + path, { method: "POST", body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}

const pairs = [];
for (let i = 0; i < Number(pairCount); i++) {
  const a = await post("/users/create", {});
  const b = await post("/users/create", {});
  const room = await post(`/users/${b.publicId}/connect`, { privateId: a.privateId });
  await post(`/users/${a.publicId}/connect`, { privateId: b.privateId });
  pairs.push({ a, b, room });
}

const memberOf = new Map(pairs.map((p) => [p.room.channel, p.b.privateId]));
const pusher = new Pusher("local-key", {
  cluster: "local",
  wsHost: hostname,
  wsPort: Number(port),
  forceTLS: false,
  enabledTransports: ["ws"],
  disableStats: true,
  channelAuthorization: {
    customHandler: async ({ socketId, channelName }, callback) => {
      try {
        const auth = await post("/pusher/auth", { socket_id: socketId, channel_name: channelName, privateId: memberOf.get(channelName) });
        callback(null, auth);
      } catch (error) {
        callback(error, null);
      }
    },
  },
});

let received = 0;
let subscribed = 0;
await new Promise((resolve, reject) => {
  for (const { room } of pairs) {
    const channel = pusher.subscribe(room.channel);
    channel.bind("message", () => (received += 1));
    channel.bind("pusher:subscription_error", reject);
    channel.bind("pusher:subscription_succeeded", () => ++subscribed === pairs.length && resolve());
  }
});
pusher.connection.bind("state_change", ({ current }) => {
  if (current !== "connected") console.error(`subscriber connection ${current}: events may be missed`);
});

const lua = pairs
  .map((p) => `  { a = "${p.a.privateId}", b = "${p.b.privateId}", bpub = "${p.b.publicId}", room = "${p.room.roomId}" },`)
  .join("\n");
fs.writeFileSync(luaFile, `pairs_data = {\n${lua}\n}\n`);
fs.writeFileSync(readyFile, "ready\n");

process.on("SIGTERM", () => {
  fs.writeFileSync(countFile, `${received}\n`);
  pusher.disconnect();
  process.exit(0);
});
