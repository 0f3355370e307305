// Bytes as both envelope versions write them: unpadded, canonical base64url, and a
// bytewise order (keys sort so, for a safety code or a session's roles).

export function toBase64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Strict: unpadded base64url only, or an error. */
export function fromBase64url(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error("not base64url");
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  // Canonical only: the same bytes must encode back to the same text.
  if (toBase64url(bytes) !== text) throw new Error("not canonical base64url");
  return bytes;
}

/** Characters of unpadded base64url for `n` bytes. */
export const base64urlLength = (n) => Math.floor(n / 3) * 4 + (n % 3 === 0 ? 0 : (n % 3) + 1);

export function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/** A fresh 128-bit id (an outbox item's, a hello's), as the API takes one. */
export const newId = () => toBase64url(crypto.getRandomValues(new Uint8Array(16)));
