// tunewright studio: the job page's live curves and the compare page's overlay (uPlot).
// The job page starts from the points rendered with it (up to the log seq in data-after) and
// continues over the API's event stream from exactly there; the browser's EventSource resumes
// with Last-Event-ID after a dropped connection. Points are keyed by step, so nothing is drawn
// twice and nothing between the page and the stream is missed.
(function () {
  "use strict";
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563", "#65a30d", "#9333ea", "#ea580c", "#0f766e"];
  var TERMINAL = ["success", "failed", "cancelled"];
  // Past this many live points per curve the page asks the server for a thinned set again.
  var MAX_LIVE_POINTS = 6000;

  function width(el) { return Math.max(240, el.clientWidth || 600); }

  function toMap(curve) {
    var m = new Map();
    for (var i = 0; i < curve[0].length; i++) m.set(curve[0][i], curve[1][i]);
    return m;
  }

  function sortedKeys(maps) {
    var all = new Set();
    maps.forEach(function (m) { m.forEach(function (_, k) { all.add(k); }); });
    return Array.from(all).sort(function (a, b) { return a - b; });
  }

  function aligned(maps) {
    var xs = sortedKeys(maps);
    var data = [xs];
    maps.forEach(function (m) {
      data.push(xs.map(function (x) { return m.has(x) ? m.get(x) : null; }));
    });
    return data;
  }

  function chart(el, labels, maps, sci) {
    var series = [{ label: "step" }];
    labels.forEach(function (l, i) {
      series.push({ label: l, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: false } });
    });
    var opts = {
      width: width(el), height: 220, series: series,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, sci ? { size: 60, values: function (u, vals) { return vals.map(function (v) { return v.toExponential(1); }); } } : {}],
      legend: { live: true },
    };
    return new uPlot(opts, aligned(maps), el);
  }

  function jobPage(root) {
    var charts = document.getElementById("charts");
    var jobId = root.dataset.jobId;
    var curves = charts ? JSON.parse(charts.dataset.curves) : { loss: [[], []], eval_loss: [[], []], learning_rate: [[], []], grad_norm: [[], []] };
    var state = {
      loss: toMap(curves.loss), eval: toMap(curves.eval_loss),
      lr: toMap(curves.learning_rate), grad: toMap(curves.grad_norm),
      after: Number(root.dataset.after), repeated: 0,
    };
    window.tunewrightCurves = state;
    var plots = charts ? {
      loss: chart(document.getElementById("chart-loss"), ["training loss", "eval loss"], [state.loss, state.eval]),
      lr: chart(document.getElementById("chart-lr"), ["learning rate"], [state.lr], true),
      grad: chart(document.getElementById("chart-grad"), ["gradient norm"], [state.grad]),
    } : {};
    var pending = false;
    function redraw() {
      if (pending || !charts) return;
      pending = true;
      requestAnimationFrame(function () {
        pending = false;
        plots.loss.setData(aligned([state.loss, state.eval]));
        plots.lr.setData(aligned([state.lr]));
        plots.grad.setData(aligned([state.grad]));
        charts.dataset.points = String(state.loss.size);
      });
    }
    if (charts) charts.dataset.points = String(state.loss.size);
    window.addEventListener("resize", function () {
      Object.keys(plots).forEach(function (k) {
        var el = plots[k].root.parentElement;
        plots[k].setSize({ width: width(el), height: 220 });
      });
    });

    var live = document.getElementById("live-state") || document.createElement("span");
    var refresh = null;
    function changed() {
      clearTimeout(refresh);
      refresh = setTimeout(function () { htmx.trigger(document.body, "job-changed"); }, 250);
    }
    function setText(name, text) {
      var el = document.querySelector("[data-live=" + name + "]");
      if (el) el.textContent = text;
    }
    function progress(d, seconds) {
      if (d.loss != null && state.loss.has(d.step)) state.repeated += 1;
      if (d.loss != null) state.loss.set(d.step, d.loss);
      if (d.learning_rate != null) state.lr.set(d.step, d.learning_rate);
      if (d.grad_norm != null) state.grad.set(d.step, d.grad_norm);
      setText("step", d.step.toLocaleString() + " / " + d.total_steps.toLocaleString());
      if (d.loss != null) setText("loss", d.loss.toFixed(4));
      if (d.learning_rate != null) setText("lr", d.learning_rate.toExponential(1));
      if (d.tokens_per_sec != null) setText("tokens", Math.round(d.tokens_per_sec).toLocaleString() + " tok/s");
      if (d.memory_bytes != null) setText("memory", (d.memory_bytes / 1048576).toFixed(1) + " MiB");
      var bar = document.getElementById("step-bar");
      if (bar) { bar.max = d.total_steps; bar.value = d.step; }
      if (state.lastStep != null && d.step > state.lastStep.step) {
        var perStep = (seconds - state.lastStep.at) / (d.step - state.lastStep.step);
        var left = (d.total_steps - d.step) * perStep;
        setText("eta", left < 60 ? Math.round(left) + " s" : Math.floor(left / 60) + " min " + String(Math.round(left % 60)).padStart(2, "0") + " s");
      }
      state.lastStep = { step: d.step, at: seconds };
    }
    function reload() {
      fetch("/jobs/" + jobId + "/curves").then(function (r) { return r.json(); }).then(function (r) {
        var c = r.curves;
        state.loss = toMap(c.loss); state.eval = toMap(c.eval_loss);
        state.lr = toMap(c.learning_rate); state.grad = toMap(c.grad_norm);
        state.after = Math.max(state.after, r.through_seq);
        redraw();
      });
    }
    function open() {
      var source = new EventSource("/api/v1/events/stream?stream=" + encodeURIComponent(jobId) + "&after=" + state.after);
      source.onopen = function () { live.textContent = "live"; };
      source.onerror = function () { live.textContent = "reconnecting…"; };
      source.onmessage = function (m) {
        var e = JSON.parse(m.data);
        if (e.seq <= state.after) return;
        state.after = e.seq;
        if (e.type === "job_progress") {
          progress(e.data, Date.parse(e.ts) / 1000);
          redraw();
          if (state.loss.size > MAX_LIVE_POINTS) reload();
          return;
        }
        if (e.type === "job_note" && e.data.topic === "evaluation" && e.data.data) {
          state.eval.set(e.data.data.step, e.data.data.eval_loss);
          redraw();
        }
        changed();
        if (e.type === "job_succeeded" || e.type === "job_failed" || e.type === "job_cancelled") {
          source.close();
          live.textContent = "finished";
        }
      };
    }
    if (TERMINAL.indexOf(root.dataset.status) >= 0) {
      live.textContent = "finished";
    } else {
      open();
    }
  }

  function comparePage(el) {
    var runs = JSON.parse(el.dataset.runs);
    var maps = runs.map(function (r) { return toMap(r[1]); });
    var plot = chart(el, runs.map(function (r, i) { return "run " + (i + 1); }), maps);
    window.addEventListener("resize", function () {
      plot.setSize({ width: width(el), height: 220 });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var job = document.getElementById("job");
    if (job) jobPage(job);
    var compare = document.getElementById("compare-chart");
    if (compare) comparePage(compare);
  });
})();
