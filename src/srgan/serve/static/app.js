// The srgan page: pick an image, POST it to v1/upscale, show bicubic vs super-resolved.
// Plain JavaScript, no build step, nothing fetched from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  limits: null,
  file: null,
  busy: false,
  urls: [], // object URLs to revoke when a new result replaces the old one
  zoom: "fit",
};

class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

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
  if (percent === null || percent === undefined) {
    bar.removeAttribute("value"); // indeterminate
  } else {
    bar.value = percent;
  }
}

function hideStatus() {
  $("status").hidden = true;
}

function formatBytes(n) {
  if (n >= 1024 * 1024) return (n / (1024 * 1024)).toFixed(1) + " MB";
  if (n >= 1024) return (n / 1024).toFixed(0) + " KB";
  return n + " bytes";
}

// The API answers errors as JSON {"detail": ...}: a sentence, or FastAPI's list of
// validation problems. Turn either into something a person can read.
function detailText(status, body) {
  let detail = null;
  try {
    detail = JSON.parse(body).detail;
  } catch (e) {
    detail = null;
  }
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((d) => {
        const where = Array.isArray(d.loc) ? d.loc.filter((x) => x !== "body").join(".") : "";
        return (where ? where + ": " : "") + (d.msg || JSON.stringify(d));
      })
      .join("\n");
  }
  return `The server answered ${status} without an explanation.`;
}

// ------------------------------------------------------------------ API
async function loadModels() {
  let res;
  try {
    res = await fetch("v1/models");
  } catch (e) {
    showError("Cannot reach the server to list the models.");
    return;
  }
  if (!res.ok) {
    showError("Listing the models failed: " + detailText(res.status, await res.text()));
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
    opt.textContent = `${m.name} (×${m.scale})`;
    if (m.name === info.default) opt.selected = true;
    select.appendChild(opt);
  }
  if (!state.models.length) showError("This server has no super-resolution model loaded.");
  const lim = info.limits;
  $("limits").textContent =
    `up to ${formatBytes(lim.max_upload_bytes)} and ` +
    `${(lim.max_pixels / 1e6).toFixed(lim.max_pixels % 1e6 ? 2 : 0)} megapixels`;
  onModelChange();
  updateButton();
}

function currentModel() {
  return state.models.find((m) => m.name === $("model").value);
}

function onModelChange() {
  const m = currentModel();
  if (!m) return;
  const card = m.card || {};
  $("model-card").textContent = [card.description, card.training].filter(Boolean).join(" ");
  $("outscale").value = String(m.scale);
  if ($("outscale").value !== String(m.scale)) $("outscale").value = "4";
}

// One POST to v1/upscale through XMLHttpRequest, which (unlike fetch) reports upload progress.
function postUpscale(form, onProgress, onUploaded) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "v1/upscale");
    xhr.responseType = "blob";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress((100 * e.loaded) / e.total);
    };
    xhr.upload.onload = () => onUploaded && onUploaded();
    xhr.onload = async () => {
      if (xhr.status === 200) {
        resolve(xhr);
        return;
      }
      let body = "";
      try {
        body = await xhr.response.text();
      } catch (e) {
        body = "";
      }
      const retry = xhr.getResponseHeader("Retry-After");
      let message = detailText(xhr.status, body);
      if (xhr.status === 503 && retry) message += ` Try again in ${retry} s.`;
      reject(new ApiError(xhr.status, message, retry));
    };
    xhr.onerror = () =>
      reject(new ApiError(0, "The connection to the server failed (is `srgan serve` running?)."));
    xhr.send(form);
  });
}

function makeForm(model, outscale, format) {
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  form.append("model", model);
  form.append("outscale", outscale);
  form.append("format", format);
  return form;
}

function filenameOf(xhr, fallback) {
  const cd = xhr.getResponseHeader("Content-Disposition") || "";
  const m = /filename="([^"]+)"/.exec(cd);
  return m ? m[1] : fallback;
}

// ------------------------------------------------------------------ input
function setFile(file) {
  clearError();
  if (!file) return;
  state.file = file;
  $("drop-text").textContent = `${file.name} (${formatBytes(file.size)})`;
  if (state.limits && file.size > state.limits.max_upload_bytes) {
    showError(
      `${file.name} is ${formatBytes(file.size)}; this server accepts uploads up to ` +
        `${formatBytes(state.limits.max_upload_bytes)}.`
    );
  }
  updateButton();
}

function updateButton() {
  $("go").disabled = state.busy || !state.file || !state.models.length;
}

// ------------------------------------------------------------------ result view
function revokeUrls() {
  for (const u of state.urls) URL.revokeObjectURL(u);
  state.urls = [];
}

function setDivider(percent) {
  const p = Math.max(0, Math.min(100, percent));
  $("before").style.clipPath = `inset(0 ${100 - p}% 0 0)`;
  $("divider").style.left = `${p}%`;
  $("slider").value = String(p);
}

function applyZoom() {
  const after = $("after");
  const before = $("before");
  const w = after.naturalWidth;
  const h = after.naturalHeight;
  if (!w || !h) return;
  let factor;
  if (state.zoom === "fit") {
    const vp = $("viewport");
    const maxW = vp.clientWidth || w;
    const maxH = Math.max(200, window.innerHeight * 0.72);
    factor = Math.min(maxW / w, maxH / h);
  } else {
    factor = Number(state.zoom) / (window.devicePixelRatio || 1);
  }
  for (const img of [after, before]) {
    img.style.width = `${Math.round(w * factor)}px`;
    img.style.height = `${Math.round(h * factor)}px`;
  }
  // enlarged pixels stay sharp squares, so neither side gets extra smoothing from the browser
  $("compare").classList.toggle("pixelated", factor > 1);
}

function showResult(xhr, modelName, outscale, format) {
  revokeUrls();
  const url = URL.createObjectURL(xhr.response);
  state.urls.push(url);
  const stem = state.file.name.replace(/\.[^.]*$/, "") || "image";
  const name = filenameOf(xhr, `${stem}_x${outscale}.${format}`);
  const dl = $("download");
  dl.href = url;
  dl.download = name;
  const inSize = xhr.getResponseHeader("X-Srgan-Input-Size") || "?";
  const outSize = xhr.getResponseHeader("X-Srgan-Output-Size") || "?";
  const secs = Number(xhr.getResponseHeader("X-Srgan-Seconds") || "0");
  $("result-info").textContent =
    `${modelName} ×${outscale}: ${inSize} → ${outSize} pixels in ${secs.toFixed(2)} s`;
  $("tag-after").textContent = `${modelName} (super-resolved)`;
  $("before").hidden = true;
  $("tag-before").hidden = true;
  $("divider").hidden = true;
  $("slider").hidden = true;
  $("compare-note").textContent = "";
  $("after").onload = applyZoom;
  $("after").src = url;
  $("result").hidden = false;
  const warn = xhr.getResponseHeader("X-Srgan-Warnings");
  if (warn) $("compare-note").textContent = "Note: " + warn;
}

function showComparison(xhr, modelName, outSize) {
  const url = URL.createObjectURL(xhr.response);
  state.urls.push(url);
  const before = $("before");
  before.onload = () => {
    applyZoom();
    before.hidden = false;
    $("tag-before").hidden = false;
    $("divider").hidden = false;
    $("slider").hidden = false;
    setDivider(Number($("slider").value));
  };
  before.src = url;
  $("tag-before").textContent = "bicubic (interpolation)";
  $("compare-note").textContent =
    `Left of the line: your image enlarged by bicubic interpolation (MATLAB-style imresize, ` +
    `on the server). Right: ${modelName}. Both are ${outSize} pixels, shown at the same ` +
    `size; drag the slider or the image to compare. Download saves the ${modelName} result.`;
}

// ------------------------------------------------------------------ run
async function run() {
  if (!state.file || state.busy) return;
  const model = $("model").value;
  const outscale = $("outscale").value;
  const format = $("format").value;
  state.busy = true;
  updateButton();
  clearError();
  setStatus("Uploading… 0%", 0);
  try {
    const sr = await postUpscale(
      makeForm(model, outscale, format),
      (p) => setStatus(`Uploading… ${Math.round(p)}%`, p),
      () => setStatus("Processing on the server…", null)
    );
    showResult(sr, model, outscale, format);
    setStatus("Making the bicubic comparison…", null);
    try {
      const bic = await postUpscale(makeForm("bicubic", outscale, "png"), null, null);
      showComparison(bic, model, sr.getResponseHeader("X-Srgan-Output-Size") || "");
    } catch (e) {
      $("compare-note").textContent = `No bicubic comparison: ${e.message}`;
    }
  } catch (e) {
    showError(e.message);
  } finally {
    state.busy = false;
    hideStatus();
    updateButton();
  }
}

// ------------------------------------------------------------------ wiring
function init() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => setFile(e.target.files[0]));
  drop.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      $("file").click();
    }
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
    if (files && files.length) setFile(files[0]);
  });
  // a file dropped next to the zone must not make the browser navigate away from the page
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());

  $("model").addEventListener("change", onModelChange);
  $("go").addEventListener("click", run);
  $("slider").addEventListener("input", (e) => setDivider(Number(e.target.value)));
  $("zoom").addEventListener("change", (e) => {
    state.zoom = e.target.value;
    applyZoom();
  });
  window.addEventListener("resize", () => state.zoom === "fit" && applyZoom());

  const compare = $("compare");
  let dragging = false;
  const follow = (e) => {
    const r = compare.getBoundingClientRect();
    if (r.width) setDivider((100 * (e.clientX - r.left)) / r.width);
  };
  compare.addEventListener("pointerdown", (e) => {
    if ($("before").hidden) return;
    dragging = true;
    compare.setPointerCapture(e.pointerId);
    follow(e);
  });
  compare.addEventListener("pointermove", (e) => dragging && follow(e));
  compare.addEventListener("pointerup", () => (dragging = false));

  loadModels();
}

document.addEventListener("DOMContentLoaded", init);
