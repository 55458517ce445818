// fractalgd explorer: the page's state, the mouse gestures and the calls to the JSON API
// (fractalgd/explorer/server.py). A view is {x: {center, width}, y: {center, width}} in axis units
// (decades on a log10 axis); the canvas shows x left → right and y bottom → top, with axes around it.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const axesCanvas = $("axes");
const COARSE = 4; // the first image of every view is rendered at 1/COARSE resolution
const SIDE = 640; // the canvas' longer side in CSS pixels
const POLL_MS = 250; // progress polling while a render runs
const MARGIN = { left: 92, top: 14, right: 22, bottom: 58 }; // #stage's padding: room for the axes

const state = {
  client: Math.random().toString(36).slice(2) + Date.now().toString(36),
  base: null, // /api/config
  view: null, // the requested view
  history: [], // earlier views, for Back
  shown: null, // {view, image, renderId, full, legend, name}
  seq: 0, // request sequence: only the newest request's answers are shown
  busy: false,
  resolution: [512, 512],
  overrides: [],
  keyframes: [],
  lastDimension: null,
  progress: null, // the last /api/progress answer of the running render
};
window.explorer = state; // read by the browser tests

const copyView = (v) => ({ x: { ...v.x }, y: { ...v.y } });
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]); // text into innerHTML
const lo = (a) => a.center - a.width / 2;
const hi = (a) => a.center + a.width / 2;

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "mono error" : "mono";
}

// The server's token, from the URL `fractalgd serve` printed: every API call sends it back.
const TOKEN = new URLSearchParams(window.location.search).get("token") || "";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function api(path, body, signal, retries = 5) {
  const headers = { "X-Fractalgd-Token": TOKEN };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    let data;
    try {
      data = await response.json();
    } catch (error) {
      data = { error: `${response.status} ${response.statusText}` };
    }
    if (response.ok) return data;
    if (response.status === 503 && attempt < retries && !(signal && signal.aborted)) {
      // The engine queue (or the connection limit) is full: wait as asked, then try again.
      const wait = Number(response.headers.get("Retry-After")) || 1;
      setStatus(`server busy, retrying in ${wait} s…`);
      await sleep(1000 * wait);
      continue;
    }
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    throw error;
  }
}

// --- geometry: canvas pixels ↔ axis units ----------------------------------------------------

function fitCanvas() {
  const [w, h] = state.resolution;
  const scale = SIDE / Math.max(w, h);
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  const dpr = window.devicePixelRatio || 1; // crisp tick labels on dense screens
  const width = canvas.width + MARGIN.left + MARGIN.right;
  const height = canvas.height + MARGIN.top + MARGIN.bottom;
  axesCanvas.width = Math.round(width * dpr);
  axesCanvas.height = Math.round(height * dpr);
  axesCanvas.style.width = `${width}px`;
  axesCanvas.style.height = `${height}px`;
}

function toAxis(view, px, py) {
  return {
    x: lo(view.x) + (px / canvas.width) * view.x.width,
    y: hi(view.y) - (py / canvas.height) * view.y.width,
  };
}

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  return [
    ((event.clientX - rect.left) * canvas.width) / rect.width,
    ((event.clientY - rect.top) * canvas.height) / rect.height,
  ];
}

// --- drawing -----------------------------------------------------------------------------------

function draw(view = state.view) {
  // The shown image placed where its view lies inside `view`: an instant preview of pans and zooms.
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (view) drawAxes(view);
  if (!state.shown || !state.shown.image.complete) return;
  const s = state.shown.view;
  const left = ((lo(s.x) - lo(view.x)) / view.x.width) * canvas.width;
  const top = ((hi(view.y) - hi(s.y)) / view.y.width) * canvas.height;
  const width = (s.x.width / view.x.width) * canvas.width;
  const height = (s.y.width / view.y.width) * canvas.height;
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(state.shown.image, left, top, width, height);
}

function fmt(value, resolution = Math.abs(value) * 1e-6) {
  // Enough significant digits to tell apart values `resolution` apart (deep zooms need up to 17).
  if (value === 0 || !Number.isFinite(value)) return String(value);
  const digits = Math.ceil(Math.log10(Math.abs(value) / Math.max(resolution, Number.MIN_VALUE))) + 2;
  return String(Number(value.toPrecision(Math.min(17, Math.max(3, digits)))));
}

// --- axes: ticks in physical units around the canvas ----------------------------------------

const SUPERSCRIPT = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
const sup = (n) => String(n).split("").map((c) => SUPERSCRIPT[c] ?? c).join("");
const pow10 = (k) => `10${sup(k)}`;
const minus = (text) => text.replace(/^-/, "−"); // a typographic minus

function niceStep(raw) {
  const e = Math.floor(Math.log10(raw));
  const f = raw / 10 ** e;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * 10 ** e;
}

function trimNumber(text) {
  // "2.500" → "2.5", "1.0e-7" → "1e-7"
  return text.replace(/(\.\d*?)0+(e|$)/, "$1$2").replace(/\.(e|$)/, "$1");
}

function linearTicks(lo, hi, target) {
  // Round ticks over [lo, hi]: {ticks: [{at, label}], note} where `note` says how to read the labels:
  // "×10ᵏ" (a common factor) for very large or small values, or, for deep zooms, an offset
  // {ref, unit}: a label n means ref + n·unit.
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return { ticks: [], note: "" };
  const step = niceStep(span / target);
  const e = Math.floor(Math.log10(step) + 1e-9);
  const k0 = Math.ceil(lo / step - 1e-9);
  const k1 = Math.min(Math.floor(hi / step + 1e-9), k0 + 50);
  const mag = Math.floor(Math.log10(Math.max(Math.abs(lo), Math.abs(hi))));
  const ticks = [];
  let note = "";
  if (mag - e > 5) {
    // Deep zoom: label ticks by their offset from a round value near the centre, in units of 10^e.
    const ref = Math.round((lo + hi) / 2 / step) * step; // the tick nearest the centre
    for (let k = k0; k <= k1; k++) {
      const n = Math.round((k * step - ref) / 10 ** e);
      ticks.push({ at: k * step, label: n > 0 ? `+${n}` : minus(String(n)) });
    }
    note = { ref: minus(fmt(ref, step)), unit: pow10(e) };
  } else if (mag >= 5 || mag <= -4) {
    for (let k = k0; k <= k1; k++) {
      ticks.push({ at: k * step, label: minus(trimNumber(((k * step) / 10 ** mag).toFixed(Math.max(0, mag - e)))) });
    }
    note = `×${pow10(mag)}`;
  } else {
    for (let k = k0; k <= k1; k++) {
      ticks.push({ at: k * step, label: k === 0 ? "0" : minus((k * step).toFixed(Math.max(0, -e))) });
    }
  }
  return { ticks, note };
}

function logTicks(lo, hi, target) {
  // A log10 axis (lo, hi in decades): powers of ten over wide spans, m×10ᵏ over a decade or two,
  // round physical values (positions log10 v) when zoomed further.
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return { ticks: [], note: "" };
  if (span >= 3.5) {
    const step = Math.max(1, Math.ceil(niceStep(span / target)));
    const ticks = [];
    for (let k = Math.ceil(lo / step) * step; k <= hi && ticks.length < 50; k += step) {
      ticks.push({ at: k, label: pow10(k) });
    }
    return { ticks, note: "" };
  }
  if (span >= 0.3) {
    const mantissas = span > 1 ? [1, 2, 5] : span > 0.6 ? [1, 2, 3, 5] : [1, 2, 3, 4, 5, 6, 7, 8, 9];
    const ticks = [];
    for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
      for (const m of mantissas) {
        const at = k + Math.log10(m);
        if (at >= lo - 1e-12 && at <= hi + 1e-12) ticks.push({ at, label: m === 1 ? pow10(k) : `${m}×${pow10(k)}` });
      }
    }
    if (ticks.length >= 3) return { ticks, note: "" };
  }
  const physical = linearTicks(10 ** lo, 10 ** hi, target);
  return { ticks: physical.ticks.filter((t) => t.at > 0).map((t) => ({ ...t, at: Math.log10(t.at) })), note: physical.note };
}

function axisTicks(axis, lo, hi, target) {
  return axis.scale === "log10" ? logTicks(lo, hi, target) : linearTicks(lo, hi, target);
}

function boundText(axis, value, resolution) {
  // A bound of the view in physical units (10^value on a log10 axis).
  return axis.scale === "log10" ? minus(fmt(10 ** value, 10 ** value * Math.LN10 * resolution)) : minus(fmt(value, resolution));
}

function drawAxes(view) {
  // Ticks, tick labels, the axis names (the plane's params) and the view's bounds, around the image.
  if (!state.base) return;
  const dpr = axesCanvas.width / (canvas.width + MARGIN.left + MARGIN.right);
  const g = axesCanvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, axesCanvas.width, axesCanvas.height);
  const [x0, y0, w, h] = [MARGIN.left, MARGIN.top, canvas.width, canvas.height];
  const axes = state.base.axes;
  g.strokeStyle = "#8c96a3";
  g.lineWidth = 1;
  g.strokeRect(x0 - 0.5, y0 - 0.5, w + 1, h + 1);
  g.fillStyle = "#c4cad3";
  g.font = "11px system-ui, sans-serif";
  state.axisTicks = {};

  const xs = axisTicks(axes.x, lo(view.x), hi(view.x), 6);
  g.textAlign = "center";
  g.textBaseline = "top";
  g.beginPath();
  let right = -Infinity; // labels that would overlap the previous one are left out (the tick stays)
  for (const t of xs.ticks) {
    const px = x0 + ((t.at - lo(view.x)) / view.x.width) * w;
    g.moveTo(Math.round(px) + 0.5, y0 + h);
    g.lineTo(Math.round(px) + 0.5, y0 + h + 5);
    const half = g.measureText(t.label).width / 2;
    if (px - half > right + 6) {
      g.fillText(t.label, px, y0 + h + 7);
      right = px + half;
    }
  }
  g.stroke();

  const ys = axisTicks(axes.y, lo(view.y), hi(view.y), 6);
  g.textAlign = "right";
  g.textBaseline = "middle";
  g.beginPath();
  let above = Infinity;
  for (const t of ys.ticks) {
    const py = y0 + ((hi(view.y) - t.at) / view.y.width) * h;
    g.moveTo(x0 - 5, Math.round(py) + 0.5);
    g.lineTo(x0, Math.round(py) + 0.5);
    if (py < above - 14) {
      g.fillText(t.label, x0 - 7, py);
      above = py;
    }
  }
  g.stroke();
  state.axisTicks = { x: xs, y: ys }; // read by the browser tests

  // Names and bounds: "u0 ∈ [−4, 4]" under the x labels, how to read the labels below it (a factor
  // or an offset, if any); the y axis alike, rotated, left of its labels.
  const [rx, ry] = state.resolution;
  const title = (axis, v, r) =>
    `${axis.param}${axis.scale === "log10" ? " (log scale)" : ""} ∈ [${boundText(axis, lo(v), r)}, ${boundText(axis, hi(v), r)}]`;
  const reading = (axis, note) => (!note ? "" : typeof note === "string" ? `tick labels ${note}`
    : `tick label n: ${axis.param} = ${note.ref} + n×${note.unit}`);
  g.font = "12px system-ui, sans-serif";
  g.textBaseline = "top";
  g.textAlign = "center";
  g.fillStyle = "#dde1e6";
  g.fillText(title(axes.x, view.x, view.x.width / rx), x0 + w / 2, y0 + h + 24);
  g.fillStyle = "#8c96a3";
  g.fillText(reading(axes.x, xs.note), x0 + w / 2, y0 + h + 40);
  g.save();
  g.translate(6, y0 + h / 2);
  g.rotate(-Math.PI / 2);
  g.fillStyle = "#dde1e6";
  g.fillText(title(axes.y, view.y, view.y.width / ry), 0, 0);
  g.fillStyle = "#8c96a3";
  g.fillText(reading(axes.y, ys.note), 0, 16);
  g.restore();
}

function coordinateText(axis, value, pitch) {
  if (axis.scale === "log10") {
    return `${esc(axis.param)} = ${fmt(10 ** value, 10 ** value * Math.LN10 * pitch)} (log10 ${fmt(value, pitch)})`;
  }
  return `${esc(axis.param)} = ${fmt(value, pitch)}`;
}

function showBounds() {
  const axes = state.base.axes;
  $("bounds").innerHTML = ["x", "y"]
    .map((k) => {
      const v = state.view[k];
      const r = v.width / 1000;
      return `${esc(axes[k].param)}${axes[k].scale === "log10" ? " (log10)" : ""}: [${fmt(lo(v), r)}, ${fmt(hi(v), r)}]` +
        ` width ${fmt(v.width)}`;
    })
    .join("<br>");
  $("back").disabled = state.history.length === 0;
}

function showLegend(legend) {
  $("legend").innerHTML = legend
    .map((c) => `<div data-class="${esc(c.name)}"><span class="swatch" style="background:${esc(c.color)}"></span>` +
      `${esc(c.name)}<span class="fraction">${(100 * c.fraction).toFixed(2)} %</span></div>`)
    .join("");
}

// --- rendering ---------------------------------------------------------------------------------

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = reject;
    image.src = src;
  });
}

async function show(answer, view, full, seq) {
  const image = await loadImage(answer.image);
  if (seq !== state.seq) return;
  state.shown = { view, image, src: answer.image, renderId: answer.render_id, full, legend: answer.legend,
    name: answer.name, seq, resolution: answer.resolution, bounds: answer.view, dtype: answer.dtype };
  draw();
  showLegend(answer.legend);
  $("save-png").disabled = !full;
}

// --- progress: the server's tile count of the running render, polled -------------------------

function duration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  return seconds < 90 ? `${seconds.toFixed(seconds < 10 ? 1 : 0)} s` : `${(seconds / 60).toFixed(1)} min`;
}

function showProgress(label, p) {
  // "512×512 · 37 % · 12 s left" over the image, with a bar; `p` is an /api/progress answer (or null).
  state.progress = p;
  $("progress").hidden = false;
  let text = `${label}…`;
  let fraction = 0;
  if (p && p.state === "waiting") {
    text = `${label}: waiting for the engine${p.queued > 1 ? ` (${p.queued - 1} ahead)` : ""}`;
  } else if (p && p.state === "rendering") {
    fraction = p.fraction;
    const eta = p.eta_s == null ? (p.done ? "" : " · first tile (with the compile)") : ` · ${duration(p.eta_s)} left`;
    text = `${label}: ${(100 * fraction).toFixed(0)} %${eta} · ${duration(p.elapsed_s)} so far`;
  } else if (p && p.state === "done") {
    fraction = 1;
  }
  $("progress-text").textContent = text;
  $("progress-bar").style.width = `${(100 * fraction).toFixed(1)}%`;
  setStatus(text);
}

function hideProgress() {
  $("progress").hidden = true;
  $("progress-bar").style.width = "0";
}

function pollProgress(seq, label, shouldStop) {
  // Ask for the progress every POLL_MS until `shouldStop()`; a failed poll only skips a beat.
  const url = `/api/progress?client=${encodeURIComponent(state.client)}`;
  const tick = async () => {
    if (shouldStop() || seq !== state.seq) return;
    try {
      const p = await api(url, undefined, undefined, 0);
      if (!shouldStop() && seq === state.seq) showProgress(label, p);
    } catch (error) {
      // the render's own answer reports errors
    }
    if (!shouldStop() && seq === state.seq) setTimeout(tick, POLL_MS);
  };
  setTimeout(tick, POLL_MS);
}

let controller = null;

async function renderView() {
  const seq = ++state.seq;
  if (controller) controller.abort(); // the server also cancels the older render (same client id)
  controller = new AbortController();
  const signal = controller.signal;
  const view = copyView(state.view);
  const [w, h] = state.resolution;
  const coarse = [Math.round(w / COARSE), Math.round(h / COARSE)];
  const sizes = w >= 8 * COARSE && h >= 8 * COARSE ? [coarse, [w, h]] : [[w, h]];
  state.busy = true;
  showBounds();
  $("dimension-out").textContent = "";
  $("save-png").disabled = true;
  try {
    for (const [i, resolution] of sizes.entries()) {
      const full = i === sizes.length - 1;
      const label = `${full ? "" : "preview "}${resolution[0]}×${resolution[1]}`;
      showProgress(label, null);
      let finished = false;
      pollProgress(seq, label, () => finished);
      const body = { client: state.client, view, resolution, overrides: state.overrides };
      let answer;
      try {
        answer = await api("/api/render", body, signal);
      } finally {
        finished = true;
      }
      if (seq !== state.seq) return;
      await show(answer, view, full, seq);
      if (full) {
        hideProgress();
        setStatus(`${answer.resolution[0]}×${answer.resolution[1]} in ${answer.elapsed_s.toFixed(2)} s (${answer.dtype})`);
      }
    }
  } catch (error) {
    if (error.name === "AbortError" || error.status === 409 || seq !== state.seq) return;
    hideProgress();
    setStatus(error.message, true);
    if (state.shown && (error.status === 400 || error.status === 413)) {
      // an impossible or too costly view: back to the last one shown
      state.view = copyView(state.shown.view);
      if (state.history.length) state.history.pop();
      draw();
      showBounds();
      $("save-png").disabled = !state.shown.full;
    }
  } finally {
    if (seq === state.seq) state.busy = false;
  }
}

function goTo(view, remember = true) {
  if (remember) state.history.push(copyView(state.view));
  state.view = view;
  draw();
  renderView();
}

function back() {
  if (!state.history.length) return;
  state.view = state.history.pop();
  draw();
  renderView();
}

// --- gestures ----------------------------------------------------------------------------------

let drag = null; // {mode: "zoom" | "pan", x0, y0, x1, y1}

function selection(d) {
  const box = $("selection");
  const scaleX = canvas.getBoundingClientRect().width / canvas.width;
  const scaleY = canvas.getBoundingClientRect().height / canvas.height;
  Object.assign(box.style, {
    display: "block",
    left: `${Math.min(d.x0, d.x1) * scaleX}px`,
    top: `${Math.min(d.y0, d.y1) * scaleY}px`,
    width: `${Math.abs(d.x1 - d.x0) * scaleX}px`,
    height: `${Math.abs(d.y1 - d.y0) * scaleY}px`,
  });
}

function panned(d) {
  const v = copyView(state.view);
  v.x.center -= ((d.x1 - d.x0) / canvas.width) * v.x.width;
  v.y.center += ((d.y1 - d.y0) / canvas.height) * v.y.width;
  return v;
}

function zoomedToBox(d) {
  // The smallest view of the current aspect that holds the box, centred on it.
  const c = toAxis(state.view, (d.x0 + d.x1) / 2, (d.y0 + d.y1) / 2);
  const scale = Math.max(Math.abs(d.x1 - d.x0) / canvas.width, Math.abs(d.y1 - d.y0) / canvas.height);
  return {
    x: { center: c.x, width: state.view.x.width * scale },
    y: { center: c.y, width: state.view.y.width * scale },
  };
}

canvas.addEventListener("contextmenu", (e) => e.preventDefault());
canvas.addEventListener("mousedown", (e) => {
  if (!state.view) return;
  const [x, y] = canvasPoint(e);
  const mode = e.button === 2 || e.button === 1 || e.shiftKey ? "pan" : e.button === 0 ? "zoom" : null;
  if (mode) drag = { mode, x0: x, y0: y, x1: x, y1: y };
  e.preventDefault();
});
window.addEventListener("mousemove", (e) => {
  const [x, y] = canvasPoint(e);
  if (state.view && x >= 0 && y >= 0 && x <= canvas.width && y <= canvas.height) {
    const view = drag && drag.mode === "pan" ? panned(drag) : state.view;
    const p = toAxis(view, x, y);
    const [w, h] = state.resolution;
    $("cursor").innerHTML = `${coordinateText(state.base.axes.x, p.x, view.x.width / w)}<br>` +
      coordinateText(state.base.axes.y, p.y, view.y.width / h);
  }
  if (!drag) return;
  drag.x1 = Math.min(Math.max(x, 0), canvas.width);
  drag.y1 = Math.min(Math.max(y, 0), canvas.height);
  if (drag.mode === "zoom") selection(drag);
  else draw(panned(drag));
});
window.addEventListener("mouseup", () => {
  if (!drag) return;
  const d = drag;
  drag = null;
  $("selection").style.display = "none";
  const moved = Math.max(Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0));
  if (d.mode === "zoom" && moved >= 4) goTo(zoomedToBox(d));
  else if (d.mode === "pan" && moved >= 1) goTo(panned(d));
  else draw();
});

let wheelTimer = null;
canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  if (!state.view) return;
  // Zoom about the cursor: the point under it stays put, w → w·f, c → p + (c − p)·f.
  const f = Math.min(4, Math.max(0.25, Math.exp(e.deltaY * 0.002)));
  const [x, y] = canvasPoint(e);
  const p = toAxis(state.view, x, y);
  if (!wheelTimer) state.history.push(copyView(state.view)); // one Back step per wheel gesture
  const v = state.view;
  state.view = {
    x: { center: p.x + (v.x.center - p.x) * f, width: v.x.width * f },
    y: { center: p.y + (v.y.center - p.y) * f, width: v.y.width * f },
  };
  draw();
  showBounds();
  clearTimeout(wheelTimer);
  wheelTimer = setTimeout(() => { wheelTimer = null; renderView(); }, 250);
}, { passive: false });

window.addEventListener("keydown", (e) => {
  if (e.target.tagName === "INPUT") return;
  if (e.key === "Backspace") { e.preventDefault(); back(); }
});

// --- buttons -----------------------------------------------------------------------------------

function download(filename, text) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "application/toml" }));
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

const viewBody = () => ({ view: state.view, resolution: state.resolution, overrides: state.overrides });

async function run(button, action) {
  try { await action(); } catch (error) { setStatus(`${button}: ${error.message}`, true); }
}

$("back").onclick = back;
$("save-png").onclick = () => {
  // The PNG as the server made it: the image of the view with its recipe in an iTXt chunk.
  if (!state.shown || !state.shown.full) return;
  const link = document.createElement("a");
  link.href = state.shown.src;
  link.download = `${state.shown.name}.png`;
  document.body.appendChild(link);
  link.click();
  link.remove();
};
$("reset").onclick = () => goTo(copyView(state.base.view));
$("export").onclick = () => run("export", async () => {
  const answer = await api("/api/recipe", viewBody());
  download(answer.filename, answer.toml);
});
$("keyframe").onclick = () => {
  state.keyframes.push(copyView(state.view));
  const n = state.keyframes.length;
  $("keyframes").textContent = `${n} keyframe${n > 1 ? "s" : ""}, widths ` +
    state.keyframes.map((k) => fmt(k.x.width)).join(" → ");
  $("zoom").disabled = n < 2;
  $("clear-keyframes").disabled = false;
};
$("clear-keyframes").onclick = () => {
  state.keyframes = [];
  $("keyframes").textContent = "no keyframes";
  $("zoom").disabled = $("clear-keyframes").disabled = true;
};
$("zoom").onclick = () => run("zoom", async () => {
  const answer = await api("/api/zoom-recipe", { ...viewBody(), keyframes: state.keyframes });
  download(answer.filename, answer.toml);
});
$("dimension").onclick = () => run("D", async () => {
  if (!state.shown || !state.shown.full) throw new Error("wait for the full-resolution image");
  $("dimension-out").textContent = "box counting…";
  const d = await api("/api/dimension", { render_id: state.shown.renderId });
  state.lastDimension = d;
  const num = (v) => (v == null ? "n/a" : v.toFixed(3)); // null: undefined (strict JSON has no NaN)
  $("dimension-out").innerHTML = `D = ${num(d.dimension)} ± ${num(d.stderr)}<br>` +
    `fit ${d.fit_range[0]}–${d.fit_range[1]} px, ${d.boundary_pixels} boundary pixels` +
    (d.warnings.length ? `<br>${d.warnings.map(esc).join("<br>")}` : "");
});
$("overrides").addEventListener("change", (e) => {
  state.overrides = e.target.value.split(";").map((s) => s.trim()).filter(Boolean);
  renderView();
});
$("resolution").addEventListener("change", (e) => {
  const side = Number(e.target.value);
  const [w, h] = state.base.resolution;
  const scale = side / Math.max(w, h);
  state.resolution = [Math.max(1, Math.round(w * scale)), Math.max(1, Math.round(h * scale))];
  fitCanvas();
  draw();
  renderView();
});

// --- start -------------------------------------------------------------------------------------

(async () => {
  try {
    state.base = await api("/api/config");
  } catch (error) {
    setStatus(error.message, true);
    return;
  }
  document.title = `${state.base.name} · fractalgd explorer`;
  $("title").textContent = `${state.base.name} (${state.base.problem})`;
  state.resolution = state.base.resolution;
  const side = Math.max(...state.resolution);
  const sides = [...new Set([128, 256, 512, 1024, 2048, side])]
    .filter((s) => s <= state.base.max_side)
    .sort((a, b) => a - b);
  $("resolution").innerHTML = sides.map((s) => `<option${s === side ? " selected" : ""}>${s}</option>`).join("");
  $("allowed").textContent = `may change: ${state.base.overrides.join(", ")}`;
  state.view = copyView(state.base.view);
  fitCanvas();
  draw();
  showBounds();
  renderView();
})();
