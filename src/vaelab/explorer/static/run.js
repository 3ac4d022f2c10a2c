// One run's column: its map, the image decoded at the cursor or the current point, the posterior of the encoded
// image, the interpolation and sample strips, and a slider per latent dimension.

import { drawEps, elboHtml, renderBars, traverse } from './course.js';
import { ellipse, pointAt, project, shiftedOrigin } from './geometry.js';
import { Latest, getJSON, imageUrl, postJSON, request } from './http.js';
import { COLOURS, colour, imageElement, paintRaw } from './paint.js';
import { MapView } from './map.js';
import { saveMap, saveStrip } from './figure.js';

const NEIGHBOURS = 8; // nearest test images listed for a clicked test point
const PICK_PX = 5; // a click this close to a test point picks it

const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '–');

// A factor's value index `value` of `size` values, from blue (0) to red (the last).
export const factorColour = (value, size) => `hsl(${Math.round(240 * (1 - value / Math.max(1, size - 1)))}, 75%, 45%)`;

export class RunView {
  constructor(info, app, mapSize) {
    this.info = info;
    this.app = app; // the page's shared settings and error reporting
    this.api = `api/runs/${info.id}`;
    const [channels, height, width] = info.shape;
    this.image = { channels, height, width };
    this.z = new Array(info.latent_dim).fill(0); // the current point
    this.points = null; // {means, labels, factors, uv}
    this.hidden = new Set(); // labels switched off in the legend
    this.colourBy = null; // null: the points' labels; else the name of a known factor of the data (dSprites)
    this.posterior = null; // {mean, std, samples_z}
    this.path = null; // the interpolation path, latent points
    this.priorSamples = null;
    this.A = null; this.B = null;
    this.hoverZ = null;
    this.reparam = null; // {eps, z}: the last step of the reparameterization
    this.decodes = new Latest((job) => this.decode(job), (e) => app.error(this, e));
    this.grids = new Latest(() => this.fetchGrid(), (e) => app.error(this, e));
    this.build(mapSize);
  }

  // --- building the column ---

  build(mapSize) {
    const root = document.getElementById('run-template').content.firstElementChild.cloneNode(true);
    this.root = root;
    root.dataset.run = this.info.id;
    const q = (selector) => root.querySelector(selector);
    this.el = {
      decoded: q('.decoded'), caption: q('.decoded-caption'), terms: q('.terms'), input: q('.input-img'),
      recon: q('.recon-img'), postSamples: q('.post-samples'), interp: q('.interp'), samples: q('.samples'),
      sliders: q('.sliders'), plane: q('.plane'), dimU: q('.dim-u'), dimV: q('.dim-v'), dims: q('.dims'),
      description: q('.plane-description'), legend: q('.legend'), errors: q('.run-errors'), course: q('.course'),
      bars: q('.bars'), eps: q('.eps-text'), traversals: q('.traversals'), neighbours: q('.neighbours'),
      interpNote: q('.interp-note'),
    };
    const i = this.info;
    q('.run-name').textContent = i.name;
    q('.run-name').title = i.path;
    q('.run-meta').textContent = `${i.kind} · ${i.arch} · latent dimension ${i.latent_dim} · ${i.data} `
      + `(${i.shape[2]}×${i.shape[1]}${i.shape[0] === 3 ? ' RGB' : ''})${i.likelihood && i.has_likelihood ? ` · ${i.likelihood} likelihood` : ''}`;
    this.el.decoded.width = this.image.width; this.el.decoded.height = this.image.height;
    if (!i.has_encoder) {
      q('.posterior-hint').hidden = true;
      this.el.terms.textContent = i.no_encoder_reason;
      this.el.terms.classList.add('note');
    }
    this.map = new MapView(q('.map-wrap'), mapSize, {
      hover: (u, v) => this.hover(u, v),
      leave: () => { this.hoverZ = null; this.showCurrent(); },
      click: (u, v, x, y) => this.click(u, v, x, y),
      nudge: (du, dv) => { const [u, v] = project(this.z, this.plane); this.setCurrent(this.zAt(u + du, v + dv)); },
      fit: () => this.fitView(),
      viewChanged: () => { this.requestGrid(); this.app.changed(); },
      drawBase: (ctx, map) => this.drawPoints(ctx, map),
      drawOverlay: (ctx, map, hover) => this.drawMarkers(ctx, map, hover),
    });
    this.buildPlanes();
    this.buildSliders();
    q('.reset-view').addEventListener('click', () => this.fitView());
    q('.course-view').addEventListener('click', () => this.map.setView(0, 0, 1.5));
    if (!i.has_encoder) q('.reset-view').title = 'back to [−2, 2]²';
    q('.save-map').addEventListener('click', () => saveMap(this));
    root.querySelectorAll('.save-strip').forEach((button) => button.addEventListener('click', () => {
      saveStrip(q(`.strip.${button.dataset.strip}`), `${i.name}-${button.dataset.strip}`);
    }));
    q('.draw-eps').addEventListener('click', () => drawEps(this));
    q('.traverse').addEventListener('click', () => traverse(this).catch((e) => this.app.error(this, e)));
  }

  // The map's new side (the window changed): redrawn, its grid decoded again.
  resize(size) {
    if (!this.map.resize(size)) return;
    if (this.plane) { this.map.drawBase(); this.map.drawOverlay(); this.requestGrid(); }
  }

  buildPlanes() {
    const d = this.info.latent_dim;
    const planes = this.info.planes;
    const select = this.el.plane;
    planes.forEach((plane, k) => {
      const label = plane.share ? `principal plane (${Math.round(100 * (plane.share[0] + plane.share[1]))}% of variance)`
        : (d > 2 ? 'two dimensions' : plane.labels.join(', '));
      select.add(new Option(label, String(k)));
    });
    for (let k = 0; k < d; k += 1) {
      this.el.dimU.add(new Option(`z[${k}]`, String(k)));
      this.el.dimV.add(new Option(`z[${k}]`, String(k)));
    }
    this.el.dimU.value = '0'; this.el.dimV.value = d > 1 ? '1' : '0';
    const change = () => this.choosePlane();
    select.addEventListener('change', change);
    this.el.dimU.addEventListener('change', change);
    this.el.dimV.addEventListener('change', change);
    select.hidden = planes.length < 2;
  }

  // The chosen plane: the principal plane, or the two picked dimensions (others at the base).
  currentPlane() {
    const chosen = this.info.planes[Number(this.el.plane.value || 0)];
    const d = this.info.latent_dim;
    const coordinate = !chosen.share && d > 2;
    this.el.dims.hidden = !coordinate;
    if (!coordinate) return chosen;
    const i = Number(this.el.dimU.value); const j = Number(this.el.dimV.value);
    const axes = [new Array(d).fill(0), new Array(d).fill(0)];
    axes[0][i] = 1; axes[1][j] = i === j ? 0 : 1;
    const rest = this.app.settings.base === 'current' ? 'other dimensions at the current point' : 'other dimensions at 0';
    return {
      origin: new Array(d).fill(0), axes, labels: [`z[${i}]`, `z[${j}]`],
      description: i === j ? 'pick two different dimensions' : `latent dimensions ${i} and ${j}, ${rest}`,
    };
  }

  choosePlane(fit = true) {
    this.plane = this.currentPlane();
    this.map.labels = this.plane.labels;
    this.el.description.textContent = this.plane.description
      + (this.plane.share && this.app.settings.base === 'current' ? '; off-plane components at the current point' : '');
    if (this.points) this.points.uv = this.points.means.map((m) => project(m, this.plane));
    this.map.grid = null;
    if (fit) this.fitView(); else this.map.setView(this.map.view.cu, this.map.view.cv, this.map.view.span);
    this.app.changed();
  }

  buildSliders() {
    const i = this.info;
    this.sliders = [];
    for (let k = 0; k < i.latent_dim; k += 1) {
      const row = document.createElement('div');
      row.className = 'slider';
      const active = i.active ? i.active[k] : true;
      if (!active) { row.classList.add('inactive'); row.title = 'inactive: its posterior mean barely varies over the test images (Cov < 0.01)'; }
      const input = Object.assign(document.createElement('input'), { type: 'range', min: -4, max: 4, step: 0.01, value: 0 });
      input.setAttribute('aria-label', `z[${k}]`);
      const value = Object.assign(document.createElement('span'), { className: 'value', textContent: '0.00' });
      const kl = Object.assign(document.createElement('span'), { className: 'kl' });
      kl.textContent = i.kl_per_dim ? `KL ${fmt(i.kl_per_dim[k])}` : '';
      if (i.kl_per_dim) kl.title = 'mean KL(q(z_k|x) || N(0, 1)) over the test images, in nats';
      row.append(Object.assign(document.createElement('span'), { textContent: `z[${k}]` }), input, value, kl);
      input.addEventListener('input', () => {
        const z = this.z.slice();
        z[k] = Number(input.value);
        this.setCurrent(z, false);
      });
      this.el.sliders.append(row);
      this.sliders.push({ input, value });
    }
    if (!i.kl_per_dim) {
      const note = document.createElement('p');
      note.className = 'note';
      note.textContent = 'no encoder: no KL per dimension to show';
      this.el.sliders.append(note);
    }
  }

  async load() {
    if (this.info.has_encoder) {
      const points = await getJSON(`${this.api}/points`);
      this.points = { means: points.means, labels: points.labels, factors: points.factors || null, uv: [] };
      this.buildColourBy();
      this.buildLegend();
    }
    this.choosePlane();
    this.showCurrent();
  }

  // Data with known factors: a choice of what colours the map's points, the label or any factor.
  buildColourBy() {
    const factors = this.info.factors;
    if (!factors || !this.points.factors) return;
    const select = document.createElement('select');
    select.className = 'colour-by';
    select.title = 'colour the test points by their label or by a known factor of the data';
    const options = [['', 'colour by label'], ...factors.map((f) => [f.name, `colour by ${f.name} (${f.size} values)`])];
    for (const [value, text] of options) {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = text;
      select.append(option);
    }
    select.addEventListener('change', () => {
      this.colourBy = select.value || null;
      this.el.legend.replaceChildren();
      this.buildLegend();
      this.map.drawBase();
    });
    this.el.legend.before(select);
    this.el.colourBy = select;
  }

  // A point's colour: its label's, or its factor value on a blue-to-red scale.
  pointColour(k) {
    if (this.colourBy) {
      const size = this.info.factors.find((f) => f.name === this.colourBy).size;
      return factorColour(this.points.factors[this.colourBy][k], size);
    }
    return colour(this.points.labels.length ? this.points.labels[k] : null);
  }

  buildLegend() {
    if (this.colourBy) {
      const { size } = this.info.factors.find((f) => f.name === this.colourBy);
      const scale = document.createElement('span');
      scale.className = 'factor-scale';
      scale.append(`${this.colourBy}: value 0 `);
      for (let v = 0; v < size; v += Math.max(1, Math.floor(size / 8))) {
        const swatch = document.createElement('i');
        swatch.style.background = factorColour(v, size);
        scale.append(swatch);
      }
      scale.append(` ${size - 1}`);
      this.el.legend.append(scale);
      return;
    }
    const labels = this.points.labels;
    const classes = this.info.classes;
    if (!labels.length || !classes) return;
    const present = [...new Set(labels)].sort((a, b) => a - b);
    for (const label of present) {
      const item = document.createElement('button');
      item.type = 'button';
      item.innerHTML = `<i style="background:${colour(label)}"></i>`;
      item.append(classes[label] ?? String(label));
      item.title = 'click to hide or show';
      item.addEventListener('click', () => {
        if (this.hidden.has(label)) this.hidden.delete(label); else this.hidden.add(label);
        item.classList.toggle('off');
        this.map.drawBase();
      });
      this.el.legend.append(item);
    }
    if (present.some((l) => l >= COLOURS.length)) this.el.legend.title = `${COLOURS.length} colours: classes share them`;
  }

  fitView() {
    if (!this.points || !this.points.uv.length) {
      this.map.setView(0, 0, 2);
      return;
    }
    const quantiles = (values) => {
      const sorted = values.slice().sort((a, b) => a - b);
      return [sorted[Math.floor(0.01 * (sorted.length - 1))], sorted[Math.ceil(0.99 * (sorted.length - 1))]];
    };
    const [u0, u1] = quantiles(this.points.uv.map((p) => p[0]));
    const [v0, v1] = quantiles(this.points.uv.map((p) => p[1]));
    const span = Math.max(u1 - u0, v1 - v0, 0.2) * 0.6;
    this.map.setView((u0 + u1) / 2, (v0 + v1) / 2, span);
  }

  // --- the latent point under the cursor and the current point ---

  baseVector() {
    return this.app.settings.base === 'current' ? this.z : this.plane.origin;
  }

  zAt(u, v) {
    return pointAt(u, v, this.plane, this.baseVector());
  }

  hover(u, v) {
    this.hoverZ = this.zAt(u, v);
    this.decodes.push({ z: this.hoverZ, caption: `cursor (${fmt(u)}, ${fmt(v)})` });
  }

  showCurrent() {
    this.decodes.push({ z: this.z, caption: 'current point' });
  }

  setCurrent(z, updateSliders = true) {
    this.z = z.map(Number);
    this.sliders.forEach((s, k) => {
      if (updateSliders) s.input.value = String(Math.max(-4, Math.min(4, this.z[k])));
      s.value.textContent = fmt(this.z[k]);
    });
    if (this.app.settings.base === 'current') this.requestGrid();
    this.map.drawOverlay();
    this.showCurrent();
    this.app.changed();
  }

  // A click on the map: a test point under it is picked (shown, encoded, its neighbours listed); else the point
  // clicked becomes the current point.
  click(u, v, x, y) {
    const index = this.testPointAt(x, y);
    if (index === null) this.setCurrent(this.zAt(u, v)); else this.pickTest(index);
  }

  testPointAt(x, y) {
    if (!this.points) return null;
    let best = null; let bestDistance = PICK_PX;
    this.points.uv.forEach(([u, v], k) => {
      if (!this.colourBy && this.hidden.has(this.points.labels.length ? this.points.labels[k] : null)) return;
      const distance = Math.hypot(this.map.px(u) - x, this.map.py(v) - y);
      if (distance < bestDistance) { best = k; bestDistance = distance; }
    });
    return best;
  }

  // Test image `index`: encoded by this run, and its nearest test images in the latent space (posterior means).
  async pickTest(index) {
    try {
      const result = await (await request(`${this.api}/encode?test=${index}`, { method: 'POST' })).json();
      const label = this.points.labels.length ? ` (${this.info.classes ? this.info.classes[this.points.labels[index]] : this.points.labels[index]})` : '';
      this.showPosterior(result, true, `test image ${index}${label}`);
      const { means } = this.points;
      const distance = (k) => means[k].reduce((sum, m, i) => sum + (m - means[index][i]) ** 2, 0);
      const nearest = [...means.keys()].filter((k) => k !== index).sort((a, b) => distance(a) - distance(b)).slice(0, NEIGHBOURS);
      this.root.querySelector('.neighbours-title').hidden = false;
      this.el.neighbours.replaceChildren(...nearest.map((k) => this.imageButton(
        imageUrl(`${this.api}/test/${k}.png`), `test image ${k}, distance ${Math.sqrt(distance(k)).toFixed(2)}: click to pick it`,
        () => this.pickTest(k),
      )));
    } catch (e) { this.app.error(this, e); }
  }

  imageButton(src, title, onClick) {
    const button = document.createElement('button');
    button.type = 'button';
    button.title = title;
    button.append(imageElement(src, title));
    button.addEventListener('click', onClick);
    return button;
  }

  async decode({ z, caption }) {
    const bytes = await postJSON(`${this.api}/decode?format=raw`, { z }, true);
    const { height, width, channels } = this.image;
    paintRaw(this.el.decoded, bytes, height, width, channels);
    this.el.caption.textContent = caption;
  }

  // --- the decoded grid under the points ---

  requestGrid() {
    if (!this.app.settings.showGrid) {
      if (this.map.grid) { this.map.grid = null; this.map.drawBase(); }
      return;
    }
    clearTimeout(this.gridTimer);
    this.gridTimer = setTimeout(() => this.grids.push(null), 120);
  }

  async fetchGrid() {
    const n = this.app.settings.gridN;
    const box = this.map.box();
    const body = { origin: shiftedOrigin(this.plane, this.baseVector()), axes: this.plane.axes, box, n };
    const bytes = await postJSON(`${this.api}/grid?format=raw`, body, true);
    const { height, width, channels } = this.image;
    const canvas = document.createElement('canvas');
    paintRaw(canvas, bytes, n * height, n * width, channels);
    if (!this.app.settings.showGrid) return;
    this.map.grid = { canvas, box };
    this.map.drawBase();
  }

  // --- drawing on the map ---

  drawPoints(ctx, map) {
    if (!this.points) return;
    const { uv, labels } = this.points;
    ctx.globalAlpha = map.grid ? 0.9 : 0.75;
    for (let k = 0; k < uv.length; k += 1) {
      const label = labels.length ? labels[k] : null;
      if (!this.colourBy && this.hidden.has(label)) continue;
      const x = map.px(uv[k][0]); const y = map.py(uv[k][1]);
      if (x < -3 || y < -3 || x > map.size + 3 || y > map.size + 3) continue;
      ctx.fillStyle = this.pointColour(k);
      ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    ctx.globalAlpha = 1;
  }

  drawMarkers(ctx, map, hover) {
    const at = (z) => { const [u, v] = project(z, this.plane); return [map.px(u), map.py(v)]; };
    const polyline = (points, close = false) => {
      ctx.beginPath();
      points.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (close) ctx.closePath();
      ctx.stroke();
    };
    const dotAt = ([x, y], r, fill, stroke = '#fff') => {
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = fill; ctx.fill(); ctx.lineWidth = 1.5; ctx.strokeStyle = stroke; ctx.stroke();
    };
    const tag = ([x, y], text, fill) => {
      ctx.font = 'bold 12px system-ui, sans-serif'; ctx.textAlign = 'left';
      ctx.lineWidth = 3; ctx.strokeStyle = '#fff'; ctx.strokeText(text, x + 6, y - 6);
      ctx.fillStyle = fill; ctx.fillText(text, x + 6, y - 6);
    };
    if (this.app.settings.showPrior) { // N(0, I) projected on the plane: N(0, I_2) around the origin's projection
      const [x0, y0] = at(new Array(this.info.latent_dim).fill(0));
      const unit = map.px(1) - map.px(0);
      ctx.save();
      ctx.strokeStyle = '#8250df'; ctx.setLineDash([5, 4]); ctx.font = '11px system-ui, sans-serif'; ctx.fillStyle = '#8250df';
      for (const r of [1, 2]) {
        ctx.lineWidth = r === 1 ? 1.5 : 1;
        ctx.beginPath(); ctx.arc(x0, y0, r * unit, 0, 2 * Math.PI); ctx.stroke();
        ctx.fillText(`${r}σ`, x0 + r * unit * 0.707 + 2, y0 - r * unit * 0.707 - 2);
      }
      ctx.restore();
    }
    if (this.priorSamples) this.priorSamples.forEach((z) => dotAt(at(z), 3, '#444'));
    if (this.path) {
      ctx.strokeStyle = '#e36209'; ctx.lineWidth = 2;
      const points = this.path.map(at);
      polyline(points);
      points.forEach((p) => dotAt(p, 2.5, '#e36209'));
    }
    if (this.A) { const p = at(this.A); dotAt(p, 4, '#e36209'); tag(p, 'A', '#e36209'); }
    if (this.B) { const p = at(this.B); dotAt(p, 4, '#e36209'); tag(p, 'B', '#e36209'); }
    if (this.posterior) {
      const { mean, std, samples_z: samples } = this.posterior;
      ctx.strokeStyle = '#cf222e'; ctx.lineWidth = 2;
      polyline(ellipse(mean, std, this.plane).map(([u, v]) => [map.px(u), map.py(v)]), true);
      samples.forEach((z) => {
        const [x, y] = at(z);
        ctx.lineWidth = 1.5; ctx.beginPath();
        ctx.moveTo(x - 3, y - 3); ctx.lineTo(x + 3, y + 3); ctx.moveTo(x - 3, y + 3); ctx.lineTo(x + 3, y - 3);
        ctx.stroke();
      });
      dotAt(at(mean), 5, '#cf222e');
      if (this.reparam) { // z = μ + σ·ε: a line from μ to z
        ctx.strokeStyle = '#1a7f37'; ctx.lineWidth = 2;
        polyline([at(mean), at(this.reparam.z)]);
        dotAt(at(this.reparam.z), 5, '#1a7f37');
      }
    }
    const [cx, cy] = at(this.z); // the current point: a ring with a cross
    ctx.strokeStyle = '#000'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(cx, cy, 7, 0, 2 * Math.PI); ctx.stroke();
    ctx.strokeStyle = '#fff'; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.arc(cx, cy, 8.5, 0, 2 * Math.PI); ctx.stroke();
    if (hover) {
      const [x, y] = [map.px(hover[0]), map.py(hover[1])];
      ctx.strokeStyle = '#0969da'; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.moveTo(x - 8, y); ctx.lineTo(x + 8, y); ctx.moveTo(x, y - 8); ctx.lineTo(x, y + 8); ctx.stroke();
    }
  }

  // --- encode, interpolate, sample (asked by the page's shared panels) ---

  showPosterior(result, scroll = false, caption = 'input') {
    this.posterior = result;
    this.reparam = null;
    this.root.querySelector('.posterior-hint').hidden = true;
    this.root.querySelector('.posterior-images').hidden = false;
    this.el.input.src = result.input;
    this.el.input.nextElementSibling.textContent = caption;
    this.el.recon.src = result.reconstruction;
    this.el.terms.innerHTML = result.elbo ? elboHtml(result.elbo, this.info.test_elbo) : '';
    this.el.course.hidden = false;
    renderBars(this.el.bars, result.mean, result.std, result.kl_per_dim);
    this.el.eps.textContent = 'z = μ + σ·ε, ε ~ N(0, I): the reparameterization trick';
    const post = this.root.querySelector('.post-title');
    post.hidden = false;
    this.el.postSamples.replaceChildren(...result.samples.map((src, k) => this.imageButton(
      src, `posterior sample ${k + 1}: click to make it the current point`, () => this.setCurrent(result.samples_z[k]),
    )));
    this.root.dataset.posterior = result.mean.map((x) => x.toFixed(4)).join(',');
    this.setCurrent(result.mean);
    if (scroll) this.reveal(this.el.course);
  }

  // The encoded image's panels emptied ("clear").
  clearPosterior() {
    this.posterior = null;
    this.reparam = null;
    this.root.querySelector('.posterior-hint').hidden = false;
    this.root.querySelector('.posterior-images').hidden = true;
    this.el.input.removeAttribute('src'); this.el.recon.removeAttribute('src');
    this.el.terms.innerHTML = '';
    this.el.course.hidden = true;
    this.root.querySelector('.post-title').hidden = true;
    this.root.querySelector('.neighbours-title').hidden = true;
    this.el.postSamples.replaceChildren();
    this.el.neighbours.replaceChildren();
    delete this.root.dataset.posterior;
    this.map.drawOverlay();
  }

  reveal(element) {
    const box = element.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) element.scrollIntoView({ block: 'nearest' });
  }

  // The view widened, if needed, so that every point of `path` lies inside it.
  include(path) {
    const uv = path.map((z) => project(z, this.plane));
    const [u0, u1, v0, v1] = this.map.box();
    if (uv.every(([u, v]) => u >= u0 && u <= u1 && v >= v0 && v <= v1)) return;
    const us = uv.map((p) => p[0]).concat([u0, u1]); const vs = uv.map((p) => p[1]).concat([v0, v1]);
    const [a, b, c, d] = [Math.min(...us), Math.max(...us), Math.min(...vs), Math.max(...vs)];
    this.map.setView((a + b) / 2, (c + d) / 2, (Math.max(b - a, d - c) / 2) * 1.1);
  }

  showInterpolation(result, scroll = false) {
    this.path = result.z;
    this.el.interpNote.hidden = true;
    this.root.querySelector('.interp-title').hidden = false;
    const last = result.images.length - 1;
    this.el.interp.replaceChildren(...result.images.map((src, k) => this.imageButton(
      src, `t = ${(k / last).toFixed(2)}: click to make it the current point`, () => this.setCurrent(result.z[k]),
    )));
    this.include(this.path);
    this.map.drawOverlay();
    if (scroll) this.reveal(this.el.interp);
  }

  // A and B are one point in this run (a run without an encoder keeps its point when an image is encoded).
  showSamePoint() {
    this.path = null;
    this.root.querySelector('.interp-title').hidden = false;
    this.el.interp.replaceChildren();
    this.el.interpNote.hidden = false;
    this.el.interpNote.textContent = this.info.has_encoder
      ? 'A and B are the same point in this run: nothing to interpolate. Set B elsewhere.'
      : 'A and B are the same point in this run: it has no encoder, so an encoded image cannot set them and '
        + 'there are no images to interpolate between. Click its map (or move its sliders) to set its own A and B.';
    this.map.drawOverlay();
  }

  showSamples(result, sampler = 'N(0, I)', scroll = false) {
    this.priorSamples = result.z;
    this.root.querySelector('.sample-title').hidden = false;
    this.root.querySelector('.sample-name').textContent = sampler === 'N(0, I)'
      ? 'Samples from the prior N(0, I)' : `Samples from the fitted sampler ${sampler} (not the prior)`;
    this.el.samples.replaceChildren(...result.images.map((src, k) => this.imageButton(
      src, 'click to make it the current point', () => this.setCurrent(result.z[k]),
    )));
    this.map.drawOverlay();
    if (scroll) this.reveal(this.el.samples);
  }
}
