// The README's example, type-checked by `tsc --noEmit` (through the package's own
// `exports`, as an installed package resolves): the declarations must fit a real use.
import Pusher from "pusher-js";
import { SecretRooms, ApiError, indexedDBStorage, memoryStorage, type Message } from "secret-rooms-client";

export async function example(baseUrl: string, key: string): Promise<void> {
  const client = await SecretRooms.open({
    baseUrl,
    storage: typeof indexedDB === "undefined" ? memoryStorage() : indexedDBStorage(),
    realtime: ({ authEndpoint, params }) =>
      new Pusher(key, { cluster: "eu", channelAuthorization: { endpoint: authEndpoint, transport: "ajax", params } }),
  });
  const show = (m: Message): string => `${m.from.username}: ${m.text ?? `(${m.unreadable})`}`;
  client.on("message", ({ message }) => console.log(show(message)));
  client.on("failed", ({ error }) => console.error(error.code, error.status));
  client.on("room", ({ room }) => console.log(room.roomId, room.encryption));
  try {
    const room = await client.connect("123-456");
    if (room) {
      const id: string = await client.send(room.roomId, "hello");
      await client.loadOlder(room.roomId);
      console.log(id, client.messages(room.roomId).length, await client.safetyCode(room.roomId));
    }
  } catch (error) {
    if (error instanceof ApiError) console.error(error.code);
  }
  client.close();
}

// e2e2 on its own: two sessions, a hello, a message each way.
import { e2e2 } from "secret-rooms-client";

export async function ratchet(me: CryptoKeyPair, mine: Uint8Array, theirs: Uint8Array, peer: CryptoKeyPair): Promise<string | null> {
  const a = await e2e2.createSession({ privateKey: me.privateKey, publicKey: mine, peerPublicKey: theirs, roomId: "r" });
  const b = await e2e2.createSession({ privateKey: peer.privateKey, publicKey: theirs, peerPublicKey: mine, roomId: "r" });
  const [first, second] = a.hello === null ? [a, b] : [b, a];
  const started = await e2e2.open(first.session, second.hello ?? "");
  const sealed = await e2e2.seal(started.session, "hi");
  const opened = await e2e2.open(second.session, sealed.envelope);
  for (const notice of opened.notices) if (notice.kind === "missing") console.log(notice.from, notice.to);
  return e2e2.canSeal(opened.session) ? e2e2.serialize(opened.session) : opened.text;
}
