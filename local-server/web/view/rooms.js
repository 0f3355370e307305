// The room list (newest activity first, unread counts, who is online, rooms offered to
// this identity with a Join button) and the connect form.

import { $, showError, explain, peerName } from "./dom.js";

const PUBLIC_ID = /^\d{3}-\d{3}(-\d{3})?$/;

const LOCK = { encrypted: "🔒", waiting: "⏳", compromised: "⚠", plaintext: "not encrypted", unavailable: "⚠" };
const lockTitle = (room) => ({
  encrypted: "end-to-end encrypted",
  waiting: `waiting for ${peerName(room)} to join`,
  compromised: `${peerName(room)}'s key changed: nothing is sent`,
  plaintext: "not encrypted",
  unavailable: "your key is missing",
})[room.encryption];

export function rooms(page) {
  const readKey = (roomId) => `read:${roomId}`;

  /** Messages from the peer after the last one read in this browser. */
  function unread(room) {
    if (room.roomId === page.openId) return 0;
    const read = page.local.load(readKey(room.roomId)) ?? "";
    return page.client.messages(room.roomId).filter((m) => !m.mine && m.sentAt > read).length;
  }

  function markRead(roomId) {
    let newest = page.local.load(readKey(roomId)) ?? "";
    for (const m of page.client.messages(roomId)) if (m.sentAt > newest) newest = m.sentAt;
    page.local.save(readKey(roomId), newest);
  }

  function activity(room) {
    let newest = room.lastMessageAt ?? "";
    for (const m of page.client.messages(room.roomId)) if (m.sentAt > newest) newest = m.sentAt;
    return newest;
  }

  function item(room) {
    const entry = document.createElement("li");
    entry.className = `room${room.roomId === page.openId ? " open" : ""}`;
    Object.assign(entry.dataset, { roomId: room.roomId, joined: String(room.joined), closed: String(room.closed) });
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = peerName(room);
    if (room.joined) {
      entry.dataset.encryption = room.encryption;
      const lock = document.createElement("span");
      lock.className = "lock";
      lock.textContent = LOCK[room.encryption];
      lock.title = lockTitle(room);
      who.prepend(lock);
    }
    if (room.peer.username) {
      const id = document.createElement("small");
      id.textContent = room.peer.publicId;
      who.append(id);
    }
    const badge = document.createElement("span");
    badge.className = "unread";
    const count = unread(room);
    badge.textContent = String(count);
    badge.hidden = count === 0;
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = room.closed ? "closed" : room.joined ? (page.presence.online(room.roomId) ? "online" : "") : "wants to talk";
    entry.append(who, badge, state);
    if (!room.joined && !room.closed) {
      const join = document.createElement("button");
      join.type = "button";
      join.className = "join";
      join.textContent = "Join";
      join.addEventListener("click", (event) => {
        event.stopPropagation();
        connectTo(room.peer.publicId);
      });
      entry.append(join);
    }
    entry.addEventListener("click", () => (room.joined ? page.open(room.roomId) : connectTo(room.peer.publicId)));
    return entry;
  }

  function render() {
    const list = page.client.rooms().sort((a, b) => activity(b).localeCompare(activity(a)));
    $("no-rooms").hidden = list.length > 0;
    $("rooms").replaceChildren(...list.map(item));
  }

  async function connectTo(peer) {
    showError("");
    if (!PUBLIC_ID.test(peer)) {
      showError("A public id is six digits written 123-456 (or nine: 123-456-789).");
      return;
    }
    if (peer === page.client.identity.publicId) {
      showError("That is your own public id: ask the other person for theirs.");
      return;
    }
    $("connect").disabled = true;
    try {
      const room = await page.client.connect(peer);
      if (room) page.open(room.roomId);
    } catch (error) {
      showError(explain(error));
    } finally {
      $("connect").disabled = false;
    }
  }

  $("peer-id").addEventListener("input", (event) => {
    // Typing six digits inserts the dash.
    const digits = event.target.value.replace(/\D/g, "").slice(0, 9);
    event.target.value = (digits.match(/.{1,3}/g) ?? []).join("-");
  });
  $("connect-form").addEventListener("submit", (event) => {
    event.preventDefault();
    connectTo($("peer-id").value.trim());
  });

  return { render, markRead };
}
