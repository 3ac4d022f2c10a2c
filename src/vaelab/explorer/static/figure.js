// "save figure": the map (with its axes' labels and the run's name) or a strip of images as a PNG file.

function download(canvas, name) {
  const link = document.createElement('a');
  link.href = canvas.toDataURL('image/png');
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
}

const fileName = (text) => text.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'figure';

// The map's two canvases stacked, under a title line (run, plane) and over a line giving the visible box.
export function mapFigure(view) {
  const { map } = view;
  const ratio = map.base.width / map.size;
  const pad = Math.round(22 * ratio);
  const canvas = document.createElement('canvas');
  canvas.width = map.base.width; canvas.height = map.base.height + 2 * pad;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(map.base, 0, pad); ctx.drawImage(map.overlay, 0, pad);
  ctx.fillStyle = '#1f2328'; ctx.font = `${Math.round(13 * ratio)}px system-ui, sans-serif`; ctx.textBaseline = 'middle';
  ctx.fillText(`${view.info.name}: ${view.plane.description}`, 4 * ratio, pad / 2, canvas.width - 8 * ratio);
  const [u0, u1, v0, v1] = map.box();
  const f = (x) => x.toFixed(2);
  ctx.fillText(`${map.labels[0]} from ${f(u0)} to ${f(u1)}  ·  ${map.labels[1]} from ${f(v0)} to ${f(v1)}`,
    4 * ratio, canvas.height - pad / 2, canvas.width - 8 * ratio);
  return canvas;
}

export function saveMap(view) {
  download(mapFigure(view), `${fileName(view.info.name)}-map.png`);
}

// The images of a strip side by side, at their own pixel size times `scale`.
export function saveStrip(container, name, scale = 2) {
  const images = [...container.querySelectorAll('img')].filter((img) => img.naturalWidth);
  if (!images.length) return;
  const w = images[0].naturalWidth * scale; const h = images[0].naturalHeight * scale;
  const canvas = document.createElement('canvas');
  canvas.width = images.length * (w + 2) - 2; canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  images.forEach((img, k) => ctx.drawImage(img, k * (w + 2), 0, w, h));
  download(canvas, `${fileName(name)}.png`);
}
