// The server's routes answered in the browser, for the page exported without a server (static_page.py puts the
// runs in window.VAELAB_STATIC): decode, grid, encode, interpolate and sample run the networks with nn.js, and
// every answer is a Response, as fetch gives, so that the rest of the page does not know the difference.

import { decodeBase64Floats, forward } from './nn.js';
import { normalizeInk } from './ink.js';
import { setBackend } from './http.js';
import { gaussian } from './course.js';

const json = (value) => new Response(JSON.stringify(value), { headers: { 'Content-Type': 'application/json' } });
const failure = (message, status = 400) => new Response(JSON.stringify({ error: message }), { status });

class LocalRun {
  constructor(run) {
    Object.assign(this, run);
    this.W = decodeBase64Floats(run.weights);
    this.pixels = Uint8Array.from(atob(run.images), (ch) => ch.charCodeAt(0));
    [this.c, this.h, this.w] = run.info.shape;
    this.urls = new Map();
  }

  // z [D] -> image in [0, 1], channels first [C*H*W] (the model's to_image)
  decodeFloat(z) {
    const out = forward(this.decoder, this.W, Float32Array.from(z), [z.length]);
    return out.map(this.output === 'sigmoid' ? (v) => 1 / (1 + Math.exp(-v)) : (v) => Math.min(Math.max(v, 0), 1));
  }

  // z [D] -> uint8 H x W x C, as the server's raw answer
  decodeRaw(z) {
    const image = this.decodeFloat(z); const { c, h, w } = this;
    const raw = new Uint8Array(h * w * c);
    for (let ch = 0; ch < c; ch += 1) for (let p = 0; p < h * w; p += 1) raw[p * c + ch] = Math.round(image[ch * h * w + p] * 255);
    return raw;
  }

  testRaw(index) {
    const n = this.h * this.w * this.c;
    return this.pixels.subarray(index * n, (index + 1) * n);
  }

  dataUrl(raw) {
    const canvas = document.createElement('canvas');
    canvas.width = this.w; canvas.height = this.h;
    const ctx = canvas.getContext('2d'); const image = ctx.createImageData(this.w, this.h);
    for (let p = 0; p < this.w * this.h; p += 1) {
      for (let ch = 0; ch < 3; ch += 1) image.data[4 * p + ch] = raw[p * this.c + (this.c === 3 ? ch : 0)];
      image.data[4 * p + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    return canvas.toDataURL('image/png');
  }

  testUrl(index) {
    if (!this.urls.has(index)) this.urls.set(index, this.dataUrl(this.testRaw(index)));
    return this.urls.get(index);
  }

  // uint8 H x W x C -> the posterior, the reconstruction and 8 draws z ~ q(z|x), as the server's encode answers
  encode(raw) {
    const { c, h, w } = this; const d = this.info.latent_dim;
    const x = new Float32Array(c * h * w);
    for (let ch = 0; ch < c; ch += 1) for (let p = 0; p < h * w; p += 1) x[ch * h * w + p] = raw[p * c + ch] / 255;
    const out = forward(this.encoder, this.W, x, [c, h, w]);
    const mean = Array.from(out.slice(0, d));
    const logvar = Array.from(out.slice(d, 2 * d), (v) => Math.min(Math.max(v, this.logvar[0]), this.logvar[1]));
    const std = logvar.map((v) => Math.exp(0.5 * v));
    const klPerDim = mean.map((m, k) => 0.5 * (m * m + std[k] * std[k] - 1 - logvar[k]));
    const samplesZ = Array.from({ length: 8 }, () => gaussian(d).map((e, k) => mean[k] + std[k] * e));
    return {
      mean, std, kl_per_dim: klPerDim, samples_z: samplesZ, input: this.dataUrl(raw),
      reconstruction: this.dataUrl(this.decodeRaw(mean)), samples: samplesZ.map((z) => this.dataUrl(this.decodeRaw(z))),
      note: 'computed in the browser: no ELBO terms in the exported page',
    };
  }
}

// an uploaded or drawn image file -> uint8 H x W x C at the run's size (grey for one channel)
async function readImage(blob, run, query) {
  const bitmap = await createImageBitmap(blob);
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const n = bitmap.width * bitmap.height;
  const { c, h, w } = run;
  if (c === 1) {
    let grey = new Float64Array(n);
    for (let p = 0; p < n; p += 1) grey[p] = rgba[4 * p];
    let border = 0; let count = 0;
    for (let p = 0; p < n; p += 1) {
      const y = Math.floor(p / bitmap.width); const x = p % bitmap.width;
      if (y === 0 || x === 0 || y === bitmap.height - 1 || x === bitmap.width - 1) { border += grey[p]; count += 1; }
    }
    const invert = query.get('invert') === '1' || (query.get('invert') !== '0' && run.info.ink_box && border / count > 127.5);
    if (invert) grey = grey.map((v) => 255 - v);
    if (query.get('normalize') !== '0' && run.info.ink_box) return Uint8Array.from(normalizeInk(grey, bitmap.height, bitmap.width, h, w, run.info.ink_box));
    if (bitmap.width === w && bitmap.height === h) return Uint8Array.from(grey);
  }
  const small = document.createElement('canvas');
  small.width = w; small.height = h;
  small.getContext('2d').drawImage(canvas, 0, 0, w, h);
  const data = small.getContext('2d').getImageData(0, 0, w, h).data;
  return Uint8Array.from({ length: w * h * c }, (_, q) => data[4 * Math.floor(q / c) + (c === 3 ? q % c : 0)]);
}

function slerp(a, b, t) {
  const na = Math.hypot(...a); const nb = Math.hypot(...b);
  const cos = a.reduce((s, x, i) => s + x * b[i], 0) / (na * nb || 1);
  const omega = Math.acos(Math.min(Math.max(cos, -1), 1));
  if (omega < 1e-6) return a.map((x, i) => x + t * (b[i] - x));
  const sa = Math.sin((1 - t) * omega) / Math.sin(omega); const sb = Math.sin(t * omega) / Math.sin(omega);
  return a.map((x, i) => sa * x + sb * b[i]);
}

export class LocalBackend {
  constructor(data) {
    this.runs = data.runs.map((run) => new LocalRun(run));
  }

  imageUrl(path) {
    const match = path.match(/^api\/runs\/(\d+)\/test\/(\d+)\.png$/);
    return match ? this.runs[Number(match[1])].testUrl(Number(match[2])) : path;
  }

  async fetch(path, options = {}) {
    const [pathname, search] = path.split('?');
    const query = new URLSearchParams(search || '');
    const parts = pathname.split('/').filter(Boolean); // ['api', 'runs', R, route]
    if (parts.length === 2) return json({ runs: this.runs.map((r) => r.info) });
    const run = this.runs[Number(parts[2])];
    if (!run) return failure('no such run', 404);
    const body = typeof options.body === 'string' ? JSON.parse(options.body) : null;
    const raw = (bytes) => new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream' } });
    switch (parts[3]) {
      case 'points': return json({ means: run.means, labels: run.labels, factors: run.factors });
      case 'decode': return raw(run.decodeRaw(body.z));
      case 'grid': {
        const { origin, axes, box, n } = body; const { c, h, w } = run;
        const mosaic = new Uint8Array(n * h * n * w * c);
        for (let r = 0; r < n; r += 1) {
          for (let q = 0; q < n; q += 1) {
            const u = box[0] + ((q + 0.5) * (box[1] - box[0])) / n; const v = box[3] - ((r + 0.5) * (box[3] - box[2])) / n;
            const image = run.decodeRaw(origin.map((o, i) => o + u * axes[0][i] + v * axes[1][i]));
            for (let y = 0; y < h; y += 1) mosaic.set(image.subarray(y * w * c, (y + 1) * w * c), ((r * h + y) * n * w + q * w) * c);
          }
        }
        return raw(mosaic);
      }
      case 'encode': {
        if (!run.encoder) return failure(run.info.no_encoder_reason, 409);
        const test = query.get('test');
        const image = test !== null ? run.testRaw(Number(test)) : await readImage(options.body, run, query);
        return json(run.encode(image));
      }
      case 'interpolate': {
        const z = Array.from({ length: body.steps }, (_, k) => {
          const t = k / (body.steps - 1);
          return body.spherical ? slerp(body.a, body.b, t) : body.a.map((x, i) => x + t * (body.b[i] - x));
        });
        return json({ z, images: z.map((p) => run.dataUrl(run.decodeRaw(p))) });
      }
      case 'sample': {
        const z = Array.from({ length: body.n }, () => gaussian(run.info.latent_dim));
        return json({ z, images: z.map((p) => run.dataUrl(run.decodeRaw(p))) });
      }
      default: return failure(`no route ${pathname}`, 404);
    }
  }
}

if (window.VAELAB_STATIC) {
  window.vaelabLocal = new LocalBackend(window.VAELAB_STATIC);
  setBackend(window.vaelabLocal);
}
