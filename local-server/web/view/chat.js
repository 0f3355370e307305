// The open room: its messages and what waits in its outbox, the encryption panel (state,
// safety code, warnings), the composer with its byte counter, "Load older messages",
// the outbox's "send unencrypted" and "discard", and Block.

import { $, showError, explain, peerName } from "./dom.js";
import { e2e1, e2e2 } from "../client/index.js";

const MAX_BYTES = 4096;
const encoder = new TextEncoder();

const UNREADABLE = {
  failed: "This message could not be decrypted: it was altered or not meant for this room.",
  locked: "An encrypted message this browser cannot read: it has no key for it.",
  foreign: "Not shown: this message was sealed with a key this room never agreed to.",
  replayed: "The server sent a message again that was read before: not shown twice.",
  not_kept: "Sent from your identity, but not from this browser: it cannot be read here.",
  too_many_skipped: "Too many messages are missing before this one: it cannot be opened.",
};

/** The transcript's notices (e2e2): what the server may have cut or moved. */
const missingHere = (n) => (n === 1 ? "⚠ A message is missing here: the server did not deliver it." : `⚠ ${n} messages are missing here: the server did not deliver them.`);

/** What a message shows: its text (sealed or in clear), or why it cannot. */
const kindOf = (m) =>
  !m.encrypted ? "clear" : m.text !== null ? "sealed" : { no_key: "locked", foreign: "foreign", replayed: "replayed", not_kept: "not_kept", too_many_skipped: "too_many_skipped" }[m.unreadable] ?? "failed";

const count = (n) => (n === 1 ? "1 message" : `${n} messages`);

export function chat(page) {
  /** roomId -> its outbox as last read (the client's storage is async). */
  const outboxes = new Map();
  const outbox = (roomId) => outboxes.get(roomId) ?? [];

  async function readOutbox(roomId) {
    outboxes.set(roomId, await page.client.outbox(roomId));
    if (roomId === page.openId) render();
  }
  page.client.on("outbox", ({ roomId }) => readOutbox(roomId));

  const current = () => page.client.room(page.openId);
  const myKeys = () => page.client.hasKeyPair;

  /** UTF-8 bytes a message may have in this room: in an encrypted one, what fits in an
   * envelope of MAX_BYTES. */
  const capacity = e2e2.PLAINTEXT_CAPACITY;
  const limit = (room) => (room && room.encryption !== "plaintext" ? capacity : MAX_BYTES);

  function updateCounter() {
    const bytes = encoder.encode($("message").value).length;
    const most = limit(current());
    $("counter").textContent = `${bytes} / ${most}`;
    $("counter").title = most === MAX_BYTES
      ? `At most ${MAX_BYTES} bytes of text per message`
      : `At most ${most} bytes of text per message: encrypted, they take the ${MAX_BYTES} bytes a message may have`;
    $("counter").classList.toggle("over", bytes > most);
    return bytes;
  }

  /** Show the safety code of my key and `peerKey` in `element` (once computed, if the
   * element still stands for that pair). */
  function showCode(element, peerKey) {
    const me = page.client.identity.publicKey;
    const pair = peerKey ? `${me} ${peerKey}` : "";
    if (element.dataset.pair === pair) return;
    element.dataset.pair = pair;
    element.textContent = "";
    if (!peerKey) return;
    e2e1.safetyCode(me, peerKey).then((digits) => {
      if (element.dataset.pair === pair) element.textContent = digits;
    });
  }

  function showE2E(room) {
    const state = room.encryption;
    const name = peerName(room);
    $("chat").dataset.encryption = state;
    $("chat").dataset.ratchet = room.ratchet ?? "";
    $("chat").dataset.keyChanged = String(state === "compromised" && room.changedKeys.length > 0);
    $("peer-name").textContent = room.peer.username ?? "";
    $("e2e").dataset.state = state;
    $("e2e-label").textContent = {
      encrypted: "🔒 End-to-end encrypted · safety code",
      waiting: `⏳ Waiting for ${name} to join: messages will be sent encrypted when ${name} joins`,
      compromised: `⚠ Not safe: ${name}'s encryption key changed. Nothing more can be sent here`,
      plaintext: myKeys() ? `Not encrypted: ${name} joined without an encryption key` : "Not encrypted: your identity has no encryption key",
      unavailable: "⚠ Not readable here: this browser lost your encryption key",
    }[state];
    $("e2e-help").textContent = {
      encrypted: `Only you and ${name} can read this room: the server relays and keeps sealed `
        + `envelopes. Compare this safety code with ${name} another way (in person, on a call): `
        + "the same code on both screens means nobody is in between. "
        + "Each message has a key of its own, deleted once used (forward secrecy), and the "
        + "page shows a message the server held back or moved. "
        + `Up to ${capacity} bytes of text fit in one message.`,
      waiting: `${name} has not joined yet, so their key is not known. What you write waits in `
        + `this browser (it survives a reload) and is sent encrypted as soon as ${name} joins. `
        + `Up to ${capacity} bytes of text fit in one message.`,
      compromised: "A person's key never changes in a room, so a new one means someone may be "
        + "in between, or the server is broken. What was sealed with the key this room agreed "
        + `on is still shown; nothing sealed with another key is. To talk to ${name} safely, `
        + "meet another way and start over with new identities.",
      plaintext: `The server can read what is written here. Up to ${MAX_BYTES} bytes fit in one message.`,
      unavailable: "Start over with a new identity (at the bottom of the page) to chat again.",
    }[state];
    // The code of the key this room agreed on, whatever was reported since.
    const agreed = state === "encrypted" || state === "compromised" ? room.peerKey : null;
    $("safety").hidden = !agreed;
    showCode($("safety-code"), agreed);
    const changed = state === "compromised" ? room.changedKeys.at(-1) ?? null : null;
    showCode($("key-warning-old"), changed ? room.peerKey : null);
    showCode($("key-warning-new"), changed);
    let warning = "";
    if (changed) {
      warning = `⚠ ${name}'s encryption key changed. A key never changes in a room: someone may `
        + "be trying to read it, or the server is broken. Nothing more is sent here, and messages "
        + "sealed with the new key are not shown.";
    } else if (state === "encrypted" && room.peerWithoutKey) {
      warning = `⚠ The server now says ${name} has no encryption key. This room stays encrypted to the key you had: nothing is sent in clear.`;
    }
    $("key-warning").hidden = !warning;
    $("key-warning-text").textContent = warning;
    $("key-warning-codes").hidden = !changed;
    if (changed) $("e2e").open = true;
    $("message").placeholder = {
      waiting: `Write a message (sent encrypted when ${name} joins)`,
      compromised: "Nothing can be sent in this room",
    }[state] ?? "Write a message";
  }

  function showComposer(room) {
    // A compromised room takes nothing more, for good.
    const shut = room.closed || room.encryption === "compromised";
    $("chat").dataset.joined = String(room.subscribed === true);
    $("send").disabled = !room.subscribed || shut;
    $("message").disabled = shut;
    $("block").disabled = room.closed;
    $("closed-note").hidden = !room.closed;
  }

  function bubble(mine, authorName, { sentAt, status } = {}) {
    const item = document.createElement("li");
    item.className = `message ${mine ? "mine" : "theirs"}`;
    const meta = document.createElement("div");
    meta.className = "meta";
    const author = document.createElement("span");
    author.className = "author";
    author.textContent = mine ? "You" : authorName;
    meta.append(author);
    if (sentAt) {
      const time = document.createElement("time");
      time.dateTime = sentAt;
      time.textContent = new Date(sentAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      meta.append(time);
    }
    if (status) {
      const mark = document.createElement("span");
      mark.className = "mark";
      mark.textContent = status;
      meta.append(mark);
    }
    item.append(meta);
    return item;
  }

  function messageItem(room, message) {
    const kind = kindOf(message);
    // In a room that is (or is to be) encrypted, a message in clear is marked as such.
    const clearHere = kind === "clear" && room.encryption !== "plaintext";
    // The peer's name is the room list's, never what a message says.
    // e2e2's transcript: a message the server put out of order, or in another's place;
    // an e2e1 one after the peer moved to e2e2 (without forward secrecy).
    const status = clearHere ? "not encrypted"
      : message.forked ? "⚠ another message stood here"
        : message.outOfOrder ? "⚠ out of order"
          : message.downgraded ? "⚠ sent without forward secrecy" : undefined;
    const item = bubble(message.mine, peerName(room), { sentAt: message.sentAt, status });
    item.dataset.id = message.id;
    item.dataset.e2e = kind;
    if (message.version) item.dataset.version = String(message.version);
    const body = document.createElement("div");
    if (kind === "sealed" || kind === "clear") {
      body.className = "text";
      body.textContent = message.text;
    } else {
      item.classList.add("unreadable");
      body.className = "notice";
      body.textContent = UNREADABLE[kind];
    }
    if (clearHere) item.classList.add("clear");
    item.append(body);
    return item;
  }

  function gapItem(n) {
    const item = document.createElement("li");
    item.className = "gap";
    item.dataset.missing = String(n);
    item.textContent = missingHere(n);
    return item;
  }

  /** A message in the outbox: not sent yet. */
  function pendingItem(room, entry, first) {
    const starting = room.encryption === "encrypted" && room.ratchet === "starting";
    const status = {
      waiting: `waiting for ${peerName(room)} to join`,
      encrypted: starting ? `waiting for ${peerName(room)}'s device` : first ? "sending…" : "queued",
    }[room.encryption] ?? (!myKeys() && room.encryption === "plaintext" && first ? "sending…" : "not sent");
    const item = bubble(true, "", { status });
    item.classList.add("pending");
    item.dataset.pending = entry.id;
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = entry.text;
    item.append(text);
    return item;
  }

  function showOutbox(room, waiting) {
    const n = waiting.length;
    const state = room.encryption;
    const name = peerName(room);
    $("outbox-note").hidden = n === 0;
    $("outbox-note").dataset.state = state;
    $("outbox-text").textContent = {
      waiting: `${count(n)} will be sent encrypted when ${name} joins.`,
      encrypted: room.ratchet === "starting"
        ? `${count(n)} will be sent encrypted once ${name}'s device answers (it starts the keys of this room).`
        : `Sending ${count(n)}, encrypted…`,
      compromised: `${count(n)} will not be sent: ${name}'s encryption key changed.`,
      plaintext: `${name} joined without encryption: ${count(n)} ${n === 1 ? "was" : "were"} not sent. `
        + "Sent unencrypted, the server can read them.",
      unavailable: `${count(n)} cannot be sent: this browser lost your encryption key.`,
    }[state];
    $("outbox-actions").hidden = state !== "plaintext" && state !== "compromised";
    // In clear only to a peer who has no key; never in a compromised room.
    $("outbox-clear").hidden = state !== "plaintext";
  }

  function renderMessages(room, { keepScroll = false } = {}) {
    const messages = page.client.messages(room.roomId);
    // A sent message can arrive live before its answer takes it out of the outbox: it
    // shows once, as sent.
    const arrived = new Set(messages.map((message) => message.id));
    const waiting = room.closed ? [] : outbox(room.roomId).filter((entry) => !arrived.has(entry.id));
    $("messages").replaceChildren(
      ...messages.flatMap((message) => (message.missing ? [gapItem(message.missing), messageItem(room, message)] : [messageItem(room, message)])),
      ...waiting.map((entry, index) => pendingItem(room, entry, index === 0)),
    );
    $("older").hidden = !room.hasOlder;
    if (!keepScroll) $("messages").lastElementChild?.scrollIntoView({ block: "end" });
    showOutbox(room, waiting);
  }

  /** Show the open room as the client has it now. */
  function render(options) {
    const room = current();
    if (!room) return;
    showComposer(room);
    showE2E(room);
    renderMessages(room, options);
    updateCounter();
  }

  function open(roomId) {
    const room = page.client.room(roomId);
    if (!room) return;
    page.openId = roomId;
    page.local.save("open", roomId);
    $("chat").hidden = false;
    $("peer-label").textContent = room.peer.publicId;
    page.presence.opened(roomId);
    render();
    readOutbox(roomId);
    page.markRead(roomId);
    page.renderList();
    if (!room.closed) $("message").focus();
  }

  // --- The composer ----------------------------------------------------------------------

  $("message").addEventListener("input", () => {
    updateCounter();
    if ($("message").value && page.openId) page.client.typing(page.openId);
  });
  $("message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const room = current();
    const text = $("message").value;
    if (!room || !text.trim()) return;
    if (!room.subscribed) {
      showError("Still joining the room; try again in a moment.");
      return;
    }
    const bytes = updateCounter();
    if (bytes > limit(room)) {
      showError(room.encryption === "plaintext"
        ? `The message is ${bytes} bytes; the limit is ${MAX_BYTES}. Shorten it a little.`
        : `The message is ${bytes} bytes; encrypted, the limit is ${limit(room)} bytes of text. Shorten it a little.`);
      return;
    }
    if (room.encryption === "unavailable") {
      showError("This browser lost your encryption key: this room can be neither read nor written here.");
      return;
    }
    if (room.encryption === "compromised") {
      showError(`${peerName(room)}'s encryption key changed: nothing more can be sent in this room.`);
      return;
    }
    showError("");
    try {
      // Into the outbox, which sends it (sealed, or in clear where this identity has no
      // key) and retries it until it is kept; to a keyless peer while this identity has
      // a key, it waits for the person's say.
      await page.client.send(room.roomId, text);
      $("message").value = "";
      updateCounter();
    } catch (error) {
      showError(explain(error));
    }
  });

  $("block").addEventListener("click", async () => {
    const room = current();
    if (!room || !confirm(`Block ${peerName(room)}? The room closes for good, for both of you.`)) return;
    try {
      await page.client.block(room.roomId);
    } catch (error) {
      showError(explain(error));
    }
  });

  $("older").addEventListener("click", async () => {
    const roomId = page.openId;
    $("older").disabled = true;
    try {
      await page.client.loadOlder(roomId, 100);
    } catch (error) {
      showError(`Could not load older messages: ${explain(error)}`);
    } finally {
      $("older").disabled = false;
    }
    if (roomId === page.openId) render({ keepScroll: true });
  });

  // The peer joined without a key: what waited to be sent encrypted goes only if the
  // person says so, and only what was shown when they clicked (not one written in
  // another tab since).
  $("outbox-clear").addEventListener("click", () => {
    const room = current();
    if (!room || room.encryption !== "plaintext") return;
    const shown = [...$("messages").querySelectorAll(".pending[data-pending]")].map((item) => item.dataset.pending);
    page.client.sendInClear(room.roomId, shown).catch((error) => showError(explain(error)));
  });

  $("outbox-discard").addEventListener("click", () => {
    const room = current();
    if (!room) return;
    const shown = [...$("messages").querySelectorAll(".pending[data-pending]")].map((item) => item.dataset.pending);
    page.client.discard(room.roomId, shown).catch((error) => showError(explain(error)));
  });

  return { open, render };
}
