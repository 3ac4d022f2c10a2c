// The encoding panel: draw on the canvas, upload a file or pick a test image; every run with an encoder shows
// the posterior. A drawing is made to look like the data (ink.js) before it is sent: "what the model sees".

import { Latest, imageUrl, request } from './http.js';
import { normalizeInk, shrink } from './ink.js';

const $ = (id) => document.getElementById(id);
const DRAW_SCALE = 6; // drawing pixels per data pixel: strokes drawn finely, then averaged down

export function setupEncoding(views, app) {
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
  const box = source.info.ink_box; // the data's normalization box (20 for MNIST), null if not digit-like
  const canvas = $('draw');
  const size = width * DRAW_SCALE; const sizeV = height * DRAW_SCALE;
  canvas.width = size; canvas.height = sizeV;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const seen = $('seen');
  seen.width = width; seen.height = height;
  const seenCtx = seen.getContext('2d');
  const guide = $('guide');
  const likeData = $('like-data');
  if (box) {
    const side = 170 - 2; // the canvas's inner CSS size
    const w = (side * box) / width; const h = (side * box) / height;
    Object.assign(guide.style, { width: `${w}px`, height: `${h}px`, left: `${1 + (side - w) / 2}px`, top: `${1 + (side - h) / 2}px` });
  } else {
    guide.hidden = true;
    likeData.checked = false;
    likeData.parentElement.hidden = true;
  }
  const blank = () => {
    ctx.fillStyle = '#000'; ctx.fillRect(0, 0, size, sizeV);
    seenCtx.fillStyle = '#000'; seenCtx.fillRect(0, 0, width, height);
  };
  blank();
  if (!encoders.length) {
    for (const el of document.querySelectorAll('#encode-panel > :not(h2, #no-encoder)')) el.hidden = true;
    return;
  }
  const errors = $('encode-errors');

  // each run encodes the latest image asked for, one request at a time
  for (const view of encoders) {
    view.encodes = new Latest(async ({ blob, query, paint, scroll, stroke }) => {
      const response = await request(`${view.api}/encode?${query}`, {
        method: 'POST', body: blob, headers: { 'Content-Type': blob.type || 'application/octet-stream' },
      });
      const result = await response.json();
      view.showPosterior(result, scroll && view === encoders[0]);
      if (view === encoders[0]) {
        if (stroke) seen.dataset.encoded = stroke; // the finished drawing's posterior is shown (tests wait for it)
        $('input-note').textContent = result.note ? `Note: ${result.note}.` : '';
        if (paint) {
          const img = new Image();
          img.onload = () => {
            seenCtx.drawImage(img, 0, 0, width, height);
            ctx.imageSmoothingEnabled = false;
            ctx.drawImage(img, 0, 0, size, sizeV);
          };
          img.src = result.input;
        }
      }
    }, (e) => app.error(view, e, errors));
  }
  const encodeAll = (blob, options) => encoders.forEach((v) => v.encodes.push({ blob, ...options }));

  // what the model sees: the drawing's grey levels, cropped, scaled and centred like the data (or only shrunk)
  const modelInput = () => {
    const rgba = ctx.getImageData(0, 0, size, sizeV).data;
    const grey = new Float64Array(size * sizeV);
    for (let p = 0; p < grey.length; p += 1) grey[p] = rgba[4 * p];
    return likeData.checked && box ? normalizeInk(grey, sizeV, size, height, width, box) : shrink(grey, sizeV, size, height, width);
  };
  let strokes = 0;
  const encodeDrawing = (final = false) => {
    const pixels = modelInput();
    const stroke = final ? String((strokes += 1)) : null;
    if (final) seen.dataset.stroke = stroke;
    const image = seenCtx.createImageData(width, height);
    pixels.forEach((v, p) => { image.data.set([v, v, v, 255], 4 * p); });
    seenCtx.putImageData(image, 0, 0);
    seen.dataset.pixels = pixels.join(',');
    seen.toBlob((blob) => encodeAll(blob, { query: 'invert=0&normalize=0', scroll: final, stroke }), 'image/png');
  };
  app.modelInput = modelInput;

  // drawing: light strokes on black, like the digits; encoded live (throttled) and when the stroke ends
  let last = null; let lastEncode = 0;
  const pen = Math.max(1.5, size / 12);
  const at = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [((event.clientX - rect.left) * size) / rect.width, ((event.clientY - rect.top) * sizeV) / rect.height];
  };
  const stroke = (from, to) => {
    ctx.strokeStyle = '#fff'; ctx.lineWidth = pen; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    ctx.beginPath(); ctx.moveTo(...from); ctx.lineTo(...to); ctx.stroke();
  };
  const unchoose = () => document.querySelectorAll('#gallery .chosen').forEach((b) => b.classList.remove('chosen'));
  canvas.addEventListener('pointerdown', (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    stroke(last, last);
    unchoose();
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!last) return;
    const point = at(event);
    stroke(last, point);
    last = point;
    if (performance.now() - lastEncode > 150) { lastEncode = performance.now(); encodeDrawing(); }
  });
  const end = () => { if (last) { last = null; encodeDrawing(true); } };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  likeData.addEventListener('change', () => encodeDrawing(true));
  const clear = () => {
    blank();
    delete seen.dataset.pixels;
    $('input-note').textContent = '';
    unchoose();
    encoders.forEach((v) => { v.encodes.pending = null; v.clearPosterior(); });
  };
  $('clear').addEventListener('click', clear);
  canvas.addEventListener('keydown', (event) => {
    if (event.key === 'Delete' || event.key === 'Backspace') { event.preventDefault(); clear(); }
  });

  $('upload').addEventListener('change', () => {
    const file = $('upload').files[0];
    const query = `invert=${$('background').value === 'auto' ? 'auto' : $('background').value}&normalize=${likeData.checked ? 1 : 0}`;
    if (file) { unchoose(); encodeAll(file, { query, paint: true, scroll: true }); }
    $('upload').value = '';
  });

  // the test images of the first run with an encoder
  const n = source.info.n_test;
  let offset = 0;
  const showGallery = () => {
    const count = Math.min(32, n);
    $('gallery').replaceChildren(...Array.from({ length: count }, (_, k) => {
      const index = (offset + k) % n;
      const button = document.createElement('button');
      button.type = 'button';
      button.title = `test image ${index}: click to encode`;
      button.dataset.index = index;
      const img = document.createElement('img');
      img.src = imageUrl(`${source.api}/test/${index}.png`);
      img.alt = `test image ${index}`;
      button.append(img);
      button.addEventListener('click', async () => {
        unchoose();
        button.classList.add('chosen');
        try {
          encodeAll(await (await request(img.src)).blob(), { query: 'invert=0&normalize=0', paint: true, scroll: true });
        } catch (e) { app.error(null, e, errors); }
      });
      return button;
    }));
  };
  showGallery();
  $('more').addEventListener('click', () => { offset = (offset + 32) % n; showGallery(); });
}
