// e2e2 (PROTOCOL.md) against a second implementation: test/reference/e2e2.py, in Python
// on `cryptography`, which ./scripts/test.sh installs into .venv and names in
// E2E2_REFERENCE_PYTHON. Both reproduce test/vectors/e2e2.json; over scripted
// conversations (replies, gaps, reordering, replays) each opens what the other sealed.
// No server is needed.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import readline from "node:readline";
import * as e2e2 from "../src/e2e2.js";

const PYTHON = process.env.E2E2_REFERENCE_PYTHON;
if (!PYTHON) throw new Error("E2E2_REFERENCE_PYTHON is not set: ./scripts/test.sh sets it to .venv/bin/python (with cryptography)");
const REFERENCE = new URL("./reference/e2e2.py", import.meta.url).pathname;
const VECTORS = new URL("./vectors/e2e2.json", import.meta.url).pathname;
const vectors = JSON.parse(fs.readFileSync(VECTORS, "utf8"));
const b64 = e2e2.toBase64url;
const raw = e2e2.fromBase64url;

/** The Python side: one process, JSON lines. */
function reference() {
  const child = spawn(PYTHON, [REFERENCE, "serve"], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on("line", (line) => waiting.shift()(JSON.parse(line)));
  after(() => child.kill());
  return (request) =>
    new Promise((resolve) => {
      waiting.push(resolve);
      child.stdin.write(`${JSON.stringify(request)}\n`);
    });
}
const python = reference();

/** Ratchet keys in the order given, as the vectors' sessions use them. */
function givenKeys(list) {
  const queue = list.map(raw);
  return () => e2e2.ratchetKeyFrom(queue.shift());
}

async function identity() {
  const pair = await crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
  return { priv: pkcs8.slice(-32), pub: new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)), privateKey: pair.privateKey };
}

test("the Python reference reproduces the vectors (its own check)", () => {
  const out = execFileSync(PYTHON, [REFERENCE, "vectors", VECTORS], { encoding: "utf8" });
  assert.match(out, /e2e2 vectors: 9 of 9 agree/);
});

test("JavaScript reproduces every vector: root, each derivation, the hello, the conversation", async () => {
  const d = vectors.derivations;
  const [rk, ck] = await e2e2.kdfRoot(raw(d.kdf_rk.rk), raw(d.kdf_rk.dh));
  assert.equal(b64(rk), d.kdf_rk.out_rk);
  assert.equal(b64(ck), d.kdf_rk.out_ck);
  const [seed, nextCk] = await e2e2.kdfChain(raw(d.kdf_ck.ck));
  assert.equal(b64(seed), d.kdf_ck.seed);
  assert.equal(b64(nextCk), d.kdf_ck.next);
  for (const [n, size] of Object.entries(d.pad.lengths)) assert.equal(e2e2.pad("a".repeat(Number(n))).length, size);

  const make = (me, peer) =>
    e2e2.createSession(
      { privateKey: raw(vectors.identity[me]), publicKey: vectors.public[me], peerPublicKey: vectors.public[peer], roomId: vectors.room },
      { newRatchetKey: givenKeys(vectors.ratchet_keys[me]) },
    );
  const a = { made: await make("a", "b"), keys: givenKeys(vectors.ratchet_keys.a) };
  const b = { made: await make("b", "a"), keys: givenKeys(vectors.ratchet_keys.b) };
  // The second member's hello took its first given key; the first takes its own later.
  const [first, second] = vectors.first === "a" ? [a, b] : [b, a];
  second.keys();
  assert.equal(b64(first.made.session.rk), vectors.root_key);
  assert.equal(b64(second.made.session.rk), vectors.root_key, "both members derive the same root");
  assert.equal(first.made.hello, null);
  assert.equal(second.made.hello, vectors.hello, "the hello, byte for byte");
  const sides = { first: { s: first.made.session, keys: first.keys }, second: { s: second.made.session, keys: second.keys } };
  sides.first.s = (await e2e2.open(sides.first.s, vectors.hello, { newRatchetKey: sides.first.keys })).session;
  for (const step of vectors.conversation) {
    const from = sides[step.from];
    const to = sides[step.from === "first" ? "second" : "first"];
    const sealed = await e2e2.seal(from.s, step.text);
    from.s = sealed.session;
    assert.equal(sealed.envelope, step.envelope, `the envelope of ${JSON.stringify(step.text.slice(0, 20))}`);
    const opened = await e2e2.open(to.s, step.envelope, { newRatchetKey: to.keys });
    to.s = opened.session;
    assert.equal(opened.text, step.text);
    assert.equal(opened.seen, step.seen);
  }
});

/** One side in JavaScript, one in Python; `jsFirst` picks which takes the first role. */
async function pair(jsFirst, name) {
  const [x, y] = [await identity(), await identity()];
  const [low, high] = [x, y].sort((p, q) => Buffer.compare(Buffer.from(p.pub), Buffer.from(q.pub)));
  const [js, py] = jsFirst ? [low, high] : [high, low];
  const roomId = `room-${name}`;
  const made = await e2e2.createSession({ privateKey: js.privateKey, publicKey: js.pub, peerPublicKey: py.pub, roomId });
  const created = await python({ op: "create", name, private: b64(py.priv), peer: b64(js.pub), room: roomId });
  assert.equal(made.session.role, jsFirst ? "first" : "second");
  assert.equal(created.role, jsFirst ? "second" : "first");
  const side = {
    session: made.session,
    async seal(text) {
      const out = await e2e2.seal(this.session, text);
      this.session = out.session;
      return out.envelope;
    },
    async open(envelope) {
      try {
        const out = await e2e2.open(this.session, envelope);
        this.session = out.session;
        return out;
      } catch (error) {
        if (error instanceof e2e2.OpenError) return { error: error.reason };
        throw error;
      }
    },
  };
  const other = {
    seal: async (text) => (await python({ op: "seal", name, text })).envelope,
    open: (envelope) => python({ op: "open", name, envelope }),
  };
  // The hello goes from the second to the first.
  const hello = jsFirst ? created.hello : made.hello;
  const opened = jsFirst ? await side.open(hello) : await other.open(hello);
  assert.equal(opened.text, null);
  return jsFirst ? { first: side, second: other } : { first: other, second: side };
}

async function conversation(jsFirst) {
  const { first, second } = await pair(jsFirst, jsFirst ? "js-first" : "js-second");
  const said = (out, text, seq, notices = []) => {
    assert.equal(out.error, undefined, `opened ${JSON.stringify(text)}`);
    assert.equal(out.text, text);
    assert.equal(out.seq, seq);
    assert.deepEqual(out.notices, notices);
  };
  // The first member starts; three in a row, the server delivers 1, 3, then 2.
  const f1 = await first.seal("one");
  const f2 = await first.seal("two: ünïcödé 👋");
  const f3 = await first.seal("three ".repeat(100));
  said(await second.open(f1), "one", 1);
  said(await second.open(f3), "three ".repeat(100), 3, [{ kind: "missing", from: 2, to: 2 }]);
  said(await second.open(f2), "two: ünïcödé 👋", 2, [{ kind: "late" }]);
  assert.deepEqual(await second.open(f2), { error: "replayed" });
  // Replies: each one a DH step.
  for (let round = 0; round < 4; round += 1) {
    const s = await second.seal(`reply ${round}`);
    const s2 = await second.seal(`and ${round}`);
    said(await first.open(s), `reply ${round}`, 2 * round + 1);
    said(await first.open(s2), `and ${round}`, 2 * round + 2);
    const f = await first.seal(`answer ${round}`);
    said(await second.open(f), `answer ${round}`, 4 + round);
  }
  // Across a DH step: the old chain's first message comes last; its key was kept.
  const old = await second.seal("from the old chain");
  const bridge = await second.seal("the next in it");
  said(await first.open(bridge), "the next in it", 10, [{ kind: "missing", from: 9, to: 9 }]);
  said(await second.open(await first.seal("a new step")), "a new step", 8);
  said(await first.open(await second.seal("from the new chain")), "from the new chain", 11);
  said(await first.open(old), "from the old chain", 9, [{ kind: "late" }]);
  // The largest class, and an altered envelope.
  const big = "z".repeat(e2e2.PLAINTEXT_CAPACITY);
  const bigEnvelope = await first.seal(big);
  assert.equal(bigEnvelope.length, 4096);
  const flipped = bigEnvelope.slice(0, 200) + (bigEnvelope[200] === "A" ? "B" : "A") + bigEnvelope.slice(201);
  assert.deepEqual(await second.open(flipped), { error: "garbled" });
  said(await second.open(bigEnvelope), big, 9);
}

test("Python opens what JavaScript seals and the other way round: JavaScript the first member", () => conversation(true));
test("the same with JavaScript the second member (the one that says hello)", () => conversation(false));

test("every envelope has one of three lengths, whatever the text", async () => {
  const { first } = await pair(true, "sizes");
  const lengths = new Set();
  for (const n of [0, 1, 100, 255, 256, 700, 1023, 1024, 2000, 2971]) lengths.add((await first.seal("a".repeat(n))).length);
  assert.deepEqual([...lengths], e2e2.SIZE_CLASSES.map(e2e2.envelopeLength));
  assert.throws(() => e2e2.pad("a".repeat(e2e2.PLAINTEXT_CAPACITY + 1)), RangeError);
});

test("a sender that forks its chain is caught by the hash chain, by either implementation", async () => {
  for (const jsFirst of [true, false]) {
    const name = `fork-${jsFirst}`;
    const { first, second } = await pair(jsFirst, name);
    assert.equal((await second.open(await first.seal(""))).text, "", "a start lets the second member seal");
    const s1 = await second.seal("one");
    // The same sequence number sealed twice, from one state: "two", and "another two"
    // followed by "three", whose hash chain names "another two".
    let other;
    if (jsFirst) {
      await python({ op: "fork", name, as: `${name}-fork` });
      other = async (text) => (await python({ op: "seal", name: `${name}-fork`, text })).envelope;
    } else {
      let state = structuredClone(second.session);
      other = async (text) => {
        const out = await e2e2.seal(state, text);
        state = out.session;
        return out.envelope;
      };
    }
    const s2 = await second.seal("two");
    await other("another two");
    const s3 = await other("three");
    assert.equal((await first.open(s1)).error, undefined);
    assert.deepEqual((await first.open(s3)).notices, [{ kind: "missing", from: 2, to: 2 }]);
    assert.deepEqual((await first.open(s2)).notices, [{ kind: "late" }, { kind: "altered" }], "two is not what stood there");
  }
});

test("a gap longer than MAX_SKIP is refused, by either implementation", async () => {
  for (const jsFirst of [true, false]) {
    const { first, second } = await pair(jsFirst, `gap-${jsFirst}`);
    await second.open(await first.seal(""));
    const [sender, receiver] = jsFirst ? [second, first] : [first, second];
    for (let i = 0; i < e2e2.MAX_SKIP + 1; i += 1) await sender.seal("");
    const far = await sender.seal("far ahead");
    assert.deepEqual(await receiver.open(far), { error: "too_many_skipped" }, `the ${jsFirst ? "JavaScript" : "Python"} side`);
    // MAX_SKIP missing messages are still bridged.
    const { first: f2, second: s2 } = await pair(jsFirst, `gap-ok-${jsFirst}`);
    await s2.open(await f2.seal(""));
    const [sender2, receiver2] = jsFirst ? [s2, f2] : [f2, s2];
    for (let i = 0; i < e2e2.MAX_SKIP; i += 1) await sender2.seal("");
    assert.equal((await receiver2.open(await sender2.seal("just in reach"))).text, "just in reach");
  }
});
