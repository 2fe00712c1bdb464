// The srgan page: choose images (button, drop or paste), POST each once to v1/upscale, show
// the model's result against a bicubic enlargement of the same file (computed here, by
// bicubic.js), download one result or all of them as a zip (zip.js).
// Plain JavaScript, no build step, nothing fetched from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  limits: null,
  items: [], // chosen images: {file, url, width, height}
  busy: false,
  xhr: null, // the request in flight, for Cancel
  ticket: null,
  cancelled: false,
  results: [], // {item, blob, url, name, model, outscale, info, warnings}
  shown: null, // the result on screen
  compareUrl: null,
  zoom: "fit",
};

// ------------------------------------------------------------------ messages
function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function setStatus(text, percent) {
  $("status").hidden = false;
  $("status-text").textContent = text;
  const bar = $("progress");
  if (percent === null || percent === undefined) bar.removeAttribute("value");
  else bar.value = percent;
}

function formatBytes(n) {
  if (n >= 1024 * 1024) return (n / (1024 * 1024)).toFixed(1) + " MB";
  if (n >= 1024) return (n / 1024).toFixed(0) + " KB";
  return n + " bytes";
}

// ------------------------------------------------------------------ models
async function loadModels() {
  let res;
  try {
    res = await fetch("v1/models");
  } catch (e) {
    showError("Cannot reach the server to list the models.");
    return;
  }
  if (!res.ok) {
    showError("Listing the models failed: " + Api.detailText(res.status, await res.text()));
    return;
  }
  const info = await res.json();
  state.limits = info.limits;
  state.models = info.models.filter((m) => m.kind === "network");
  const select = $("model");
  select.textContent = "";
  for (const m of state.models) {
    const opt = document.createElement("option");
    opt.value = m.name;
    const words = (m.summary || "").split(":")[0].replace(/\.$/, "");
    opt.textContent = words ? `${m.name} — ${words.toLowerCase()}` : m.name;
    if (m.name === info.default) opt.selected = true;
    select.appendChild(opt);
  }
  const other = $("compare-with");
  for (const m of state.models) {
    const opt = document.createElement("option");
    opt.value = m.name;
    opt.textContent = m.name;
    other.appendChild(opt);
  }
  $("compare-with-label").hidden = state.models.length < 2;
  if (!state.models.length) showError("This server has no super-resolution model loaded.");
  const lim = info.limits;
  $("limits").textContent =
    `up to ${formatBytes(lim.max_upload_bytes)} and ` +
    `${(lim.max_pixels / 1e6).toFixed(lim.max_pixels % 1e6 ? 2 : 0)} megapixels each`;
  onModelChange();
  updateButtons();
}

function onModelChange() {
  const m = state.models.find((x) => x.name === $("model").value);
  if (!m) return;
  $("model-card").textContent = `${m.name} (×${m.scale}): ${m.summary || ""}`;
  $("outscale").value = String(m.scale);
  if ($("outscale").value !== String(m.scale)) $("outscale").value = "4";
}

// ------------------------------------------------------------------ choosing images
function setFiles(files) {
  if (state.busy) return; // the run in progress keeps the images it started with
  const images = [...files].filter((f) => f && (f.type.startsWith("image/") || !f.type));
  if (!images.length) return;
  clearError();
  for (const it of state.items) URL.revokeObjectURL(it.url);
  state.items = images.map((file) => ({ file, url: URL.createObjectURL(file), width: 0,
    height: 0 }));
  renderPreview();
  const big = state.items.filter((it) => state.limits && it.file.size > state.limits.max_upload_bytes);
  if (big.length) {
    showError(big.map((it) => `${it.file.name} is ${formatBytes(it.file.size)}; this server ` +
      `accepts uploads up to ${formatBytes(state.limits.max_upload_bytes)}.`).join("\n"));
  }
  updateButtons();
}

function renderPreview() {
  const list = $("preview");
  list.textContent = "";
  const n = state.items.length;
  $("drop-text").textContent = n === 1 ? `${state.items[0].file.name} (${formatBytes(state.items[0].file.size)})`
    : `${n} images chosen`;
  for (const it of state.items) {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.alt = `preview of ${it.file.name}`;
    img.draggable = false;
    const caption = document.createElement("span");
    caption.className = "size";
    caption.textContent = `${it.file.name}: ${formatBytes(it.file.size)}`;
    img.onload = () => {
      it.width = img.naturalWidth;
      it.height = img.naturalHeight;
      caption.textContent = `${it.file.name}: ${it.width} × ${it.height} px, ` +
        formatBytes(it.file.size);
    };
    img.onerror = () => {
      img.hidden = true;
      caption.textContent = `${it.file.name}: ${formatBytes(it.file.size)} (no preview in ` +
        "this browser; the server reads it)";
    };
    img.src = it.url;
    li.append(img, caption);
    list.appendChild(li);
  }
  list.classList.toggle("single", n === 1);
  list.hidden = n === 0;
}

function updateButtons() {
  $("go").disabled = state.busy || !state.items.length || !state.models.length;
  $("choose").disabled = state.busy;
  $("cancel").hidden = !state.busy;
}

// ------------------------------------------------------------------ the result view
function setDivider(percent) {
  const p = Math.max(0, Math.min(100, percent));
  $("before").style.clipPath = `inset(0 ${100 - p}% 0 0)`;
  $("divider").style.left = `${p}%`;
  $("slider").value = String(p);
}

function applyZoom() {
  const after = $("after");
  const w = after.naturalWidth;
  const h = after.naturalHeight;
  if (!w || !h) return;
  const dpr = window.devicePixelRatio || 1;
  let factor; // CSS pixels per image pixel
  if (state.zoom === "fit") {
    // shrink to fit, never enlarge: a small result is shown at its own size, not blown up
    const maxW = $("viewport").clientWidth || w;
    const maxH = Math.max(200, window.innerHeight * 0.72);
    factor = Math.min(1 / dpr, maxW / w, maxH / h);
  } else {
    factor = Number(state.zoom) / dpr;
  }
  for (const img of [after, $("before")]) {
    img.style.width = `${Math.round(w * factor)}px`;
    img.style.height = `${Math.round(h * factor)}px`;
  }
  // zoomed past 100%, pixels stay sharp squares, so neither side gets extra smoothing
  $("compare").classList.toggle("pixelated", factor * dpr > 1.001);
}

function showResult(r) {
  state.shown = r;
  const dl = $("download");
  dl.href = r.url;
  dl.download = r.name;
  $("result-info").textContent = r.info;
  $("tag-after").textContent = `${r.model} (model)`;
  for (const id of ["before", "tag-before", "divider", "slider"]) $(id).hidden = true;
  $("compare-note").textContent = "";
  const warn = $("warnings");
  warn.textContent = r.warnings ? `Note: ${r.warnings}` : "";
  warn.hidden = !r.warnings;
  $("after").onload = applyZoom;
  $("after").src = r.url;
  $("result").hidden = false;
  for (const li of $("batch").children) li.classList.toggle("current", li.dataset.url === r.url);
  showComparison(r);
}

// The left side: bicubic enlargement of the same File object the result was made from, or
// (when chosen) another model's result for that same file.
async function showComparison(r) {
  const [w, h] = r.outSize;
  const note = $("compare-note");
  if (!w || !h) return;
  let blob = r.other ? r.other.blob : null;
  if (!r.other) {
    note.textContent = r.otherError || "Making the bicubic comparison…";
    if (r.otherError) return;
    blob = await Bicubic.enlargeFile(r.item.file, w, h);
  }
  if (state.shown !== r) return; // another result was chosen meanwhile
  if (!blob) {
    note.textContent = "No comparison: this browser cannot decode this image format.";
    return;
  }
  if (state.compareUrl) URL.revokeObjectURL(state.compareUrl);
  state.compareUrl = URL.createObjectURL(blob);
  const before = $("before");
  before.onload = () => {
    if (state.shown !== r) return;
    applyZoom();
    for (const id of ["before", "tag-before", "divider", "slider"]) $(id).hidden = false;
    setDivider(Number($("slider").value));
  };
  before.src = state.compareUrl;
  if (r.other) {
    $("tag-before").textContent = `${r.other.model} (model)`;
    note.textContent =
      `Left of the line: ${r.other.model}. Right: ${r.model}. Both upscaled ` +
      `${r.item.file.name} to ${w}×${h} pixels and are shown at the same size; drag the line ` +
      `or the slider to compare. Download saves the ${r.model} result.`;
    return;
  }
  $("tag-before").textContent = "bicubic";
  note.textContent =
    `Left of the line: ${r.item.file.name} enlarged by bicubic interpolation (MATLAB-style ` +
    `imresize, computed in this browser). Right: ${r.model}. Both are ${w}×${h} pixels, ` +
    `shown at the same size; drag the line or the slider to compare. Download saves the ` +
    `${r.model} result.`;
}

function addBatchEntry(r) {
  const list = $("batch");
  const li = document.createElement("li");
  li.dataset.url = r.url;
  const b = document.createElement("button");
  b.type = "button";
  b.className = "link";
  b.textContent = r.name;
  b.addEventListener("click", () => showResult(r));
  li.appendChild(b);
  list.appendChild(li);
}

function addBatchFailure(item, message) {
  const li = document.createElement("li");
  li.className = "failed";
  li.textContent = `${item.file.name}: ${message}`;
  $("batch").appendChild(li);
}

async function downloadAll() {
  const blob = await Zip.build(state.results.map((r) => ({ name: r.name, blob: r.blob })));
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "srgan-results.zip";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

// ------------------------------------------------------------------ a run
async function upscaleOne(item, opts, prefix, model) {
  const ticket = Math.random().toString(36).slice(2) + Date.now().toString(36);
  state.ticket = ticket;
  const form = new FormData();
  form.append("image", item.file, item.file.name);
  form.append("model", model);
  form.append("outscale", opts.outscale);
  form.append("format", opts.format);
  form.append("ticket", ticket);
  let stop = () => {};
  setStatus(`${prefix}Uploading… 0%`, 0);
  try {
    const xhr = await Api.postUpscale(form, (x) => (state.xhr = x),
      (p) => setStatus(`${prefix}Uploading… ${Math.round(p)}%`, p),
      () => {
        setStatus(`${prefix}Processing on the server…`, null);
        stop = Api.watchQueue(ticket, (text) => setStatus(prefix + text, null));
      });
    const outSize = (xhr.getResponseHeader("X-Srgan-Output-Size") || "0x0").split("x").map(Number);
    const inSize = xhr.getResponseHeader("X-Srgan-Input-Size") || "?";
    const secs = Number(xhr.getResponseHeader("X-Srgan-Seconds") || "0");
    const stem = item.file.name.replace(/\.[^.]*$/, "") || "image";
    return {
      item,
      blob: xhr.response,
      url: URL.createObjectURL(xhr.response),
      name: Api.filenameOf(xhr, `${stem}_x${opts.outscale}.${opts.format}`),
      model,
      outSize,
      info: `${model} ×${opts.outscale}: ${inSize} → ${outSize.join("x")} pixels in ` +
        `${secs.toFixed(2)} s`,
      warnings: xhr.getResponseHeader("X-Srgan-Warnings") || "",
    };
  } finally {
    stop();
    state.xhr = null;
  }
}

async function run() {
  if (!state.items.length || state.busy) return;
  const items = [...state.items]; // this run's images, whatever is chosen meanwhile
  const opts = { model: $("model").value, outscale: $("outscale").value,
    format: $("format").value, other: $("compare-with").value };
  if (opts.other === opts.model) opts.other = "bicubic";
  state.busy = true;
  state.cancelled = false;
  updateButtons();
  $("cancel").focus();
  clearError();
  for (const r of state.results) {
    URL.revokeObjectURL(r.url);
    if (r.other) URL.revokeObjectURL(r.other.url);
  }
  state.results = [];
  $("batch").textContent = "";
  $("batch").hidden = items.length < 2;
  $("download-all").hidden = true;
  const errors = [];
  for (let i = 0; i < items.length && !state.cancelled; i++) {
    const prefix = items.length > 1 ? `${i + 1} of ${items.length}: ${items[i].file.name}. ` : "";
    try {
      const r = await upscaleOne(items[i], opts, prefix, opts.model);
      if (opts.other !== "bicubic") {
        // the same file, uploaded once more for the other model (bicubic needs no upload)
        try {
          r.other = await upscaleOne(items[i], opts, `${prefix}${opts.other}: `, opts.other);
        } catch (e) {
          if (e.status === -1 || state.cancelled) throw e;
          r.otherError = `No comparison with ${opts.other}: ${e.message}`;
        }
      }
      state.results.push(r);
      if (items.length > 1) addBatchEntry(r);
      if (state.results.length === 1 || items.length === 1) showResult(r);
    } catch (e) {
      if (e.status === -1 || state.cancelled) break;
      errors.push(items.length > 1 ? `${items[i].file.name}: ${e.message}` : e.message);
      if (items.length > 1) addBatchFailure(items[i], e.message);
    }
  }
  state.busy = false;
  updateButtons();
  $("status").hidden = true;
  if (state.cancelled) {
    showError(`Cancelled. ${state.results.length} of ${items.length} done.`);
  } else if (errors.length) {
    showError(errors.join("\n"));
  }
  $("download-all").hidden = state.results.length < 2;
  // keep the keyboard user's place: on the result, or on the message that explains why not
  if (state.results.length && !state.cancelled && !errors.length) $("download").focus();
  else if (!$("error").hidden) $("error").focus();
  else $("go").focus();
}

function cancel() {
  if (!state.busy) return;
  state.cancelled = true;
  if (state.ticket) fetch(`v1/queue/${state.ticket}`, { method: "DELETE" }).catch(() => {});
  if (state.xhr) state.xhr.abort();
}

// ------------------------------------------------------------------ wiring
function wireDivider() {
  const compare = $("compare");
  let dragging = null; // the pointer that holds the divider
  const follow = (e) => {
    const r = compare.getBoundingClientRect();
    if (r.width) setDivider((100 * (e.clientX - r.left)) / r.width);
  };
  const release = () => (dragging = null);
  // no native image drag: it would cancel the pointer and leave the divider stuck to it
  compare.addEventListener("dragstart", (e) => e.preventDefault());
  compare.addEventListener("pointerdown", (e) => {
    if ($("before").hidden || (e.pointerType === "mouse" && e.button !== 0)) return;
    e.preventDefault();
    dragging = e.pointerId;
    compare.setPointerCapture(e.pointerId);
    follow(e);
  });
  compare.addEventListener("pointermove", (e) => {
    if (dragging !== e.pointerId) return;
    if (e.pointerType === "mouse" && !(e.buttons & 1)) return release(); // button let go outside
    follow(e);
  });
  for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
    compare.addEventListener(type, release);
  }
}

function init() {
  const drop = $("drop");
  $("choose").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (e) => {
    setFiles(e.target.files);
    e.target.value = ""; // choosing the same file again still fires change
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length) setFiles(files);
  });
  // a file dropped next to the zone must not make the browser navigate away from the page
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
  document.addEventListener("paste", (e) => {
    const files = e.clipboardData ? [...e.clipboardData.files] : [];
    if (!files.length) return;
    e.preventDefault();
    setFiles(files.map((f, i) => (f.name && f.name !== "image.png" ? f
      : new File([f], `pasted-${i + 1}.${(f.type.split("/")[1] || "png")}`, { type: f.type }))));
  });

  $("model").addEventListener("change", onModelChange);
  $("go").addEventListener("click", run);
  $("cancel").addEventListener("click", cancel);
  $("download-all").addEventListener("click", downloadAll);
  $("slider").addEventListener("input", (e) => setDivider(Number(e.target.value)));
  $("zoom").addEventListener("change", (e) => {
    state.zoom = e.target.value;
    applyZoom();
  });
  window.addEventListener("resize", () => state.zoom === "fit" && applyZoom());
  wireDivider();
  loadModels();
}

document.addEventListener("DOMContentLoaded", init);
