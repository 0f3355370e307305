// secret-rooms-client: the protocol of secret-rooms for chat front ends.
export { SecretRooms, ApiError, backoff } from "./client.js";
export { memoryStorage, webStorage, indexedDBStorage } from "./storage.js";
export * as e2e1 from "./e2e1.js";
export * as e2e2 from "./e2e2.js";
