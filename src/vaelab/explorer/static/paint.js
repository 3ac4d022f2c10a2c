// Showing images: raw pixels painted on a canvas, <img> elements, and the colour of each class label.

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

export const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf'];
export const colour = (label) => (label == null ? '#555' : COLOURS[label % COLOURS.length]);
