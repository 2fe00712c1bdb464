// The "Clean up noise and JPEG" slider: shown only where the server offers denoise (both
// models of its pair installed) and the chosen model is one of the pair. It starts at the
// chosen model's own end (0 for the clean-photo model, 1 for the real-photo one) until the
// person moves it, so an untouched slider sends what the model alone would give.
"use strict";

const Denoise = (() => {
  let offer = null; // /v1/models' `denoise`
  let moved = false;
  const $ = (id) => document.getElementById(id);

  const accepts = (model) => !!offer && offer.available && offer.models.includes(model);

  function label() {
    const v = Number($("denoise").value);
    $("denoise-value").textContent = v === 0 ? "off" : `${Math.round(100 * v)} %`;
  }

  return {
    setup(info) {
      offer = info.denoise || null;
      if (offer) $("denoise").step = String(offer.step || 0.05);
      $("denoise").addEventListener("input", () => {
        moved = true;
        label();
      });
    },
    // the model changed: show or hide the slider, and move it to the model's end if untouched
    show(model) {
      const on = accepts(model);
      $("denoise-label").hidden = !on;
      if (on && !moved) {
        const end = offer.ends.indexOf(model);
        $("denoise").value = String(end === 1 ? 1 : 0);
      }
      label();
    },
    // the strength to send with a job for `model`, or null for none
    value(model) {
      return accepts(model) && !$("denoise-label").hidden ? $("denoise").value : null;
    },
  };
})();
