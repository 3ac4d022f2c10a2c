// The page's state in the URL's hash (runs, plane, view box, current point, A and B): a link, or a reload,
// opens the same view. Written with history.replaceState (no history entry per mouse move).

const round = (x) => Math.round(x * 1e4) / 1e4;
const vector = (z) => (z ? z.map(round) : null);

export function snapshot(views, settings) {
  return {
    base: settings.base,
    runs: views.map((v) => ({
      name: v.info.name,
      plane: v.el.plane.value,
      dims: [v.el.dimU.value, v.el.dimV.value],
      view: [v.map.view.cu, v.map.view.cv, v.map.view.span].map(round),
      z: vector(v.z),
      A: vector(v.A),
      B: vector(v.B),
    })),
  };
}

export function restoreState(views, app) {
  const text = decodeURIComponent(window.location.hash.replace(/^#s=/, ''));
  if (!text) return;
  let state;
  try { state = JSON.parse(text); } catch { return; }
  if (!state || !Array.isArray(state.runs)) return;
  if (state.base === 'current' || state.base === 'origin') {
    app.settings.base = state.base;
    document.getElementById('base').value = state.base;
  }
  const finite = (z, d) => Array.isArray(z) && z.length === d && z.every(Number.isFinite);
  views.forEach((view, k) => {
    const s = state.runs[k];
    if (!s || s.name !== view.info.name) return; // another set of runs: nothing to restore
    const d = view.info.latent_dim;
    if (Array.isArray(s.dims)) { [view.el.dimU.value, view.el.dimV.value] = s.dims.map(String); }
    if (s.plane != null && view.el.plane.querySelector(`option[value="${Number(s.plane)}"]`)) view.el.plane.value = String(Number(s.plane));
    view.choosePlane(false);
    if (finite(s.view, 3)) view.map.setView(...s.view);
    if (finite(s.A, d)) view.A = s.A;
    if (finite(s.B, d)) view.B = s.B;
    if (finite(s.z, d)) view.setCurrent(s.z);
  });
  if (app.abChanged) app.abChanged();
}

export function watchState(views, app) {
  let timer = null;
  app.changed = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const hash = `#s=${encodeURIComponent(JSON.stringify(snapshot(views, app.settings)))}`;
      try { window.history.replaceState(null, '', hash); } catch { /* a page opened from a file may refuse */ }
    }, 250);
  };
}
