// The README's example, run as written (only the server's address is the test's): it
// must work for a developer who copies it.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = process.env.SECRET_ROOMS_URL;
if (!BASE) throw new Error("SECRET_ROOMS_URL must name a running local server");

test("the README's example runs as written", async () => {
  const readme = fs.readFileSync(path.join(here, "..", "README.md"), "utf8");
  const example = /## Example\n+```js\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(example, "README.md has an example");
  const { host, port } = new URL(BASE);
  const code = example
    .replaceAll("http://127.0.0.1:8080", BASE)
    .replaceAll("wsPort: 8080", `wsPort: ${Number(port)}`)
    .replaceAll('"127.0.0.1"', JSON.stringify(host.split(":")[0]));
  // Inside the package, so that "secret-rooms-client" resolves through its own exports.
  const file = path.join(here, `.readme-example-${process.pid}.mjs`);
  fs.writeFileSync(file, code);
  const lines = [];
  const log = console.log;
  console.log = (...args) => lines.push(args.join(" "));
  try {
    await import(file);
  } finally {
    console.log = log;
    fs.rmSync(file, { force: true });
  }
  assert.match(lines[0], /^share this: \d{3}-\d{3}(-\d{3})?$/);
  assert.ok(lines.some((l) => l.startsWith("room ")), `a room event: ${lines.join(" | ")}`);
});
