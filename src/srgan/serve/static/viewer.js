// The result view: both sides drawn at CSS pixel size ("100%" = one image pixel per CSS
// pixel, whatever the screen's density), "fit" shrinking a large result to the panel; the
// divider between them with a grab handle, moved by mouse, touch or the range bar under the
// image (which is as wide as the image, so its thumb sits under the line).
"use strict";

const Viewer = (() => {
  const $ = (id) => document.getElementById(id);

  function setDivider(percent) {
    const p = Math.max(0, Math.min(100, percent));
    $("before").style.clipPath = `inset(0 ${100 - p}% 0 0)`;
    $("divider").style.left = `${p}%`;
    $("slider").value = String(p);
  }

  function applyZoom(zoom) {
    const after = $("after");
    const w = after.naturalWidth;
    const h = after.naturalHeight;
    if (!w || !h) return;
    let factor; // CSS pixels per image pixel
    if (zoom === "fit") {
      // shrink to fit, never enlarge: a small result is shown at its own size, not blown up
      const maxW = $("viewport").clientWidth || w;
      // the viewport (at most 75vh, style.css) also holds the labels above the image and the
      // range bar under it: the image gets what is left, so "fit" never needs a scroll bar
      const extra = $("stage").offsetHeight - $("compare").offsetHeight;
      const maxH = Math.max(200, window.innerHeight * 0.75 - extra - 4);
      factor = Math.min(1, maxW / w, maxH / h);
    } else {
      factor = Number(zoom);
    }
    for (const img of [after, $("before")]) {
      img.style.width = `${Math.round(w * factor)}px`;
      img.style.height = `${Math.round(h * factor)}px`;
    }
    // zoomed past 100%, pixels stay sharp squares, so neither side gets extra smoothing
    $("compare").classList.toggle("pixelated", factor > 1.001);
  }

  // Mouse: the divider follows a press at once. Touch: only a swipe that is clearly sideways
  // moves it; one that starts vertical is left to the browser, which scrolls the page.
  function wire() {
    const compare = $("compare");
    let drag = null; // {id, x, y, decided}
    const follow = (e) => {
      const r = compare.getBoundingClientRect();
      if (r.width) setDivider((100 * (e.clientX - r.left)) / r.width);
    };
    const release = () => (drag = null);
    compare.addEventListener("dragstart", (e) => e.preventDefault());
    compare.addEventListener("pointerdown", (e) => {
      if ($("before").hidden || (e.pointerType === "mouse" && e.button !== 0)) return;
      drag = { id: e.pointerId, x: e.clientX, y: e.clientY, decided: e.pointerType !== "touch" };
      if (drag.decided) {
        e.preventDefault();
        compare.setPointerCapture(e.pointerId);
        follow(e);
      }
    });
    compare.addEventListener("pointermove", (e) => {
      if (!drag || drag.id !== e.pointerId) return;
      if (e.pointerType === "mouse" && !(e.buttons & 1)) return release(); // let go outside
      if (!drag.decided) {
        const dx = Math.abs(e.clientX - drag.x);
        const dy = Math.abs(e.clientY - drag.y);
        if (dx < 6 && dy < 6) return;
        if (dy >= dx) return release(); // a scroll: not ours
        drag.decided = true; // (a touch pointer is captured already, implicitly)
      }
      follow(e);
    });
    for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
      compare.addEventListener(type, release);
    }
    $("slider").addEventListener("input", (e) => setDivider(Number(e.target.value)));
  }

  return { setDivider, applyZoom, wire };
})();
