// Where a client keeps its identity, its key pair, what it trusts of each room and its
// outbox. A storage is any object with three async methods over structured values:
// `get(name)` (undefined when absent), `set(name, value)` and `delete(name)`. What
// `set` resolves is durable: the outbox relies on it ("persist before send").

/** In this process only: for tests, scripts and servers (a new client on the same
 * storage is a reload). Values are copied in and out, as a real storage would. */
export function memoryStorage() {
  const values = new Map();
  return {
    async get(name) {
      return values.has(name) ? structuredClone(values.get(name)) : undefined;
    },
    async set(name, value) {
      values.set(name, structuredClone(value));
    },
    async delete(name) {
      values.delete(name);
    },
  };
}

/** A Web Storage (`localStorage`, `sessionStorage`, or anything with getItem, setItem
 * and removeItem), under `prefix`. It keeps text only, so a key pair is kept as JWK: the
 * client then makes its key pair extractable (`keepsKeys: false`). Prefer
 * `indexedDBStorage` in a browser, where the private key never leaves WebCrypto. */
export function webStorage(store, prefix = "secret-rooms:") {
  const jwk = "jwk:";
  return {
    keepsKeys: false,
    async get(name) {
      const text = store.getItem(prefix + name);
      if (text === null) return undefined;
      if (!text.startsWith(jwk)) return JSON.parse(text);
      const { publicKey, privateKey } = JSON.parse(text.slice(jwk.length));
      const algorithm = { name: "X25519" };
      return {
        publicKey: await crypto.subtle.importKey("jwk", publicKey, algorithm, true, []),
        privateKey: await crypto.subtle.importKey("jwk", privateKey, algorithm, true, ["deriveBits"]),
      };
    },
    async set(name, value) {
      if (value?.privateKey instanceof CryptoKey) {
        const pair = {
          publicKey: await crypto.subtle.exportKey("jwk", value.publicKey),
          privateKey: await crypto.subtle.exportKey("jwk", value.privateKey),
        };
        store.setItem(prefix + name, jwk + JSON.stringify(pair));
      } else {
        store.setItem(prefix + name, JSON.stringify(value));
      }
    },
    async delete(name) {
      store.removeItem(prefix + name);
    },
  };
}

/** IndexedDB (browsers): database `database`, object store `objects`. Key pairs are
 * kept as CryptoKeys, non-extractable; commits are seen by every tab at once. */
export function indexedDBStorage(database = "secret-rooms-client", objects = "values") {
  const open = () =>
    new Promise((resolve, reject) => {
      const request = indexedDB.open(database, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(objects);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  const run = async (mode, action) => {
    const db = await open();
    try {
      return await new Promise((resolve, reject) => {
        const transaction = db.transaction(objects, mode);
        const request = action(transaction.objectStore(objects));
        transaction.oncomplete = () => resolve(request.result);
        transaction.onerror = () => reject(transaction.error);
        transaction.onabort = () => reject(transaction.error ?? new Error("aborted"));
      });
    } finally {
      db.close();
    }
  };
  return {
    get: (name) => run("readonly", (store) => store.get(name)),
    set: async (name, value) => {
      await run("readwrite", (store) => store.put(value, name));
    },
    delete: async (name) => {
      await run("readwrite", (store) => store.delete(name));
    },
  };
}
