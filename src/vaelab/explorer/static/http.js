// Talking to the server: fetch with the server's one-line errors, JSON in and out, and one call in flight at a time.

export class ApiError extends Error {}

// Who answers 'api/...' requests: the server (fetch), or, in a page exported without a server, an in-browser
// backend with the same routes that returns Response objects (see local.js).
let backend = null;
export function setBackend(answer) { backend = answer; }

// The URL of an image the API serves (a test image): itself, or a data: URL from the in-browser backend.
export function imageUrl(path) {
  return backend && backend.imageUrl ? backend.imageUrl(path) : path;
}

// fetch, turning a non-2xx answer into an ApiError carrying the server's one-line message
export async function request(path, options = {}) {
  const response = backend && path.startsWith('api/') ? await backend.fetch(path, options) : await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch { /* not JSON */ }
    throw new ApiError(message);
  }
  return response;
}

export async function getJSON(path) {
  return (await request(path)).json();
}

export async function postJSON(path, body, asBytes = false) {
  const response = await request(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  return asBytes ? new Uint8Array(await response.arrayBuffer()) : response.json();
}

// At most one call in flight; a call asked for while one runs replaces any waiting one (the latest wins).
export class Latest {
  constructor(fn, onError) {
    this.fn = fn; this.onError = onError;
    this.pending = null; this.busy = false;
    this.calls = 0; this.inFlight = 0; this.maxInFlight = 0;
  }

  push(arg) {
    this.pending = { arg };
    if (!this.busy) this.pump();
  }

  async pump() {
    this.busy = true;
    while (this.pending) {
      const { arg } = this.pending;
      this.pending = null;
      this.calls += 1; this.inFlight += 1;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      // one call after the other is the point of this class: the next waits for this one
      // eslint-disable-next-line no-await-in-loop
      try { await this.fn(arg); } catch (error) { this.onError(error); }
      this.inFlight -= 1;
    }
    this.busy = false;
  }
}
