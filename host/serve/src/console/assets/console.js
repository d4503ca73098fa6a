// autoclose console: counts down to each pending timer's due time. The server gives
// its own clock (data-now) with the page, so a browser whose clock is off still
// counts right.
"use strict";
(function () {
  const loaded = Date.now();
  function span(ms) {
    if (ms <= 0) return "due now";
    let s = Math.round(ms / 1000);
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    return (h ? h + "h" : "") + (m ? m + "m" : "") + (s || (!h && !m) ? s + "s" : "");
  }
  function tick() {
    for (const el of document.querySelectorAll(".countdown")) {
      const due = Number(el.dataset.due), now = Number(el.dataset.now);
      el.textContent = span(due - (now + (Date.now() - loaded)));
      el.dataset.ticking = "yes";
    }
  }
  tick();
  setInterval(tick, 1000);
})();
