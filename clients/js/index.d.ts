// Types of secret-rooms-client (checked by `tsc --noEmit` in the tests).

/** Where a client keeps its identity, key pair, trust and outbox: structured values. */
export interface Storage {
  get(name: string): Promise<any>;
  set(name: string, value: unknown): Promise<void>;
  delete(name: string): Promise<void>;
  /** `false` for a storage of text only: the key pair is then extractable (kept as JWK). */
  keepsKeys?: boolean;
}

export function memoryStorage(): Storage;
export function webStorage(
  store: { getItem(name: string): string | null; setItem(name: string, value: string): void; removeItem(name: string): void },
  prefix?: string,
): Storage;
export function indexedDBStorage(database?: string, objects?: string): Storage;

/** The part of a pusher-js `Channel` the client uses. */
export interface RealtimeChannel {
  bind(event: string, callback: (data: any) => void): unknown;
  trigger(event: string, data: unknown): boolean;
}

/** The part of a pusher-js `Pusher` the client uses. */
export interface RealtimeClient {
  subscribe(channel: string): RealtimeChannel;
  unsubscribe(channel: string): void;
  disconnect(): void;
}

/** Make the realtime client: give `authEndpoint` and `params` to pusher-js as
 * `channelAuthorization: { endpoint: authEndpoint, params }`. */
export type RealtimeFactory = (auth: { authEndpoint: string; params: { privateId: string } }) => RealtimeClient;

export interface ClientOptions {
  /** The API, e.g. "http://127.0.0.1:8080". */
  baseUrl: string;
  storage: Storage;
  /** Without one, nothing arrives live: call `refreshRooms` and `history` yourself. */
  realtime?: RealtimeFactory;
  fetch?: typeof fetch;
  /** Make a key pair for a new identity where WebCrypto has X25519 (default true). */
  encryption?: boolean;
  /** Seal with e2e2 (PROTOCOL.md: forward secrecy, a transcript, padded sizes) and keep
   * what was read in a sealed local archive; e2e1 envelopes still open. Default false
   * in this version (the chat page moves to it next). */
  e2e2?: boolean;
  /** The outbox's back-off: doubling from `first` ms, at most `max` ms. */
  retry?: { first?: number; max?: number };
  /** What the clients on this storage share (default "secret-rooms"): the names of their
   * Web Locks (`<name>:send`, `<name>:identity`, `<name>:outbox:<roomId>`) and of the
   * BroadcastChannel on which they tell each other what changed. One per storage. */
  name?: string;
}

export interface Identity {
  publicId: string;
  privateId: string;
  username: string;
  publicKey: string | null;
  /** This identity's public ids before its rotations. */
  pastIds: string[];
}

/** "unavailable": this identity has a key pair, but the storage lost it. */
export type Encryption = "encrypted" | "waiting" | "plaintext" | "compromised" | "unavailable";

export interface Peer {
  publicId: string;
  username: string | null;
  publicKey?: string | null;
}

export interface Room {
  roomId: string;
  channel: string;
  peer: Peer;
  joined: boolean;
  closed: boolean;
  lastMessageAt: string | null;
  encryption: Encryption;
  /** The peer's key this room is encrypted to: the first one the room list named. */
  peerKey: string | null;
  /** Other keys the list named for the peer since: the room is then "compromised". */
  changedKeys: string[];
  /** The list now says the peer has no key (an encrypted room stays encrypted). */
  peerWithoutKey: boolean;
  /** Its channel is subscribed: from now on nothing published to it is missed. */
  subscribed?: boolean;
  /** Older messages than those held are on the server: `loadOlder` fetches them. */
  hasOlder?: boolean;
  /** e2e2 only: "started" (sealing with forward secrecy), "starting" (what is written
   * waits for the peer's device to answer the session's first envelope), or null. */
  ratchet?: "started" | "starting" | null;
}

export interface Message {
  id: string;
  roomId: string;
  from: { publicId: string; username: string };
  sentAt: string;
  mine: boolean;
  /** `null` when it could not be opened: see `unreadable`. */
  text: string | null;
  encrypted: boolean;
  /** "no_key": no key for the room yet; "foreign": sealed with a key the room never
   * agreed to (one of `changedKeys`); "altered": anything else that does not open.
   * e2e2: "replayed" (a message read before, sent again under another id),
   * "not_kept" (mine, but this device did not keep it), "too_many_skipped". */
  unreadable?: "no_key" | "foreign" | "altered" | "replayed" | "not_kept" | "too_many_skipped" | "no_session";
  /** With option e2e2: the envelope's version (1: without forward secrecy). */
  version?: 1 | 2;
  /** e2e2, the peer's: its sequence number, how many of the peer's messages just before
   * it are missing (never arrived), and whether it shows after one sealed later. */
  seq?: number;
  missing?: number;
  outOfOrder?: boolean;
  /** e2e2: the peer's hash chain named another message in this one's place. */
  forked?: boolean;
  /** e2e1 from a peer who had sent e2e2 before: a step back. */
  downgraded?: boolean;
}

export interface OutboxItem {
  id: string;
  text: string;
  clear: boolean;
  queuedAt: number;
  attempts: number;
  sealed?: string;
}

export interface Events {
  identity: { identity: Identity };
  rooms: { rooms: Room[] };
  room: { room: Room };
  inbox: { roomId: string | null; from: { publicId: string; username: string } | null };
  /** A message to show; again under the same id when it changed (opened once its key
   * came, or the history's version replaced a live event that differed). */
  message: { roomId: string; message: Message };
  /** The room's outbox changed (here or in another client on this storage). */
  outbox: { roomId: string };
  sent: { roomId: string; id: string };
  failed: { roomId: string; id: string; error: ApiError };
  retry: { roomId: string; id: string; error: unknown; delay: number };
  typing: { roomId: string };
  presence: { roomId: string; at: number };
  /** A realtime channel (the inbox, or a room's) was subscribed. */
  subscribed: { channel: string };
  error: { error: unknown; roomId?: string };
}

export class ApiError extends Error {
  constructor(status: number, code: string, message: string, retryAfter?: number | null);
  readonly status: number;
  /** The API's error code, or "network" when no answer came. */
  readonly code: string;
  readonly retryAfter: number | null;
  /** Sending it again cannot succeed. */
  readonly final: boolean;
}

export function backoff(attempt: number, options?: { first?: number; max?: number }): number;

export class SecretRooms {
  static open(options: ClientOptions): Promise<SecretRooms>;
  constructor(options: ClientOptions);
  /** After the constructor and `on(...)`: what `open` does. Once. */
  start(): Promise<void>;
  identity: Identity;
  /** This client holds the identity's key pair (false: none, or the storage lost it). */
  readonly hasKeyPair: boolean;
  on<K extends keyof Events>(name: K, handler: (detail: Events[K]) => void): () => void;
  rooms(): Room[];
  room(roomId: string): Room | null;
  refreshRooms(): Promise<Room[]>;
  /** Once the inbox and the known rooms' channels are subscribed. */
  ready(): Promise<void>;
  connect(publicId: string): Promise<Room | null>;
  block(roomId: string): Promise<void>;
  rotate(): Promise<string>;
  messages(roomId: string): Message[];
  history(
    roomId: string,
    page?: { before?: string | null; after?: string; limit?: number },
  ): Promise<{ messages: Message[]; next: string | null }>;
  loadOlder(roomId: string, limit?: number): Promise<boolean>;
  send(roomId: string, text: string, options?: { clear?: boolean }): Promise<string>;
  outbox(roomId: string): Promise<OutboxItem[]>;
  /** Let the items `ids` go in clear, in a room whose peer has no key. */
  sendInClear(roomId: string, ids: string[]): Promise<void>;
  /** Take items out of a room's outbox unsent: `ids`, or all. */
  discard(roomId: string, ids?: string[]): Promise<void>;
  typing(roomId: string): boolean;
  here(roomId: string, options?: { hello?: boolean }): boolean;
  /** With the room's peer key, or with `peerKey` (one of `changedKeys`, to show both). */
  safetyCode(roomId: string, peerKey?: string): Promise<string | null>;
  close(): void;
}

export namespace e2e1 {
  const VERSION: "e2e1";
  const PLAINTEXT_CAPACITY: number;
  function toBase64url(bytes: ArrayBuffer | Uint8Array): string;
  function fromBase64url(text: string): Uint8Array;
  function isPublicKey(text: unknown): boolean;
  function envelopeLength(plaintextBytes: number): number;
  function supported(): Promise<boolean>;
  function generateKeyPair(extractable?: boolean): Promise<CryptoKeyPair>;
  function exportPublicKey(keyPair: CryptoKeyPair): Promise<string>;
  function roomKey(keyPair: CryptoKeyPair, peerPublicKey: string, roomId: string): Promise<CryptoKey>;
  function looksSealed(message: string): boolean;
  function isEnvelope(message: string): boolean;
  function seal(key: CryptoKey, roomId: string, senderPublicKey: string, text: string): Promise<string>;
  function open(key: CryptoKey, roomId: string, senderPublicKey: string, envelope: string): Promise<string>;
  function safetyCode(publicKeyA: string, publicKeyB: string): Promise<string>;
}

/** End-to-end encryption, version 2 (PROTOCOL.md): a Double Ratchet session per room. */
export namespace e2e2 {
  const VERSION: "e2e2";
  /** The padded sizes a plaintext may take: 256, 1024 and 2972 bytes. */
  const SIZE_CLASSES: readonly number[];
  /** The most UTF-8 bytes of text one message carries (2971). */
  const PLAINTEXT_CAPACITY: number;
  const MAX_SKIP: number;
  const MAX_SKIPPED: number;
  /** A session as it is kept: plain data (it holds private keys: keep it sealed). */
  interface Session {
    readonly version: "e2e2";
    readonly roomId: string;
    readonly role: "first" | "second";
    readonly [field: string]: unknown;
  }
  interface RatchetKey {
    priv: Uint8Array;
    pub: Uint8Array;
  }
  interface Options {
    /** Replaces the random ratchet keys (test vectors only). */
    newRatchetKey?: () => Promise<RatchetKey>;
  }
  type Notice = { kind: "missing"; from: number; to: number } | { kind: "late" } | { kind: "altered" };
  class OpenError extends Error {
    readonly reason: "garbled" | "replayed" | "too_many_skipped" | "unexpected_hello";
  }
  function envelopeLength(padded: number): number;
  function isEnvelope(message: unknown): boolean;
  function pad(text: string): Uint8Array;
  function unpad(padded: Uint8Array): string;
  function createSession(
    keys: { privateKey: CryptoKey | Uint8Array; publicKey: string | Uint8Array; peerPublicKey: string | Uint8Array; roomId: string },
    options?: Options,
  ): Promise<{ session: Session; hello: string | null }>;
  function canSeal(session: Session): boolean;
  function seal(session: Session, text: string): Promise<{ session: Session; envelope: string; seq: number }>;
  function open(
    session: Session,
    envelope: string,
    options?: Options,
  ): Promise<{ session: Session; text: string | null; seq: number; seen: number; notices: Notice[] }>;
  function serialize(session: Session): string;
  function deserialize(text: string): Session;
  function ratchetKeyFrom(priv: Uint8Array): Promise<RatchetKey>;
  function rootKey(identityPrivateKey: CryptoKey | Uint8Array, peerPublicKey: Uint8Array, roomId: string): Promise<Uint8Array>;
  function kdfRoot(rootKey: Uint8Array, dhOut: Uint8Array): Promise<[Uint8Array, Uint8Array]>;
  function kdfChain(chainKey: Uint8Array): Promise<[Uint8Array, Uint8Array]>;
  function toBase64url(bytes: ArrayBuffer | Uint8Array): string;
  function fromBase64url(text: string): Uint8Array;
}
