// The srgan page: choose images (button, drop anywhere, paste, or an example), check them
// against the server's limits, send each once as a job (api.js) and show where it stands
// (progress.js), then the model's result against a bicubic enlargement of the same file
// (bicubic.js) in the viewer (viewer.js); download one result or all of them as a zip (zip.js).
// Plain JavaScript, no build step, nothing fetched from outside this server.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  models: [],
  limits: null,
  items: [], // chosen images: {file, url, width, height}
  busy: false,
  xhr: null, // the upload in flight, for Cancel
  job: null, // the server's job being followed, for Cancel
  signal: { cancelled: false },
  cancelled: false,
  outscaleChosen: false, // the person picked a scale: a model change keeps it
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

// a sentence about something the page did not do (a file it cannot take, a drop while busy)
function showNotice(message) {
  $("notice").textContent = message;
  $("notice").hidden = !message;
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
  Denoise.setup(info);
  if (!state.models.length) showError("This server has no super-resolution model loaded.");
  const lim = info.limits;
  $("limits").textContent =
    `up to ${formatBytes(lim.max_upload_bytes)} and ` +
    `${(lim.max_pixels / 1e6).toFixed(lim.max_pixels % 1e6 ? 2 : 0)} megapixels each`;
  onModelChange();
  checkLimits();
}

function onModelChange() {
  const m = state.models.find((x) => x.name === $("model").value);
  if (!m) return;
  $("model-card").textContent = `${m.name} (×${m.scale}): ${m.summary || ""}`;
  Denoise.show(m.name);
  if (state.outscaleChosen) return; // the person's scale stays whatever model they pick
  $("outscale").value = String(m.scale);
  if ($("outscale").value !== String(m.scale)) $("outscale").value = "4";
}

// ------------------------------------------------------------------ choosing images
const TAKES = /\.(png|jpe?g|webp|bmp|tiff?|gif|ppm|pgm|pnm|avif|heic|heif)$/i;

function setFiles(files) {
  files = [...files].filter(Boolean);
  if (state.busy) {
    showNotice("An upscale is running: wait for it to finish or Cancel it (Escape), then " +
      "choose new images.");
    return;
  }
  const images = files.filter((f) => f.type.startsWith("image/") || (!f.type && TAKES.test(f.name)));
  const others = files.filter((f) => !images.includes(f));
  showNotice(others.length ? others.map((f) => `${f.name} is not an image` +
    (f.type ? ` (${f.type})` : "") + ": choose PNG, JPEG, WebP or another image file.")
    .join("\n") : "");
  if (!images.length) return;
  clearError();
  for (const it of state.items) URL.revokeObjectURL(it.url);
  state.items = images.map((file) => ({ file, url: URL.createObjectURL(file), width: 0,
    height: 0 }));
  renderPreview();
  checkLimits();
}

// What the server would refuse, said before anything is sent: the file size, the pixels
// (once the preview knows them) and the output's pixels at the chosen scale.
function problemOf(it) {
  const lim = state.limits;
  if (!lim) return "";
  if (it.file.size > lim.max_upload_bytes) {
    return `${it.file.name} is ${formatBytes(it.file.size)}; this server accepts uploads up ` +
      `to ${formatBytes(lim.max_upload_bytes)}.`;
  }
  if (!it.width) return "";
  const px = it.width * it.height;
  if (px > lim.max_pixels) {
    return `${it.file.name} is ${it.width} × ${it.height} = ${px.toLocaleString("en")} ` +
      `pixels; this server takes up to ${lim.max_pixels.toLocaleString("en")}.`;
  }
  const s = Number($("outscale").value);
  const out = Math.round(it.width * s) * Math.round(it.height * s);
  if (out > lim.max_output_pixels) {
    return `${it.file.name} at ×${s} would be ${out.toLocaleString("en")} pixels; this ` +
      `server makes up to ${lim.max_output_pixels.toLocaleString("en")}: choose a smaller ` +
      "output scale.";
  }
  return "";
}

function checkLimits() {
  const problems = state.items.map(problemOf).filter(Boolean);
  if (problems.length) {
    const skip = problems.length < state.items.length ? "\nThe others will be upscaled." : "";
    showError(problems.join("\n") + skip);
  } else if (!state.busy) {
    clearError();
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
      checkLimits();
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
  const sendable = state.items.filter((it) => !problemOf(it));
  $("go").disabled = state.busy || !sendable.length || !state.models.length;
  $("choose").disabled = state.busy;
  $("cancel").hidden = !state.busy;
}

// ------------------------------------------------------------------ the result view
const applyZoom = () => Viewer.applyZoom(state.zoom);

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
    for (const id of ["before", "tag-before", "divider", "slider"]) $(id).hidden = false;
    applyZoom(); // with the range bar shown: "fit" leaves room for it
    Viewer.setDivider(Number($("slider").value));
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
  // the server's sentence already starts with the file name
  const named = message.startsWith(`${item.file.name}: `);
  li.textContent = named ? message : `${item.file.name}: ${message}`;
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
  const form = new FormData();
  form.append("image", item.file, item.file.name);
  form.append("model", model);
  form.append("outscale", opts.outscale);
  form.append("format", opts.format);
  if (opts.denoise !== null && Denoise.value(model) !== null) form.append("denoise", opts.denoise);
  setStatus(`${prefix}Uploading… 0%`, 0);
  Progress.start(prefix, setStatus);
  try {
    let job = await Api.submit(form, (x) => (state.xhr = x),
      (p) => setStatus(`${prefix}Uploading… ${Math.round(p)}%`, p));
    state.xhr = null;
    state.job = job;
    Progress.update(job, performance.now());
    job = await Api.follow(job, (j, at) => Progress.update(j, at), state.signal);
    Progress.stop();
    setStatus(`${prefix}Fetching the result…`, 100);
    const { blob, headers } = await Api.result(job);
    const [w, h] = job.output_size;
    const stem = item.file.name.replace(/\.[^.]*$/, "") || "image";
    return {
      item,
      blob,
      url: URL.createObjectURL(blob),
      name: Api.filenameOf(headers, job.result.filename || `${stem}_x${opts.outscale}.${opts.format}`),
      model,
      outSize: [w, h],
      info: `${model} ×${opts.outscale}: ${job.input_size.join("x")} → ${w}x${h} pixels in ` +
        `${job.result.seconds.toFixed(2)} s`,
      warnings: (job.result.warnings || []).join("; "),
    };
  } finally {
    Progress.stop();
    state.xhr = null;
    state.job = null;
  }
}

async function run() {
  if (!state.items.length || state.busy) return;
  // this run's images (whatever is chosen meanwhile), less those the server would refuse
  const items = state.items.filter((it) => !problemOf(it));
  const opts = { model: $("model").value, outscale: $("outscale").value,
    format: $("format").value, other: $("compare-with").value,
    denoise: Denoise.value($("model").value) };
  if (opts.other === opts.model) opts.other = "bicubic";
  state.busy = true;
  state.cancelled = false;
  state.signal = { cancelled: false };
  updateButtons();
  $("cancel").focus();
  clearError();
  showNotice("");
  // the previous result goes: it must not be taken for this run's
  $("result").hidden = true;
  $("result-info").textContent = "";
  $("warnings").hidden = true;
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
      const named = e.message.startsWith(`${items[i].file.name}: `);
      errors.push(items.length > 1 && !named ? `${items[i].file.name}: ${e.message}` : e.message);
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
  state.signal.cancelled = true;
  Api.cancel(state.job); // frees its place in line at once, or stops it at the next tile
  if (state.xhr) state.xhr.abort();
}

async function tryExample(name) {
  if (state.busy) return setFiles([]);
  const res = await fetch(`static/${name}`);
  if (!res.ok) return showError(`The example ${name} is missing on this server.`);
  const blob = await res.blob();
  setFiles([new File([blob], name, { type: blob.type || "image/png" })]);
}

// ------------------------------------------------------------------ wiring
function init() {
  const drop = $("drop");
  $("choose").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", (e) => {
    setFiles(e.target.files);
    e.target.value = ""; // choosing the same file again still fires change
  });
  // the whole page takes a drop (the result area too), and says what it did with it
  for (const type of ["dragenter", "dragover"]) {
    window.addEventListener(type, (e) => {
      e.preventDefault();
      drop.classList.add("over");
    });
  }
  window.addEventListener("dragleave", (e) => {
    if (!e.relatedTarget) drop.classList.remove("over");
  });
  window.addEventListener("drop", (e) => {
    e.preventDefault(); // never navigate away from the page to the dropped file
    drop.classList.remove("over");
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length) setFiles(files);
    else showNotice("Nothing to take from that drop: drop image files.");
  });
  document.addEventListener("paste", (e) => {
    const files = e.clipboardData ? [...e.clipboardData.files] : [];
    if (!files.length) return;
    e.preventDefault();
    setFiles(files.map((f, i) => (f.name && f.name !== "image.png" ? f
      : new File([f], `pasted-${i + 1}.${(f.type.split("/")[1] || "png")}`, { type: f.type }))));
  });

  if (window.matchMedia("(pointer: coarse)").matches) {
    $("drop-text").textContent = "tap Choose images to pick photos";
  }
  $("model").addEventListener("change", onModelChange);
  $("outscale").addEventListener("change", () => {
    state.outscaleChosen = true;
    checkLimits();
  });
  for (const b of document.querySelectorAll("[data-example]")) {
    b.addEventListener("click", () => tryExample(b.dataset.example));
  }
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && state.busy) cancel();
  });
  window.addEventListener("pagehide", () => Api.cancel(state.job));
  $("go").addEventListener("click", run);
  $("cancel").addEventListener("click", cancel);
  $("download-all").addEventListener("click", downloadAll);
  $("zoom").addEventListener("change", (e) => {
    state.zoom = e.target.value;
    applyZoom();
  });
  window.addEventListener("resize", () => state.zoom === "fit" && applyZoom());
  Viewer.wire();
  loadModels();
}

document.addEventListener("DOMContentLoaded", init);
