// Talking to the srgan API: send one image as a job (with upload progress and abort), follow
// the job (state, place in line, tiles done, ETA) with polls that back off, fetch its result,
// cancel it; the server's error sentences and file names.
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

  const rel = (path) => path.replace(/^\//, ""); // the page may live under a prefix

  // The upload, through XMLHttpRequest (unlike fetch it reports upload progress and aborts).
  // Resolves with the job the server made (202). `onStart(xhr)` gets the request.
  function submit(form, onStart, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      onStart(xhr);
      xhr.open("POST", "v1/upscale");
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(100 * e.loaded / e.total);
      xhr.onload = () => {
        if (xhr.status === 202) {
          try {
            resolve(JSON.parse(xhr.responseText));
          } catch (e) {
            reject(new ApiError(xhr.status, "The server's answer was not a job."));
          }
          return;
        }
        // the server's sentence already says when to try again: nothing is added to it
        reject(new ApiError(xhr.status, detailText(xhr.status, xhr.responseText)));
      };
      xhr.onabort = () => reject(new ApiError(-1, "Cancelled."));
      xhr.onerror = () =>
        reject(new ApiError(0, "The connection to the server failed (is `srgan serve` running?)."));
      xhr.send(form);
    });
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // Follow a job until it ends: `onUpdate(job, atMs)` after each look. Polls soon at first,
  // then less often (the server's poll_after_s, at most 5 s). `signal.cancelled` stops it.
  // Resolves with the finished job; rejects with the job's error.
  async function follow(job, onUpdate, signal) {
    let failures = 0;
    for (;;) {
      if (signal.cancelled) throw new ApiError(-1, "Cancelled.");
      if (job.state === "done") return job;
      if (job.state === "failed") throw new ApiError(job.error.status, job.error.detail);
      if (job.state === "cancelled") throw new ApiError(409, "The job was cancelled.");
      await sleep(1000 * Math.min(5, Math.max(0.5, job.poll_after_s || 1)));
      if (signal.cancelled) throw new ApiError(-1, "Cancelled.");
      let res;
      try {
        res = await fetch(rel(job.url), { cache: "no-store" });
      } catch (e) {
        if (++failures > 5) throw new ApiError(0, "The connection to the server was lost.");
        continue; // a missed look is harmless
      }
      if (!res.ok) throw new ApiError(res.status, detailText(res.status, await res.text()));
      failures = 0;
      job = await res.json();
      onUpdate(job, performance.now());
    }
  }

  async function result(job) {
    const res = await fetch(rel(job.result.url), { cache: "no-store" });
    if (!res.ok) throw new ApiError(res.status, detailText(res.status, await res.text()));
    return { blob: await res.blob(), headers: res.headers };
  }

  // Withdraw a job; `keepalive` lets it go out while the tab closes.
  function cancel(job) {
    if (!job || !job.url) return;
    fetch(rel(job.url), { method: "DELETE", keepalive: true }).catch(() => {});
  }

  function filenameOf(headers, fallback) {
    const cd = headers.get("Content-Disposition") || "";
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

  return { ApiError, detailText, submit, follow, result, cancel, filenameOf };
})();
