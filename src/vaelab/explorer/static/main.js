// The page: one column per run, and the shared panels (encode, map settings, interpolate, sample) that act on
// every column at once, so that side by side the same image is encoded and interpolated by each run.

import { getJSON, postJSON } from './http.js';
import { showError } from './errors.js';
import { setupEncoding } from './encode.js';
import { restoreState, watchState } from './state.js';
import { RunView } from './run.js';

const $ = (id) => document.getElementById(id);
const settings = { base: 'origin', showGrid: true, showPrior: true, gridN: 15 };

const app = {
  settings,
  // an error shown near the control that failed (`where`), or in the run's column, until dismissed
  error(view, error, where = null) {
    const text = `${view ? `${view.info.name}: ` : ''}${error && error.message ? error.message : error}`;
    showError(where || (view && view.el.errors) || $('status'), text);
  },
  changed() {}, // replaced by the URL state's watcher
};

// --- the layout: maps as large as the window allows, columns side by side while they fit ---

const GAP = 14; const MIN_MAP = 240; const MAX_MAP = 760; const SIDE = 360;

export function layout(views) {
  const runs = $('runs');
  const width = Math.max(runs.clientWidth - 24, MIN_MAP);
  const n = views.length;
  const column = Math.floor((width - GAP * (n - 1)) / n);
  const heightCap = Math.max(MIN_MAP, window.innerHeight - 150);
  const fits = column >= MIN_MAP + 2;
  runs.classList.toggle('wrap', !fits);
  const wide = fits && column - SIDE - 12 >= Math.min(heightCap, 420); // room for the details beside the map
  const map = Math.max(MIN_MAP, Math.min(MAX_MAP, heightCap, (wide ? column - SIDE - 12 : column) - 2));
  for (const view of views) {
    view.root.classList.toggle('wide', wide);
    view.root.style.width = `${fits ? column : map + 2}px`;
    view.resize(map);
  }
  // the maps' tops aligned: every column's head as tall as the tallest
  const heads = views.map((v) => v.root.querySelector('.run-head'));
  heads.forEach((h) => { h.style.minHeight = ''; });
  const tallest = Math.max(...heads.map((h) => h.offsetHeight));
  heads.forEach((h) => { h.style.minHeight = `${tallest}px`; });
}

function setupMap(views) {
  $('base').addEventListener('change', () => {
    settings.base = $('base').value;
    views.forEach((v) => { v.choosePlane(false); v.showCurrent(); });
    app.changed();
  });
  $('show-grid').addEventListener('change', () => {
    settings.showGrid = $('show-grid').checked;
    views.forEach((v) => v.requestGrid());
  });
  $('show-prior').addEventListener('change', () => {
    settings.showPrior = $('show-prior').checked;
    views.forEach((v) => v.map.drawOverlay());
  });
  $('grid-n').addEventListener('change', () => {
    const n = Math.round(Number($('grid-n').value));
    settings.gridN = Number.isFinite(n) ? Math.max(2, Math.min(32, n)) : 15;
    $('grid-n').value = settings.gridN;
    views.forEach((v) => v.requestGrid());
  });
}

function setupInterpolation(views) {
  const errors = $('interp-errors');
  const state = () => {
    const a = views.every((v) => v.A); const b = views.every((v) => v.B);
    $('ab-state').textContent = a && b ? 'A and B set: interpolate' : `${a ? 'A set' : 'A not set'}, ${b ? 'B set' : 'B not set'}`;
  };
  app.abChanged = state;
  const set = (key) => { views.forEach((v) => { v[key] = v.z.slice(); v.map.drawOverlay(); }); state(); app.changed(); };
  $('set-a').addEventListener('click', () => set('A'));
  $('set-b').addEventListener('click', () => set('B'));
  $('interpolate').addEventListener('click', () => {
    const steps = Math.max(2, Math.min(64, Math.round(Number($('steps').value)) || 10));
    $('steps').value = steps;
    const spherical = $('interp-mode').value === 'spherical';
    views.forEach((view, k) => {
      if (!view.A || !view.B) { app.error(view, 'set A and B first (each from the current point)', errors); return; }
      if (view.A.every((x, i) => x === view.B[i])) { view.showSamePoint(); return; }
      postJSON(`${view.api}/interpolate`, { a: view.A, b: view.B, steps, spherical })
        .then((result) => view.showInterpolation(result, k === 0), (e) => app.error(view, e, errors));
    });
  });
}

function setupSampling(views) {
  const names = [...new Set(views.flatMap((v) => v.info.samplers))];
  for (const sampler of names) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = `Sample from ${sampler}`;
    button.addEventListener('click', () => {
      views.filter((v) => v.info.samplers.includes(sampler)).forEach((view, k) => {
        postJSON(`${view.api}/sample`, { n: 8, sampler })
          .then((r) => view.showSamples(r, sampler, k === 0), (e) => app.error(view, e, $('sample-errors')));
      });
    });
    $('samplers').append(button);
  }
}

async function main() {
  const { runs } = await getJSON('api/runs');
  const views = runs.map((info) => new RunView(info, app, MIN_MAP));
  $('runs').append(...views.map((v) => v.root));
  $('runs-summary').textContent = runs.map((r) => r.name).join(' · ');
  document.title = `vaelab explore: ${runs.map((r) => r.name).join(', ')}`;
  window.explorer = { views, settings, app, layout: () => layout(views) };
  layout(views);
  await Promise.all(views.map((v) => v.load()));
  setupEncoding(views, app);
  setupMap(views);
  setupInterpolation(views);
  setupSampling(views);
  restoreState(views, app);
  watchState(views, app);
  let pending = null;
  new ResizeObserver(() => {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(() => layout(views));
  }).observe($('runs'));
  document.body.dataset.ready = 'true';
}

main().catch((e) => app.error(null, e));
