// What the chat page keeps, read (and changed) from the test as another tab would: the
// client library's storage is an IndexedDB database named after the page's storage key
// (`secret-rooms:[…]`, one per configuration), object store "values"; the page's own
// values (the open room, what was read) are in localStorage under the same key.

/** Every database of the page in this browser context, with its value `name`. */
export function storedValues(page, name) {
  return page.evaluate(async (name) => {
    const found = [];
    for (const { name: database } of await indexedDB.databases()) {
      if (!database?.startsWith("secret-rooms:[")) continue;
      const value = await new Promise((resolve, reject) => {
        const request = indexedDB.open(database);
        request.onerror = () => reject(request.error);
        request.onsuccess = () => {
          const db = request.result;
          if (!db.objectStoreNames.contains("values")) {
            db.close();
            resolve(undefined);
            return;
          }
          const get = db.transaction("values", "readonly").objectStore("values").get(name);
          get.onsuccess = () => {
            db.close();
            resolve(get.result);
          };
          get.onerror = () => {
            db.close();
            reject(get.error);
          };
        };
      });
      found.push({ database, value });
    }
    return found;
  }, name);
}

/** The identity the page stored whose public id is `publicId`, and its storage key. */
export async function storedIdentity(page, publicId) {
  const found = (await storedValues(page, "identity")).find((entry) => entry.value?.publicId === publicId);
  return found ? { storageKey: found.database, ...found.value } : null;
}

/** Put `value` under `name` in the page's database `database`, as another tab could. */
export function store(page, database, name, value) {
  return page.evaluate(([database, name, value]) => new Promise((resolve, reject) => {
    const request = indexedDB.open(database);
    request.onerror = () => reject(request.error);
    request.onsuccess = () => {
      const db = request.result;
      const transaction = db.transaction("values", "readwrite");
      transaction.objectStore("values").put(value, name);
      transaction.oncomplete = () => {
        db.close();
        resolve();
      };
      transaction.onerror = () => {
        db.close();
        reject(transaction.error);
      };
    };
  }), [database, name, value]);
}

/** The room open on the page (its own value, in localStorage). */
export function openRoomId(page) {
  return page.evaluate(() => {
    for (const key of Object.keys(localStorage)) if (key.endsWith(":open")) return JSON.parse(localStorage.getItem(key));
    return null;
  });
}
