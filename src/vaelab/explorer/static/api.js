// Talking to the server, and the small pieces every part of the page shares.

export class ApiError extends Error {}

// fetch, turning a non-2xx answer into an ApiError carrying the server's one-line message
export async function request(path, options = {}) {
  const response = await fetch(path, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
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
      try { await this.fn(arg); } catch (error) { this.onError(error); }
      this.inFlight -= 1;
    }
    this.busy = false;
  }
}

// Paint raw uint8 pixels (rows of H x W x C, C = 1 or 3) on a canvas of the image's own size.
export function paintRaw(canvas, bytes, height, width, channels) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const context = canvas.getContext('2d');
  const image = context.createImageData(width, height);
  const out = image.data;
  for (let p = 0, q = 0; p < width * height; p += 1, q += channels) {
    const r = bytes[q];
    out[4 * p] = r;
    out[4 * p + 1] = channels === 3 ? bytes[q + 1] : r;
    out[4 * p + 2] = channels === 3 ? bytes[q + 2] : r;
    out[4 * p + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

export function imageElement(src, title = '') {
  const img = document.createElement('img');
  img.src = src; img.alt = title; img.title = title;
  return img;
}

// --- latent geometry: a plane z = origin + u * axes[0] + v * axes[1] (orthonormal axes) ---

export const dot = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0);

export function project(z, plane) {
  const d = z.map((x, i) => x - plane.origin[i]);
  return [dot(d, plane.axes[0]), dot(d, plane.axes[1])];
}

// The latent point at (u, v) of the plane whose other components are those of `base`.
export function pointAt(u, v, plane, base) {
  const [bu, bv] = project(base, plane);
  return base.map((x, i) => x + (u - bu) * plane.axes[0][i] + (v - bv) * plane.axes[1][i]);
}

// The plane's origin shifted so that z(u, v) = origin + u a0 + v a1 keeps base's other components.
export function shiftedOrigin(plane, base) {
  return pointAt(0, 0, plane, base);
}

// The one-sigma ellipse of N(mean, diag(std^2)) projected on the plane, as [u, v] points.
export function ellipse(mean, std, plane, n = 64) {
  const [a0, a1] = plane.axes;
  let c00 = 0; let c01 = 0; let c11 = 0;
  std.forEach((s, k) => { const v = s * s; c00 += a0[k] * a0[k] * v; c01 += a0[k] * a1[k] * v; c11 += a1[k] * a1[k] * v; });
  const tr = (c00 + c11) / 2; const det = c00 * c11 - c01 * c01;
  const gap = Math.sqrt(Math.max(tr * tr - det, 0));
  const l1 = tr + gap; const l2 = Math.max(tr - gap, 0);
  const angle = Math.abs(c01) > 1e-12 ? Math.atan2(l1 - c00, c01) : (c00 >= c11 ? 0 : Math.PI / 2);
  const [cu, cv] = project(mean, plane);
  const points = [];
  for (let i = 0; i <= n; i += 1) {
    const t = (2 * Math.PI * i) / n;
    const x = Math.sqrt(l1) * Math.cos(t); const y = Math.sqrt(l2) * Math.sin(t);
    points.push([cu + x * Math.cos(angle) - y * Math.sin(angle), cv + x * Math.sin(angle) + y * Math.cos(angle)]);
  }
  return points;
}

export const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf'];
export const colour = (label) => (label == null ? '#555' : COLOURS[label % COLOURS.length]);
