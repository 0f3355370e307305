// The identity card: name, public id (copy, rotate), whether this browser holds the
// key pair; and "Start over".

import { $, showError, explain } from "./dom.js";

const KEYS = {
  encrypted: "🔒 Your key pair stays in this browser: rooms with people who have one "
    + "are end-to-end encrypted.",
  lost: "⚠ This browser no longer has your identity's key pair: encrypted rooms can be "
    + "neither read nor written. Start over with a new identity (below).",
  none: "This identity has no encryption key (it was made before encryption, or this "
    + "browser cannot keep one): your rooms are not encrypted. Start over (below) for one "
    + "that has.",
};

export function showIdentity(client) {
  const me = client.identity;
  $("my-name").textContent = me.username;
  $("my-public-id").textContent = me.publicId;
  const keys = client.hasKeyPair ? "encrypted" : me.publicKey ? "lost" : "none";
  $("identity").dataset.keys = keys;
  $("my-keys").textContent = KEYS[keys];
}

/** The identity's buttons. `forget` deletes everything this browser keeps of it. */
export function identityActions(page, forget) {
  $("rotate").addEventListener("click", async () => {
    if (!confirm("Get a new public id? Your current one stops working for good: nobody can reach you with it any more. Your rooms stay.")) return;
    try {
      await page.client.rotate();
    } catch (error) {
      showError(explain(error));
    }
  });

  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(page.client.identity.publicId);
      $("copy").textContent = "Copied";
    } catch {
      getSelection().selectAllChildren($("my-public-id"));
      $("copy").textContent = "Press Ctrl+C";
    }
    setTimeout(() => ($("copy").textContent = "Copy"), 2000);
  });

  $("reset").addEventListener("click", async () => {
    if (!confirm("Forget this identity and create a new one? Your peers will need your new public id.")) return;
    await forget();
    location.reload();
  });
}
