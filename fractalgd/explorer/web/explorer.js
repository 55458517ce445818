// fractalgd explorer: the page's state, the mouse gestures and the calls to the JSON API (fractalgd/serve.py).
// A view is {x: {center, width}, y: {center, width}} in axis units (decades on a log10 axis);
// the canvas shows x left → right and y bottom → top.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const COARSE = 4; // the first image of every view is rendered at 1/COARSE resolution
const SIDE = 640; // the canvas' longer side in CSS pixels

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
};
window.explorer = state; // read by the browser tests

const copyView = (v) => ({ x: { ...v.x }, y: { ...v.y } });
const lo = (a) => a.center - a.width / 2;
const hi = (a) => a.center + a.width / 2;

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "mono error" : "mono";
}

// The server's token, from the URL `fractalgd serve` printed: every API call sends it back.
const TOKEN = new URLSearchParams(window.location.search).get("token") || "";

async function api(path, body, signal) {
  const headers = { "X-Fractalgd-Token": TOKEN };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  const data = await response.json();
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    throw error;
  }
  return data;
}

// --- geometry: canvas pixels ↔ axis units ----------------------------------------------------

function fitCanvas() {
  const [w, h] = state.resolution;
  const scale = SIDE / Math.max(w, h);
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
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

function coordinateText(axis, value, pitch) {
  if (axis.scale === "log10") {
    return `${axis.param} = ${fmt(10 ** value, 10 ** value * Math.LN10 * pitch)} (log10 ${fmt(value, pitch)})`;
  }
  return `${axis.param} = ${fmt(value, pitch)}`;
}

function showBounds() {
  const axes = state.base.axes;
  $("bounds").innerHTML = ["x", "y"]
    .map((k) => {
      const v = state.view[k];
      const r = v.width / 1000;
      return `${axes[k].param}${axes[k].scale === "log10" ? " (log10)" : ""}: [${fmt(lo(v), r)}, ${fmt(hi(v), r)}]` +
        ` width ${fmt(v.width)}`;
    })
    .join("<br>");
  $("back").disabled = state.history.length === 0;
}

function showLegend(legend) {
  $("legend").innerHTML = legend
    .map((c) => `<div data-class="${c.name}"><span class="swatch" style="background:${c.color}"></span>` +
      `${c.name}<span class="fraction">${(100 * c.fraction).toFixed(2)} %</span></div>`)
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
  state.shown = { view, image, renderId: answer.render_id, full, legend: answer.legend, name: answer.name,
    seq, resolution: answer.resolution, bounds: answer.view };
  draw();
  showLegend(answer.legend);
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
  try {
    for (const [i, resolution] of sizes.entries()) {
      const full = i === sizes.length - 1;
      setStatus(`rendering ${resolution[0]}×${resolution[1]}…`);
      const body = { client: state.client, view, resolution, overrides: state.overrides };
      const answer = await api("/api/render", body, signal);
      if (seq !== state.seq) return;
      await show(answer, view, full, seq);
      if (full) setStatus(`${answer.resolution[0]}×${answer.resolution[1]} in ${answer.elapsed_s.toFixed(2)} s`);
    }
  } catch (error) {
    if (error.name === "AbortError" || error.status === 409 || seq !== state.seq) return;
    setStatus(error.message, true);
    if (state.shown && error.status === 400) { // an impossible view: back to the last one shown
      state.view = copyView(state.shown.view);
      if (state.history.length) state.history.pop();
      draw();
      showBounds();
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
  $("dimension-out").innerHTML = `D = ${d.dimension.toFixed(3)} ± ${d.stderr.toFixed(3)}<br>` +
    `fit ${d.fit_range[0]}–${d.fit_range[1]} px, ${d.boundary_pixels} boundary pixels` +
    (d.warnings.length ? `<br>${d.warnings.join("<br>")}` : "");
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
  state.view = copyView(state.base.view);
  fitCanvas();
  showBounds();
  renderView();
})();
