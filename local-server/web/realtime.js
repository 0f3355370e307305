// A small client of the Pusher Channels protocol (version 7), enough for private
// channels: connect, authorize and subscribe, receive events, keep alive, reconnect.
// It speaks to Pusher itself or to any Pusher-protocol server (the local server's
// embedded one, soketi, sockudo), and has the shape of pusher-js that the client library
// takes (`subscribe(name)` gives a channel to `bind` and `trigger` on, which hears
// `pusher:subscription_succeeded` and `pusher:subscription_error`; `unsubscribe`,
// `disconnect`). See docs/chat-page.md for why the page carries its own.

const PROTOCOL = 7;

export class Realtime {
  /**
   * @param {object} options
   * @param {string} options.key        the app key
   * @param {string} [options.cluster]  Pusher cluster, used when no wsHost is given
   * @param {string} [options.wsHost]   host of a Pusher-protocol server
   * @param {number} [options.wsPort]
   * @param {boolean} [options.forceTLS]
   * @param {(socketId: string, channel: string) => Promise<string>} options.authorize
   *        returns the `key:signature` for a private channel
   * @param {(status: string, detail?: string) => void} [options.onStatus]
   *        "connecting", "connected", "reconnecting", "failed"
   */
  constructor(options) {
    this.options = options;
    this.channels = new Map(); // name -> Map<event, Set<handler>>
    this.socketId = null;
    this.ws = null;
    this.attempt = 0;
    this.closedByUs = false;
    this.timers = {};
  }

  url() {
    const { key, cluster, wsHost, wsPort, forceTLS } = this.options;
    const tls = forceTLS ?? true;
    const host = wsHost || `ws-${cluster}.pusher.com`;
    const port = wsPort || (tls ? 443 : 80);
    return `${tls ? "wss" : "ws"}://${host}:${port}/app/${encodeURIComponent(key)}?protocol=${PROTOCOL}&client=secret-rooms-web&version=1.0`;
  }

  status(state, detail) {
    this.state = state;
    this.options.onStatus?.(state, detail);
  }

  connect() {
    this.closedByUs = false;
    this.status(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (error) {
      // A URL the page's Content-Security-Policy (or the browser) refuses: a failed
      // attempt like any other.
      this.closed({ code: 1006, reason: String(error) });
      return;
    }
    this.ws = ws;
    ws.onmessage = (message) => this.receive(message.data);
    // A connection that fails may report only an error (Chromium, for one its
    // Content-Security-Policy blocks), or an error then a close: handled once.
    let ended = false;
    const end = (event) => {
      if (ended || this.ws !== ws) return;
      ended = true;
      this.closed(event);
    };
    ws.onclose = end;
    ws.onerror = () => {
      if (ws.readyState !== WebSocket.OPEN) end({ code: 1006, reason: "the connection failed" });
    };
  }

  disconnect() {
    this.closedByUs = true;
    Object.values(this.timers).forEach(clearTimeout);
    this.ws?.close();
  }

  send(event, data, channel) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(channel ? { event, channel, data } : { event, data }));
    return true;
  }

  /** A client event (`client-…`) to the channel's other subscribers; `false` when not
   * connected. The server must allow client events (Pusher: an app setting). */
  trigger(channel, event, data) {
    return this.send(event, data, channel);
  }

  /** The channel `name`, subscribed now and again after each reconnect. */
  subscribe(name) {
    if (!this.channels.has(name)) {
      this.channels.set(name, new Map());
      if (this.socketId) this.authorizeAndSubscribe(name);
    }
    const handlers = this.channels.get(name);
    return {
      name,
      bind: (event, handler) => {
        if (!handlers.has(event)) handlers.set(event, new Set());
        handlers.get(event).add(handler);
      },
      unbind: (event, handler) => handlers.get(event)?.delete(handler),
      trigger: (event, data) => this.trigger(name, event, data),
    };
  }

  /** Call the handlers bound to `event` on `channel`. */
  dispatch(channel, event, data) {
    for (const handler of this.channels.get(channel)?.get(event) ?? []) handler(data);
  }

  unsubscribe(channel) {
    this.channels.delete(channel);
    this.send("pusher:unsubscribe", { channel });
  }

  async authorizeAndSubscribe(channel) {
    const socketId = this.socketId;
    try {
      const auth = channel.startsWith("private-") ? await this.options.authorize(socketId, channel) : undefined;
      if (socketId === this.socketId) this.send("pusher:subscribe", { channel, auth });
    } catch (error) {
      this.dispatch(channel, "pusher:subscription_error", { error: String(error?.message ?? error) });
    }
  }

  receive(text) {
    this.keepAlive();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    const data = typeof frame.data === "string" ? safeParse(frame.data) : frame.data;
    switch (frame.event) {
      case "pusher:connection_established":
        this.socketId = data.socket_id;
        this.activityTimeout = Math.min(data.activity_timeout ?? 120, 120) * 1000;
        this.attempt = 0;
        this.status("connected");
        for (const channel of this.channels.keys()) this.authorizeAndSubscribe(channel);
        return;
      case "pusher:ping":
        this.send("pusher:pong", {});
        return;
      case "pusher:pong":
        return;
      case "pusher:error":
        // 4000-4099: do not reconnect (bad key, over quota); others are retried on close.
        if (data?.code >= 4000 && data?.code < 4100) this.refused = data.message;
        return;
      case "pusher:subscription_error":
        this.dispatch(frame.channel, "pusher:subscription_error", { error: data?.error ?? "subscription refused" });
        return;
      case "pusher_internal:subscription_succeeded":
        this.dispatch(frame.channel, "pusher:subscription_succeeded", data);
        return;
    }
    // The protocol's own events are handled above, never a handler's to forge.
    if (typeof frame.event === "string" && !frame.event.startsWith("pusher")) this.dispatch(frame.channel, frame.event, data);
  }

  // Ping after a quiet activity timeout; a connection that does not answer is replaced.
  keepAlive() {
    clearTimeout(this.timers.ping);
    clearTimeout(this.timers.dead);
    this.timers.ping = setTimeout(() => {
      this.send("pusher:ping", {});
      this.timers.dead = setTimeout(() => this.ws?.close(), 30_000);
    }, this.activityTimeout ?? 120_000);
  }

  closed(event) {
    this.socketId = null;
    Object.values(this.timers).forEach(clearTimeout);
    if (this.closedByUs) return;
    if (this.refused || (event.code >= 4000 && event.code < 4100)) {
      this.status("failed", this.refused ?? event.reason);
      return;
    }
    this.attempt += 1;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(this.attempt - 1, 5));
    this.status("reconnecting", `retrying in ${Math.round(delay / 1000)} s`);
    this.timers.reconnect = setTimeout(() => this.connect(), delay);
  }
}

function safeParse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
