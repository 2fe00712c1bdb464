// Talking to the srgan API: one upscale request (with upload progress and abort), the queue
// position of a waiting job, and the server's error sentences and file names.
"use strict";

const Api = (() => {
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // The API answers errors as JSON {"detail": "a sentence"}; anything else gets a fallback.
  function detailText(status, body) {
    try {
      const detail = JSON.parse(body).detail;
      if (typeof detail === "string" && detail) return detail;
    } catch (e) {
      // not JSON
    }
    return `The server answered ${status} without an explanation.`;
  }

  // One POST through XMLHttpRequest, which (unlike fetch) reports upload progress and aborts.
  // `onStart(xhr)` gets the request, so the caller can abort it.
  function postUpscale(form, onStart, onProgress, onUploaded) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      onStart(xhr);
      xhr.open("POST", "v1/upscale");
      xhr.responseType = "blob";
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(100 * e.loaded / e.total);
      xhr.upload.onload = onUploaded;
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
        // the server's sentence already says when to try again: nothing is added to it
        reject(new ApiError(xhr.status, detailText(xhr.status, body)));
      };
      xhr.onabort = () => reject(new ApiError(-1, "Cancelled."));
      xhr.onerror = () =>
        reject(new ApiError(0, "The connection to the server failed (is `srgan serve` running?)."));
      xhr.send(form);
    });
  }

  // While a job waits or runs, ask the server where it stands; `onText(sentence)` shows it.
  // Returns a function that stops asking.
  function watchQueue(ticket, onText) {
    let stopped = false;
    const tick = async () => {
      if (stopped) return;
      try {
        const q = await (await fetch(`v1/queue/${ticket}`)).json();
        if (stopped) return;
        const eta = q.eta_s ? `, about ${q.eta_s} s` : "";
        if (q.state === "waiting") {
          const jobs = q.ahead === 1 ? "1 job" : `${q.ahead} jobs`;
          onText(`Waiting in the queue: ${jobs} ahead of yours${eta}…`);
        } else if (q.state === "running") {
          onText(`Processing on the server${eta}…`);
        }
      } catch (e) {
        // a missed update is harmless
      }
      if (!stopped) setTimeout(tick, 500);
    };
    setTimeout(tick, 200);
    return () => (stopped = true);
  }

  function filenameOf(xhr, fallback) {
    const cd = xhr.getResponseHeader("Content-Disposition") || "";
    const star = /filename\*=UTF-8''([^;]+)/i.exec(cd);
    if (star) {
      try {
        return decodeURIComponent(star[1]);
      } catch (e) {
        // fall through to the ASCII name
      }
    }
    const m = /filename="([^"]+)"/.exec(cd);
    return m ? m[1] : fallback;
  }

  return { ApiError, detailText, postUpscale, watchQueue, filenameOf };
})();
