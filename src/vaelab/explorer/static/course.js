// The course, in a run's column: the encoder's μ and σ per dimension, the reparameterization z = μ + σ·ε step by
// step, the image's −ELBO beside the test set's, and one traversal strip per latent dimension.

import { postJSON } from './http.js';
import { imageElement } from './paint.js';

const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '–');
const RANGE = 3; // the bars span [-3, 3]: the prior's ±2 ticks inside
const TRAVERSE_STEPS = 7; const TRAVERSE_MAX = 10;

// One row per dimension: the dot at μ_k, a bar over μ_k ± σ_k, the prior's 0 and ±2 as ticks.
export function renderBars(container, mean, std, kl) {
  const x = (v) => (50 + (50 * Math.max(-RANGE, Math.min(RANGE, v))) / RANGE).toFixed(2);
  const part = (className, style) => Object.assign(document.createElement('i'), { className, style });
  container.replaceChildren(...mean.map((m, k) => {
    const row = document.createElement('div');
    row.className = 'bar';
    row.title = `z[${k}]: μ = ${fmt(m, 3)}, σ = ${fmt(std[k], 3)}, KL = ${fmt(kl[k], 3)} nats`;
    const track = document.createElement('span');
    track.className = 'track';
    track.setAttribute('role', 'img');
    track.setAttribute('aria-label', row.title);
    for (const t of [-2, 0, 2]) track.append(part(t ? 'tick' : 'tick zero', `left: ${x(t)}%`));
    const lo = x(m - std[k]); const hi = x(m + std[k]);
    track.append(part('spread', `left: ${lo}%; width: ${(hi - lo).toFixed(2)}%`), part('mu', `left: ${x(m)}%`));
    const numbers = Object.assign(document.createElement('span'), { className: 'numbers', textContent: `μ ${fmt(m)} σ ${fmt(std[k])}` });
    row.append(Object.assign(document.createElement('span'), { textContent: `z[${k}]` }), track, numbers);
    return row;
  }));
}

// The image's −ELBO and its two terms, beside the test set's mean: how many nats is typical for this model.
export function elboHtml(e, reference) {
  let html = `−ELBO <b>${fmt(-e.elbo, 1)}</b> nats = recon <b>${fmt(e.recon, 1)}</b> + KL <b>${fmt(e.kl, 2)}</b>`;
  if (reference) {
    const ratio = -e.elbo / reference.neg_elbo;
    const verdict = ratio < 1.15 ? 'typical for this model' : (ratio < 1.6 ? 'harder than most test images' : 'unlike the data the model learned');
    html += `<br>test-set mean: <b>${fmt(reference.neg_elbo, 1)}</b> nats (recon ${fmt(reference.recon, 1)} + KL ${fmt(reference.kl, 2)}, `
      + `${reference.images} images): this image is ${verdict}`;
  }
  return `${html}<br><span class="note">recon: E<sub>q</sub>[−log p(x|z)] over ${e.samples} draws z ~ q(z|x); `
    + 'KL(q(z|x) ‖ N(0, I)) in closed form. Lower is better.</span>';
}

// Box-Muller: n draws of N(0, 1).
export function gaussian(n) {
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random()));
}

// One step of the reparameterization: ε drawn, z = μ + σ·ε computed, shown and made the current point.
export function drawEps(view) {
  const { mean, std } = view.posterior;
  const eps = gaussian(mean.length);
  const z = mean.map((m, k) => m + std[k] * eps[k]);
  const shown = Math.min(mean.length, 4);
  const list = (v) => `(${v.slice(0, shown).map((x) => fmt(x)).join(', ')}${v.length > shown ? ', …' : ''})`;
  view.el.eps.textContent = `ε = ${list(eps)} → z = μ + σ·ε = ${list(z)} (the green dot; decoded at left)`;
  view.reparam = { eps, z };
  view.setCurrent(z);
}

// One strip per latent dimension (the most used first, by KL): z_k from −3 to 3, the others at the current point.
export async function traverse(view) {
  const d = view.info.latent_dim;
  const kl = view.info.kl_per_dim || new Array(d).fill(0);
  const dims = [...Array(d).keys()].sort((a, b) => kl[b] - kl[a]).slice(0, TRAVERSE_MAX);
  const rows = await Promise.all(dims.map(async (k) => {
    const a = view.z.slice(); const b = view.z.slice();
    a[k] = -3; b[k] = 3;
    const result = await postJSON(`${view.api}/interpolate`, { a, b, steps: TRAVERSE_STEPS, spherical: false });
    const row = document.createElement('div');
    row.className = 'traversal';
    const strip = document.createElement('div');
    strip.className = 'strip';
    strip.append(...result.images.map((src, i) => imageElement(src, `z[${k}] = ${fmt(-3 + (6 * i) / (TRAVERSE_STEPS - 1), 1)}`)));
    row.append(Object.assign(document.createElement('span'), { textContent: `z[${k}]`, title: kl[k] ? `KL ${fmt(kl[k])} nats` : '' }), strip);
    return row;
  }));
  const title = Object.assign(document.createElement('p'), {
    className: 'note', textContent: `each row: one dimension from −3 to 3, the others at the current point${d > TRAVERSE_MAX ? ` (the ${TRAVERSE_MAX} with the most KL)` : ''}`,
  });
  view.el.traversals.replaceChildren(title, ...rows);
}
