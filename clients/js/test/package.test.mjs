// What is published is what was tested: `npm pack` makes the package, which is installed
// into a scratch folder and imported by name there, as a developer's project would; the
// README's example then runs from that folder, against the local server (SECRET_ROOMS_URL).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, "..");
const BASE = process.env.SECRET_ROOMS_URL;
if (!BASE) throw new Error("SECRET_ROOMS_URL must name a running local server");

let scratch;
let packed;

before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "secret-rooms-client-"));
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: root });
  [packed] = JSON.parse(stdout);
  fs.writeFileSync(path.join(scratch, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  // The package has no runtime dependency: installing it needs no registry.
  await run("npm", ["install", "--no-audit", "--no-fund", "--offline", path.join(scratch, packed.filename)], { cwd: scratch });
  // The realtime client is the developer's choice; the example uses pusher-js.
  fs.symlinkSync(path.join(root, "node_modules", "pusher-js"), path.join(scratch, "node_modules", "pusher-js"), "dir");
});

after(() => scratch && fs.rmSync(scratch, { recursive: true, force: true }));

test("npm pack holds the module, its types and its README, and nothing of the tests", () => {
  const files = packed.files.map((f) => f.path).sort();
  for (const needed of ["package.json", "README.md", "index.d.ts", "src/index.js", "src/client.js", "src/e2e1.js", "src/e2e2.js", "src/bytes.js", "src/sessions.js", "src/storage.js", "PROTOCOL.md"]) {
    assert.ok(files.includes(needed), `${needed} is in the package: ${files.join(", ")}`);
  }
  assert.deepEqual(files.filter((f) => f.startsWith("test/") || f.startsWith("node_modules/")), []);
  assert.equal(packed.name, "secret-rooms-client");
});

test("installed, the package imports by name with what its types declare", async () => {
  const probe = path.join(scratch, "probe.mjs");
  fs.writeFileSync(
    probe,
    `import * as lib from "secret-rooms-client";
     console.log(JSON.stringify(Object.keys(lib).sort()));`,
  );
  const { stdout } = await run("node", [probe], { cwd: scratch });
  const names = JSON.parse(stdout);
  for (const name of ["SecretRooms", "ApiError", "memoryStorage", "webStorage", "indexedDBStorage", "backoff", "e2e1", "e2e2"]) {
    assert.ok(names.includes(name), `${name} is exported: ${names.join(", ")}`);
  }
  const types = fs.readFileSync(path.join(scratch, "node_modules", "secret-rooms-client", "index.d.ts"), "utf8");
  for (const name of names) assert.match(types, new RegExp(`\\b${name}\\b`), `${name} has a declaration`);
});

test("the README's example runs from the installed package", async () => {
  const readme = fs.readFileSync(path.join(scratch, "node_modules", "secret-rooms-client", "README.md"), "utf8");
  const example = /## Example\n+```js\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(example, "the packed README has an example");
  const { hostname, port } = new URL(BASE);
  const code = example
    .replaceAll("http://127.0.0.1:8080", BASE)
    .replaceAll("wsPort: 8080", `wsPort: ${Number(port)}`)
    .replaceAll('"127.0.0.1"', JSON.stringify(hostname));
  const file = path.join(scratch, "example.mjs");
  fs.writeFileSync(file, code);
  const { stdout } = await run("node", [file], { cwd: scratch, timeout: 30_000 });
  const lines = stdout.trim().split("\n");
  assert.match(lines[0], /^share this: \d{3}-\d{3}(-\d{3})?$/);
  assert.ok(lines.some((l) => l.startsWith("room ")), `a room event: ${lines.join(" | ")}`);
});
