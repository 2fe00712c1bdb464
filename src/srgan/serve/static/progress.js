// What the page says while a job waits or runs: its place in line, the tiles done, the time
// left. Between two polls the bar and the countdown move on by themselves from the last
// answer (never past the next tile), so the bar moves every second without asking the
// server more often.
"use strict";

const Progress = (() => {
  let last = null; // {job, at}
  let prefix = "";
  let timer = null;
  let show = () => {};

  const ordinal = (n) => {
    const s = ["th", "st", "nd", "rd"];
    const v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  };

  function seconds(s) {
    if (s === null || s === undefined) return "";
    if (s < 1) return "under a second";
    if (s < 90) return `${Math.round(s)} s`;
    const m = Math.floor(s / 60);
    return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, "0")} s`;
  }

  // text and bar value (0..100, or null for "no idea yet") for the job `dt` s after `last`
  function view(job, dt) {
    const eta = job.eta_s === null ? null : Math.max(0, job.eta_s - dt);
    const left = eta === null ? "no estimate yet (the first image of this model is timing it)"
      : `about ${seconds(eta)} left`;
    if (job.state === "waiting") {
      const ahead = job.ahead === 1 ? "1 job" : `${job.ahead} jobs`;
      const wait = eta === null ? "no estimate yet" : `about ${seconds(eta)}`;
      return [`Waiting in line: ${ordinal(job.position)} (${ahead} ahead of yours), ${wait}…`,
        null];
    }
    if (job.stage === "decoding") return ["Reading the image on the server…", null];
    if (job.stage === "encoding") {
      return [`Writing the ${job.format.toUpperCase()} file… ${left}`, 99];
    }
    const total = job.tiles_total || 1;
    let frac = job.tiles_done / total;
    if (eta !== null && job.eta_s > 0) {
      // time-based between polls, kept within the tile being worked on
      const elapsed = job.elapsed_s + dt;
      const guess = elapsed / (elapsed + eta);
      frac = Math.max(frac, Math.min(guess, (job.tiles_done + 1) / total - 0.001, 0.99));
    }
    const tiles = total > 1 ? `tile ${Math.min(job.tiles_done + 1, total)} of ${total}, ` : "";
    return [`Upscaling: ${tiles}${left}`, 100 * frac];
  }

  function render() {
    if (!last) return;
    const [text, value] = view(last.job, (performance.now() - last.at) / 1000);
    show(prefix + text, value);
  }

  return {
    // `onShow(text, percent)` draws; called on every update and once a second between
    start(textPrefix, onShow) {
      prefix = textPrefix;
      show = onShow;
      last = null;
      clearInterval(timer);
      timer = setInterval(render, 1000);
    },
    update(job, at) {
      last = { job, at };
      render();
    },
    stop() {
      clearInterval(timer);
      timer = null;
      last = null;
    },
    view,
  };
})();
