// The map: a square view of a latent plane with zoom (wheel) and pan (drag), drawn on two stacked canvases:
// `base` (the decoded grid, axes and the test points: redrawn when the view changes) and `overlay` (markers:
// redrawn on every cursor move, cheap).

export class MapView {
  constructor(wrap, size, handlers) {
    this.wrap = wrap;
    this.base = wrap.querySelector('.map-base');
    this.overlay = wrap.querySelector('.map-overlay');
    this.readout = wrap.querySelector('.map-readout');
    this.handlers = handlers; // {hover(u, v), leave(), click(u, v), viewChanged(), drawBase(ctx, map), drawOverlay(ctx, map)}
    this.view = { cu: 0, cv: 0, span: 2 }; // centre and half-width of the visible box
    this.labels = ['u', 'v'];
    this.grid = null; // {canvas, box}: the decoded grid and the box it was decoded over
    this.size = 0;
    this.resize(size);
    this.listen();
    this.overlay.setAttribute('aria-label', 'latent map: arrow keys move the current point, + and - zoom, 0 fits the view');
  }

  // The map's side in CSS pixels; returns whether it changed (the caller redraws and asks for a new grid).
  resize(size) {
    if (size === this.size) return false;
    this.size = size;
    const ratio = window.devicePixelRatio || 1;
    for (const canvas of [this.base, this.overlay]) {
      canvas.width = Math.round(size * ratio); canvas.height = Math.round(size * ratio);
      canvas.style.width = `${size}px`; canvas.style.height = `${size}px`;
      canvas.getContext('2d').setTransform(ratio, 0, 0, ratio, 0, 0);
    }
    this.wrap.style.width = `${size + 2}px`;
    return true;
  }

  // plane coordinates <-> CSS pixels of the canvas
  px(u) { return this.size / 2 + ((u - this.view.cu) / this.view.span) * (this.size / 2); }
  py(v) { return this.size / 2 - ((v - this.view.cv) / this.view.span) * (this.size / 2); }
  u(x) { return this.view.cu + ((x - this.size / 2) / (this.size / 2)) * this.view.span; }
  v(y) { return this.view.cv - ((y - this.size / 2) / (this.size / 2)) * this.view.span; }

  box() {
    const { cu, cv, span } = this.view;
    return [cu - span, cu + span, cv - span, cv + span];
  }

  setView(cu, cv, span) {
    this.view = { cu, cv, span: Math.min(Math.max(span, 1e-3), 100) };
    this.drawBase();
    this.drawOverlay();
    this.handlers.viewChanged();
  }

  drawBase() {
    const ctx = this.base.getContext('2d');
    const s = this.size;
    ctx.clearRect(0, 0, s, s);
    ctx.fillStyle = getComputedStyle(this.wrap).getPropertyValue('--map-bg').trim() || '#fff';
    ctx.fillRect(0, 0, s, s);
    if (this.grid) {
      const [u0, u1, v0, v1] = this.grid.box;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.grid.canvas, this.px(u0), this.py(v1), this.px(u1) - this.px(u0), this.py(v0) - this.py(v1));
    }
    ctx.save();
    ctx.strokeStyle = this.grid ? 'rgba(255,255,255,0.35)' : '#d0d7de';
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    ctx.moveTo(this.px(0), 0); ctx.lineTo(this.px(0), s);
    ctx.moveTo(0, this.py(0)); ctx.lineTo(s, this.py(0));
    ctx.stroke();
    ctx.restore();
    this.handlers.drawBase(ctx, this);
    this.drawTicks(ctx);
  }

  drawTicks(ctx) {
    const [u0, u1, , v1] = this.box(); // the bottom edge's v is not labelled (the u label sits there)
    const f = (x) => (Math.abs(x) < 1e-9 ? '0' : x.toFixed(Math.abs(x) >= 10 ? 0 : 2));
    ctx.font = '11px system-ui, sans-serif';
    const label = (text, x, y, align) => {
      ctx.textAlign = align;
      const w = ctx.measureText(text).width;
      const left = align === 'right' ? x - w : x;
      ctx.fillStyle = 'rgba(255,255,255,0.8)';
      ctx.fillRect(left - 2, y - 10, w + 4, 13);
      ctx.fillStyle = '#444';
      ctx.fillText(text, x, y);
    };
    label(`${this.labels[0]} ${f(u0)}`, 3, this.size - 4, 'left');
    label(f(u1), this.size - 3, this.size - 4, 'right');
    label(`${this.labels[1]} ${f(v1)}`, 3, 12, 'left');
  }

  drawOverlay(hover = null) {
    const ctx = this.overlay.getContext('2d');
    ctx.clearRect(0, 0, this.size, this.size);
    this.handlers.drawOverlay(ctx, this, hover);
  }

  listen() {
    const el = this.overlay;
    let press = null;
    const at = (event) => {
      const rect = el.getBoundingClientRect();
      return [event.clientX - rect.left, event.clientY - rect.top];
    };
    el.addEventListener('pointerdown', (event) => {
      if (event.button !== 0) return;
      const [x, y] = at(event);
      press = { x, y, view: { ...this.view }, dragging: false };
      el.setPointerCapture(event.pointerId);
    });
    el.addEventListener('pointermove', (event) => {
      const [x, y] = at(event);
      if (press) {
        if (!press.dragging && Math.hypot(x - press.x, y - press.y) > 3) press.dragging = true;
        if (press.dragging) {
          const scale = (2 * press.view.span) / this.size;
          this.view = { ...press.view, cu: press.view.cu - (x - press.x) * scale, cv: press.view.cv + (y - press.y) * scale };
          this.drawBase();
          this.drawOverlay();
          return;
        }
      }
      const u = this.u(x); const v = this.v(y);
      this.readout.textContent = `${this.labels[0]} ${u.toFixed(2)}, ${this.labels[1]} ${v.toFixed(2)}`;
      this.drawOverlay([u, v]);
      this.handlers.hover(u, v);
    });
    el.addEventListener('pointerup', (event) => {
      if (!press) return;
      const [x, y] = at(event);
      const wasDragging = press.dragging;
      press = null;
      if (wasDragging) this.handlers.viewChanged();
      else this.handlers.click(this.u(x), this.v(y), x, y);
    });
    // the keyboard: arrows move the current point by a twentieth of the view, + and - zoom, 0 fits
    el.addEventListener('keydown', (event) => {
      const step = this.view.span / 10;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (moves[event.key]) {
        event.preventDefault();
        this.handlers.nudge(...moves[event.key]);
      } else if (event.key === '+' || event.key === '=' || event.key === '-') {
        event.preventDefault();
        const { cu, cv, span } = this.view;
        this.setView(cu, cv, span * (event.key === '-' ? 1.25 : 0.8));
      } else if (event.key === '0') {
        event.preventDefault();
        this.handlers.fit();
      }
    });
    el.addEventListener('pointerleave', () => {
      if (press) return;
      this.readout.textContent = '';
      this.drawOverlay();
      this.handlers.leave();
    });
    el.addEventListener('wheel', (event) => {
      event.preventDefault();
      const [x, y] = at(event);
      const u = this.u(x); const v = this.v(y);
      const span = Math.min(Math.max(this.view.span * Math.exp(event.deltaY * 0.0015), 1e-3), 100);
      const half = this.size / 2;
      this.setView(u - ((x - half) / half) * span, v + ((y - half) / half) * span, span);
    }, { passive: false });
  }
}
