// Typing and presence, from the client's `typing` and `presence` events: a member says
// "here" when it opens a room and every HEARTBEAT after (in the open room only, so that
// a person in many rooms stays well under the realtime server's 10 client events a
// second); a peer unheard for longer than AWAY is shown offline. A peer's typing shows
// for TYPING_SHOWN.

import { $, peerName } from "./dom.js";

const HEARTBEAT = 25_000;
const AWAY = 60_000;
const TYPING_SHOWN = 4_000;

export function presence(page) {
  /** roomId -> { online, seenAt, typingTimer } */
  const peers = new Map();
  const of = (roomId) => {
    if (!peers.has(roomId)) peers.set(roomId, { online: false, seenAt: 0, typingTimer: null });
    return peers.get(roomId);
  };

  function show(roomId) {
    if (roomId !== page.openId) return;
    const online = of(roomId).online && !page.client.room(roomId)?.closed;
    $("presence").dataset.online = String(online);
    $("presence").textContent = online ? "online" : "";
  }

  function hideTyping(roomId) {
    clearTimeout(of(roomId).typingTimer);
    if (roomId === page.openId) $("typing").hidden = true;
  }

  function heard(roomId) {
    const peer = of(roomId);
    peer.seenAt = Date.now();
    if (!peer.online) {
      peer.online = true;
      page.renderList();
    }
    show(roomId);
  }

  page.client.on("presence", ({ roomId }) => heard(roomId));
  page.client.on("typing", ({ roomId }) => {
    const room = page.client.room(roomId);
    if (!room || room.closed) return;
    heard(roomId);
    const peer = of(roomId);
    clearTimeout(peer.typingTimer);
    peer.typingTimer = setTimeout(() => hideTyping(roomId), TYPING_SHOWN);
    if (roomId === page.openId) {
      $("typing-name").textContent = peerName(room);
      $("typing").hidden = false;
    }
  });
  // The peer wrote: they stopped typing.
  page.client.on("message", ({ roomId, message }) => !message.mine && hideTyping(roomId));

  setInterval(() => {
    const open = page.client.room(page.openId);
    if (open?.joined) page.client.here(open.roomId);
    for (const [roomId, peer] of peers) {
      if (peer.online && Date.now() - peer.seenAt > AWAY) {
        peer.online = false;
        show(roomId);
        page.renderList();
      }
    }
  }, HEARTBEAT);

  return {
    online: (roomId) => of(roomId).online,
    /** The room just opened: show what is known, and say hello (answered at once). */
    opened(roomId) {
      hideTyping(roomId);
      show(roomId);
      page.client.here(roomId, { hello: true });
    },
    show,
  };
}
