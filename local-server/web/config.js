// Where the page's API and realtime server are, and under which name it keeps what it
// stores: from the query string (?api=…&key=…&cluster=…&wsHost=…&wsPort=…&forceTLS=…)
// or from config.json next to this page (the local server serves one).

export async function loadConfig() {
  const q = new URLSearchParams(location.search);
  if (q.get("key")) {
    return {
      fromAddress: true,
      apiBase: q.get("api") ?? "",
      pusher: {
        key: q.get("key"),
        cluster: q.get("cluster") ?? undefined,
        wsHost: q.get("wsHost") ?? undefined,
        wsPort: q.get("wsPort") ? Number(q.get("wsPort")) : undefined,
        forceTLS: q.get("forceTLS") !== "false",
      },
    };
  }
  const res = await fetch("config.json");
  if (!res.ok) throw new Error("config.json is missing: pass ?api=…&key=…&cluster=… in the address");
  const config = await res.json();
  if (config.pusher.sameOrigin) {
    Object.assign(config.pusher, {
      wsHost: location.hostname,
      wsPort: Number(location.port) || (location.protocol === "https:" ? 443 : 80),
      forceTLS: location.protocol === "https:",
    });
  }
  return config;
}

/** The name the page keeps its identity (and all else) under. It belongs to the whole
 * configuration, not to the API alone: a link that keeps the API but points the
 * realtime settings elsewhere must not make this page sign that server's socket into
 * the rooms of the identity it stored. Such a link gets an identity of its own. */
export function storageKeyOf(config) {
  const { key, cluster, wsHost, wsPort, forceTLS } = config.pusher;
  const apiBase = config.apiBase || location.origin;
  return `secret-rooms:${JSON.stringify([apiBase, key, cluster ?? null, wsHost ?? null, wsPort ?? null, forceTLS ?? null])}`;
}
