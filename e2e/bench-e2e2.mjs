// Figures for BENCHMARKS.md ("End-to-end encryption, version 2"): in headless Chromium,
// the time to seal and to open one e2e2 message (median and p99 of 1,000, one direction
// and with a reply each time, i.e. a DH step per message), the envelope's size against
// the text's, and what the page keeps in IndexedDB per message read. A benchmark, not a
// test: it prints figures and asserts nothing about time.
//
//   cargo run -p local-server -- --memory &      # the page's origin serves the library
//   cd e2e && SECRET_ROOMS_URL=http://127.0.0.1:8080 node bench-e2e2.mjs
import { chromium } from "playwright-core";

const BASE = process.env.SECRET_ROOMS_URL ?? "http://127.0.0.1:8080";
const N = Number(process.env.N ?? 1000);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
const page = await browser.newPage();
await page.goto(`${BASE}/config.json`);
const figures = await page.evaluate(async (n) => {
  const e2e2 = await import("/client/e2e2.js");
  const identity = async () => {
    const pair = await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    return { privateKey: pair.privateKey, publicKey: new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)) };
  };
  const [a, b] = [await identity(), await identity()];
  const made = [
    await e2e2.createSession({ ...a, peerPublicKey: b.publicKey, roomId: "bench" }),
    await e2e2.createSession({ ...b, peerPublicKey: a.publicKey, roomId: "bench" }),
  ];
  const [first, second] = made[0].hello === null ? made : [made[1], made[0]];
  let f = (await e2e2.open(first.session, second.hello)).session;
  let s = second.session;
  const start = await e2e2.seal(f, "");
  f = start.session;
  s = (await e2e2.open(s, start.envelope)).session;
  const text = "A message of about a hundred bytes, as people write them in a chat, give or take a few.";
  const time = async (task) => {
    const t0 = performance.now();
    const out = await task();
    return [performance.now() - t0, out];
  };
  const stats = (xs) => {
    const sorted = [...xs].sort((x, y) => x - y);
    // Chromium rounds performance.now() to 0.1 ms here (no cross-origin isolation): the
    // mean over all of them is the finer figure.
    return { median: sorted[Math.floor(sorted.length / 2)], p99: sorted[Math.floor(sorted.length * 0.99)], mean: xs.reduce((x, y) => x + y, 0) / xs.length };
  };
  const run = async (reply) => {
    const seals = [];
    const opens = [];
    for (let i = 0; i < n; i += 1) {
      const [from, to] = reply && i % 2 ? ["s", "f"] : ["f", "s"];
      const state = { f, s };
      const [ts, sealed] = await time(() => e2e2.seal(state[from], text));
      const [to_, opened] = await time(() => e2e2.open(state[to], sealed.envelope));
      if (from === "f") [f, s] = [sealed.session, opened.session];
      else [s, f] = [sealed.session, opened.session];
      seals.push(ts);
      opens.push(to_);
    }
    return { seal: stats(seals), open: stats(opens) };
  };
  const oneWay = await run(false);
  const replies = await run(true);
  const sizes = {};
  for (const bytes of [1, 100, 255, 256, 1000, 1023, 2971]) {
    const sealed = await e2e2.seal(f, "x".repeat(bytes));
    sizes[bytes] = sealed.envelope.length;
  }
  // What the page keeps per message read: the archive entry, sealed as sessions.js seals
  // it ({iv, data} of the JSON {text, seq, notices, control}), as IndexedDB holds it.
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt"]);
  const entry = JSON.stringify({ text, seq: 1234, notices: [], control: false });
  const data = await crypto.subtle.encrypt({ name: "AES-GCM", iv: new Uint8Array(12) }, key, new TextEncoder().encode(entry));
  const archived = JSON.stringify({ iv: e2e2.toBase64url(new Uint8Array(12)), data: e2e2.toBase64url(data) }).length;
  const session = e2e2.serialize(f).length;
  return { oneWay, replies, sizes, archived, textBytes: new TextEncoder().encode(text).length, session };
}, N);
await browser.close();

const ms = (x) => `${x.toFixed(3)} ms`;
console.log(`e2e2 in Chromium, ${N} messages of ${figures.textBytes} bytes (median / mean / p99; the clock ticks 0.1 ms):`);
for (const [name, run] of [["one way (no DH step)", figures.oneWay], ["a reply each time (a DH step each)", figures.replies]]) {
  const three = (x) => `${ms(x.median)} / ${ms(x.mean)} / ${ms(x.p99)}`;
  console.log(`  ${name}: seal ${three(run.seal)}, open ${three(run.open)}`);
}
console.log("envelope length (characters) by text bytes:", JSON.stringify(figures.sizes));
console.log(`archive entry per message read (${figures.textBytes}-byte text): ${figures.archived} characters; a session: ${figures.session} characters`);
