// The networks' forward pass in the browser, for the page exported without a server (static_page.py): dense
// layers, 2-D convolutions and transposed convolutions (NCHW, weights as PyTorch stores them) and activations,
// one image at a time in Float32Arrays.

const ACT = {
  relu: (x) => (x > 0 ? x : 0),
  leaky_relu: (x, slope) => (x > 0 ? x : slope * x),
  elu: (x) => (x > 0 ? x : Math.expm1(x)),
  silu: (x) => x / (1 + Math.exp(-x)),
};

function linear(layer, W, x) {
  const { in: n, out: m } = layer;
  const y = new Float32Array(m);
  for (let o = 0; o < m; o += 1) {
    let sum = W[layer.b + o]; const row = layer.w + o * n;
    for (let i = 0; i < n; i += 1) sum += W[row + i] * x[i];
    y[o] = sum;
  }
  return y;
}

// weight [cout, cin, k, k]; out = floor((H + 2p - k) / s) + 1
function conv(layer, W, x, [c, h, w]) {
  const { cout, k, s, p } = layer;
  const oh = Math.floor((h + 2 * p - k) / s) + 1; const ow = Math.floor((w + 2 * p - k) / s) + 1;
  const y = new Float32Array(cout * oh * ow);
  for (let o = 0; o < cout; o += 1) {
    for (let i = 0; i < oh; i += 1) {
      for (let j = 0; j < ow; j += 1) {
        let sum = W[layer.b + o];
        for (let ci = 0; ci < c; ci += 1) {
          for (let a = 0; a < k; a += 1) {
            const yy = i * s - p + a;
            if (yy >= 0 && yy < h) {
              const wrow = layer.w + ((o * c + ci) * k + a) * k; const xrow = (ci * h + yy) * w;
              for (let b = 0; b < k; b += 1) {
                const xx = j * s - p + b;
                if (xx >= 0 && xx < w) sum += W[wrow + b] * x[xrow + xx];
              }
            }
          }
        }
        y[(o * oh + i) * ow + j] = sum;
      }
    }
  }
  return [y, [cout, oh, ow]];
}

// weight [cin, cout, k, k]; out = (H - 1) s - 2p + k + output_padding: each input pixel scattered
function convT(layer, W, x, [c, h, w]) {
  const { cout, k, s, p } = layer;
  const oh = (h - 1) * s - 2 * p + k + layer.op_pad[0]; const ow = (w - 1) * s - 2 * p + k + layer.op_pad[1];
  const y = new Float32Array(cout * oh * ow);
  for (let o = 0; o < cout; o += 1) y.fill(W[layer.b + o], o * oh * ow, (o + 1) * oh * ow);
  for (let ci = 0; ci < c; ci += 1) {
    for (let i = 0; i < h; i += 1) {
      for (let j = 0; j < w; j += 1) {
        const v = x[(ci * h + i) * w + j];
        if (v !== 0) {
          for (let o = 0; o < cout; o += 1) {
            for (let a = 0; a < k; a += 1) {
              const yy = i * s - p + a;
              if (yy >= 0 && yy < oh) {
                const wrow = layer.w + ((ci * cout + o) * k + a) * k; const yrow = (o * oh + yy) * ow;
                for (let b = 0; b < k; b += 1) {
                  const xx = j * s - p + b;
                  if (xx >= 0 && xx < ow) y[yrow + xx] += W[wrow + b] * v;
                }
              }
            }
          }
        }
      }
    }
  }
  return [y, [cout, oh, ow]];
}

// The network's output for one input `x` of shape `shape` ([features] or [C, H, W]).
export function forward(layers, W, x, shape) {
  let value = x; let dims = shape;
  for (const layer of layers) {
    if (layer.op === 'linear') { value = linear(layer, W, value); dims = [layer.out]; }
    else if (layer.op === 'conv') [value, dims] = conv(layer, W, value, dims);
    else if (layer.op === 'convT') [value, dims] = convT(layer, W, value, dims);
    else if (layer.op === 'flatten') dims = [value.length];
    else if (layer.op === 'unflatten') dims = layer.shape;
    else {
      const f = ACT[layer.op];
      for (let i = 0; i < value.length; i += 1) value[i] = f(value[i], layer.slope);
    }
  }
  return value;
}

export function decodeBase64Floats(text) {
  const bytes = Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}
