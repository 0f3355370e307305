// What every part of the page's view uses: its elements, the error line, the
// connection status, and what the page keeps of its own (which room is open, what was
// read) in localStorage, beside the client's storage.

export const $ = (id) => document.getElementById(id);

export function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

/** A person-facing text for what went wrong. */
export function explain(error) {
  if (error?.code === "realtime_unavailable") return "The message could not be delivered right now. Try again in a moment.";
  if (error?.code === "unknown_private_id") return "This server does not know your identity any more. Use “Start over” below.";
  return error?.message ?? String(error);
}

const LABELS = { connecting: "connecting…", connected: "live", reconnecting: "reconnecting…", failed: "offline" };

export function setStatus(state, detail) {
  $("status").dataset.state = state;
  $("status").textContent = LABELS[state] ?? state;
  $("status").title = detail ?? "";
  if (state === "failed") showError(`Realtime connection refused: ${detail ?? "unknown reason"}`);
}

/** The page's own values (not the client's): under `<storage key>:<name>`. */
export function localValues(storageKey) {
  return {
    load(name) {
      try {
        return JSON.parse(localStorage.getItem(`${storageKey}:${name}`));
      } catch {
        return null;
      }
    },
    save(name, value) {
      if (value === null) localStorage.removeItem(`${storageKey}:${name}`);
      else localStorage.setItem(`${storageKey}:${name}`, JSON.stringify(value));
    },
  };
}

export const peerName = (room) => room.peer.username ?? room.peer.publicId;
