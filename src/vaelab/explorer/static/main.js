// The page: one column per run, and the shared panels (encode, map settings, interpolate, sample) that act on
// every column at once, so that side by side the same image is encoded and interpolated by each run.

import { Latest, getJSON, postJSON, request } from './http.js';
import { RunView } from './run.js';

const $ = (id) => document.getElementById(id);
const settings = { base: 'origin', showGrid: true, gridN: 15 };
let statusTimer = null;

const app = {
  settings,
  error(view, error) {
    const text = `${view ? `${view.info.name}: ` : ''}${error && error.message ? error.message : error}`;
    $('status').textContent = text;
    console.error(text);
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => { $('status').textContent = ''; }, 8000);
  },
};

function setupEncoding(views) {
  const encoders = views.filter((v) => v.info.has_encoder);
  const missing = views.filter((v) => !v.info.has_encoder);
  if (missing.length) {
    const names = missing.map((v) => v.info.name).join(', ');
    const which = missing.length > 1 ? 'they have' : 'it has';
    $('no-encoder').hidden = false;
    $('no-encoder').textContent = `${encoders.length ? 'Not encoded by' : 'Not available for'} ${names}: ${which} no encoder `
      + `(see ${missing.length > 1 ? 'their columns' : 'its column'}).`;
  }
  const source = encoders[0] || views[0];
  const [, height, width] = source.info.shape;
  const canvas = $('draw');
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext('2d');
  const clear = () => { ctx.fillStyle = '#000'; ctx.fillRect(0, 0, width, height); };
  clear();
  if (!encoders.length) {
    for (const el of document.querySelectorAll('#encode-panel > :not(h2, #no-encoder)')) el.hidden = true;
    return;
  }

  // each run encodes the latest image asked for, one request at a time
  for (const view of encoders) {
    view.encodes = new Latest(async ({ blob, invert, paint }) => {
      const response = await request(`${view.api}/encode${invert ? '?invert=1' : ''}`, {
        method: 'POST', body: blob, headers: { 'Content-Type': blob.type || 'application/octet-stream' },
      });
      const result = await response.json();
      view.showPosterior(result);
      if (view === encoders[0]) {
        $('input-note').textContent = result.note ? `Note: ${result.note}.` : '';
        if (paint) {
          const img = new Image();
          img.onload = () => ctx.drawImage(img, 0, 0, width, height);
          img.src = result.input;
        }
      }
    }, (e) => app.error(view, e));
  }
  const encodeAll = (blob, options = {}) => encoders.forEach((v) => v.encodes.push({ blob, ...options }));
  const encodeDrawing = () => canvas.toBlob((blob) => encodeAll(blob), 'image/png');

  // drawing: light strokes on black, like the digits; encoded live (throttled) and when the stroke ends
  let last = null; let lastEncode = 0;
  const pen = Math.max(1.2, width / 11);
  const at = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [((event.clientX - rect.left) * width) / rect.width, ((event.clientY - rect.top) * height) / rect.height];
  };
  const stroke = (from, to) => {
    ctx.strokeStyle = '#fff'; ctx.fillStyle = '#fff'; ctx.lineWidth = pen; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
  };
  canvas.addEventListener('pointerdown', (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(last, last);
    document.querySelectorAll('#gallery img.chosen').forEach((img) => img.classList.remove('chosen'));
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!last) return;
    const point = at(event);
    stroke(last, point);
    last = point;
    if (performance.now() - lastEncode > 150) { lastEncode = performance.now(); encodeDrawing(); }
  });
  const end = () => { if (last) { last = null; encodeDrawing(); } };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  $('clear').addEventListener('click', () => { clear(); $('input-note').textContent = ''; });

  $('upload').addEventListener('change', () => {
    const file = $('upload').files[0];
    if (file) encodeAll(file, { invert: $('invert').checked, paint: true });
    $('upload').value = '';
  });

  // the test images of the first run with an encoder
  const n = source.info.n_test;
  let offset = 0;
  const showGallery = () => {
    const count = Math.min(32, n);
    $('gallery').replaceChildren(...Array.from({ length: count }, (_, k) => {
      const index = (offset + k) % n;
      const img = document.createElement('img');
      img.src = `${source.api}/test/${index}.png`;
      img.alt = `test image ${index}`; img.title = `test image ${index}: click to encode`;
      img.dataset.index = index;
      img.addEventListener('click', async () => {
        document.querySelectorAll('#gallery img.chosen').forEach((other) => other.classList.remove('chosen'));
        img.classList.add('chosen');
        try {
          encodeAll(await (await request(img.src)).blob(), { paint: true });
        } catch (e) { app.error(null, e); }
      });
      return img;
    }));
  };
  showGallery();
  $('more').addEventListener('click', () => { offset = (offset + 32) % n; showGallery(); });
}

function setupMap(views) {
  $('base').addEventListener('change', () => {
    settings.base = $('base').value;
    views.forEach((v) => { v.choosePlane(false); v.showCurrent(); });
  });
  $('show-grid').addEventListener('change', () => {
    settings.showGrid = $('show-grid').checked;
    views.forEach((v) => v.requestGrid());
  });
  $('grid-n').addEventListener('change', () => {
    const n = Math.round(Number($('grid-n').value));
    settings.gridN = Number.isFinite(n) ? Math.max(2, Math.min(32, n)) : 15;
    $('grid-n').value = settings.gridN;
    views.forEach((v) => v.requestGrid());
  });
}

function setupInterpolation(views) {
  const state = () => {
    const a = views.every((v) => v.A); const b = views.every((v) => v.B);
    $('ab-state').textContent = a && b ? 'A and B set: interpolate' : `${a ? 'A set' : 'A not set'}, ${b ? 'B set' : 'B not set'}`;
  };
  $('set-a').addEventListener('click', () => { views.forEach((v) => { v.A = v.z.slice(); v.map.drawOverlay(); }); state(); });
  $('set-b').addEventListener('click', () => { views.forEach((v) => { v.B = v.z.slice(); v.map.drawOverlay(); }); state(); });
  $('interpolate').addEventListener('click', () => {
    const steps = Math.max(2, Math.min(64, Math.round(Number($('steps').value)) || 10));
    $('steps').value = steps;
    const spherical = $('interp-mode').value === 'spherical';
    for (const view of views) {
      if (!view.A || !view.B) { app.error(view, 'set A and B first (each from the current point)'); continue; }
      postJSON(`${view.api}/interpolate`, { a: view.A, b: view.B, steps, spherical })
        .then((result) => view.showInterpolation(result), (e) => app.error(view, e));
    }
  });
}

function setupSampling(views) {
  const names = [...new Set(views.flatMap((v) => v.info.samplers))];
  for (const sampler of names) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = `Sample from ${sampler}`;
    button.addEventListener('click', () => {
      for (const view of views.filter((v) => v.info.samplers.includes(sampler))) {
        postJSON(`${view.api}/sample`, { n: 8, sampler }).then((r) => view.showSamples(r), (e) => app.error(view, e));
      }
    });
    $('samplers').append(button);
  }
}

async function main() {
  const { runs } = await getJSON('api/runs');
  const controls = 290;
  const available = window.innerWidth - controls - 24 * runs.length;
  const mapSize = Math.max(280, Math.min(440, Math.floor(available / runs.length)));
  const views = runs.map((info) => new RunView(info, app, mapSize));
  $('runs').append(...views.map((v) => v.root));
  $('runs-summary').textContent = runs.map((r) => r.name).join(' · ');
  document.title = `vaelab explore: ${runs.map((r) => r.name).join(', ')}`;
  window.explorer = { views, settings };
  await Promise.all(views.map((v) => v.load()));
  setupEncoding(views);
  setupMap(views);
  setupInterpolation(views);
  setupSampling(views);
  document.body.dataset.ready = 'true';
}

main().catch((e) => app.error(null, e));
