// Predis dashboard: renders /api/overview and /api/model, then follows /api/stream (server-
// sent events) so the page updates without a reload. No data is ever made up here: a null
// from the server is shown as "no data" and as a gap in a chart.
"use strict";

(function () {
  const body = document.body;
  const page = body.dataset.page;
  const customer = body.dataset.customer;
  const refreshMs = Number(body.dataset.refreshMs) || 5000;
  const q = "customer=" + encodeURIComponent(customer);
  window.predisDashboard = { updates: 0, loadedAt: Date.now() };

  function text(el, s) { if (el) el.textContent = s; }
  function pct(x) { return x === null || x === undefined ? "no data" : (x * 100).toFixed(2) + " %"; }
  function num(x, digits) {
    if (x === null || x === undefined) return "no data";
    return Number(x).toLocaleString("en-US", { maximumFractionDigits: digits === undefined ? 2 : digits });
  }
  function money(x, cur) {
    if (x === null || x === undefined) return "no data";
    // Small amounts (the cost of one fetch) keep three significant digits.
    const digits = Math.abs(x) > 0 && Math.abs(x) < 1 ? Math.min(12, 2 - Math.floor(Math.log10(Math.abs(x)))) : 2;
    return num(x, digits) + " " + cur;
  }
  function ms(x) { return x === null || x === undefined ? "no data" : (x * 1000).toFixed(3) + " ms"; }
  function days(x) {
    if (x === null || x === undefined) return "not at this rate";
    if (x > 0 && x < 1) return num(x * 24, x * 24 < 1 ? 3 : 1) + " hours";
    return num(x, 1) + " days";
  }

  function setStatus(d) {
    const el = document.getElementById("status");
    if (!el) return;
    if (d.no_data_message) {
      el.textContent = d.no_data_message;
      el.className = "status stale";
    } else {
      el.textContent = "live · updated " + d.now + (d.last_data ? " · last sample " + d.last_data : "");
      el.className = "status live";
    }
  }

  const CARD_FMT = {
    hit_ratio: pct, baseline_hit_ratio: pct,
    ops_per_s: function (x) { return x === null ? "no data" : num(x, 0) + " /s"; },
    fetches_avoided: function (x) { return num(x, 0); },
    latency_saved_per_request_s: ms,
    net_saved_per_day: null, roi_percent: function (x) { return x === null ? "no data" : num(x, 1) + " %"; },
    gpu_utilization: function (x) { return x === null ? "no data" : num(x, 1) + " %"; },
    gpu_memory_gib: function (x) { return x === null ? "no data" : num(x, 2) + " GiB"; },
  };

  const ROI_ROWS = [
    ["requests", "Requests in the window", function (x) { return num(x, 0); }],
    ["hit_ratio", "Hit rate with Predis", pct],
    ["baseline_hit_ratio", "Baseline hit rate", pct],
    ["hit_ratio_gain", "Hit-rate gain over the baseline", pct],
    ["fetches_avoided", "Backend fetches avoided", function (x) { return num(x, 0); }],
    ["fetches_avoided_vs_baseline", "Fetches avoided beyond the baseline", function (x) { return num(x, 0); }],
    ["latency_saved_per_request_s", "Latency saved per request", ms],
    ["latency_saved_total_s", "Latency saved in total", function (x) { return x === null ? "no data" : num(x, 1) + " s"; }],
    ["cost_per_fetch", "Cost of one backend fetch", "money"],
    ["gross_saved_per_day", "Gross saved per day", "money"],
    ["cost_per_day", "Cost of Predis and its GPU per day", "money"],
    ["net_saved_per_day", "Net saved per day", "money"],
    ["net_saved_per_month", "Net saved per month", "money"],
    ["net_saved_per_year", "Net saved per year", "money"],
    ["roi_percent", "ROI", function (x) { return x === null ? "no data" : num(x, 1) + " %"; }],
    ["payback_days", "Payback period", days],
  ];

  function renderOverview(d) {
    setStatus(d);
    const cur = d.inputs.currency;
    Object.keys(CARD_FMT).forEach(function (k) {
      const el = document.getElementById("card-" + k);
      if (!el) return;
      if (d.stale) { text(el, d.no_data_message); el.classList.add("nodata"); return; }
      const v = d.cards[k] === undefined ? null : d.cards[k];
      const f = CARD_FMT[k] || function (x) { return money(x, cur); };
      text(el, f(v));
      el.classList.toggle("nodata", v === null);
    });
    document.querySelectorAll("[data-formula]").forEach(function (el) {
      text(el, "= " + (d.formulas[el.dataset.formula] || ""));
    });
    text(document.getElementById("roi-window"),
      "(" + num(d.measured_window_s / 60, 1) + " min of data in the last " + num(d.window_s / 60, 0) + " min" +
      (d.stale && d.last_data ? "; no data since " + d.last_data + ": figures as of then" : "") + ")");
    text(document.getElementById("baseline-note"), "Baseline: " + (d.roi ? d.roi.baseline_source : "no data"));
    const tbody = document.querySelector("#roi-table tbody");
    if (tbody) {
      tbody.replaceChildren();
      ROI_ROWS.forEach(function (row) {
        const tr = document.createElement("tr");
        tr.dataset.output = row[0];
        const v = d.roi ? d.roi[row[0]] : null;
        const fmt = row[2] === "money" ? function (x) { return money(x, cur); } : row[2];
        [row[1], d.roi ? fmt(v === undefined ? null : v) : (d.no_data_message || "no data"), d.formulas[row[0]] || ""]
          .forEach(function (s, i) {
            const td = document.createElement("td");
            td.textContent = s;
            if (i === 2) td.className = "formula";
            tr.appendChild(td);
          });
        tbody.appendChild(tr);
      });
    }
    const inputs = document.querySelector("#inputs-table tbody");
    if (inputs) {
      inputs.replaceChildren();
      Object.keys(d.inputs).forEach(function (k) {
        const tr = document.createElement("tr");
        const a = document.createElement("th"); a.textContent = k;
        const b = document.createElement("td"); b.textContent = String(d.inputs[k]);
        tr.append(a, b); inputs.appendChild(tr);
      });
    }
    Object.keys(d.charts).forEach(function (k) { drawChart("chart-" + k, d.charts[k], d.now); });
  }

  function drawChart(id, traces, now) {
    const el = document.getElementById(id);
    if (!el || !window.Plotly) return;
    const data = traces.map(function (t) {
      return { type: "scatter", mode: "lines+markers", name: t.name, x: t.x, y: t.y,
               connectgaps: false, marker: { size: 4 } };
    });
    const empty = traces.every(function (t) { return t.y.every(function (y) { return y === null; }); });
    // The time axis runs to now, so data that stopped arriving shows as empty space.
    const xs = [].concat.apply([], traces.map(function (t) { return t.x; })).filter(Boolean).sort();
    const layout = {
      title: { text: el.dataset.title, font: { size: 14 } },
      margin: { l: 50, r: 10, t: 36, b: 36 }, height: 260, showlegend: traces.length > 1,
      legend: { orientation: "h" },
      xaxis: empty ? { visible: false } : { type: "date", range: [xs[0], now] },
      yaxis: empty ? { visible: false } : { rangemode: "tozero" },
      annotations: empty ? [{ text: "no data", showarrow: false, font: { size: 16, color: "#b3261e" },
                              xref: "paper", yref: "paper", x: 0.5, y: 0.5 }] : [],
    };
    window.Plotly.react(el, data, layout, { displaylogo: false, responsive: true });
    el.dataset.points = String(traces.reduce(function (n, t) { return n + t.x.length; }, 0));
  }

  function renderModel(d) {
    const status = document.getElementById("status");
    text(status, "live · updated " + d.now);
    if (status) status.className = "status live";
    const vt = document.querySelector("#versions-table tbody");
    vt.replaceChildren();
    text(document.getElementById("versions-source"), d.versions_source ? "(from the " + d.versions_source + ")" : "");
    if (!d.versions) {
      const tr = document.createElement("tr"); const td = document.createElement("td");
      td.textContent = "no data: no model registry and no predis_model_version_info for this customer";
      tr.appendChild(td); vt.appendChild(tr);
    } else {
      ["champion", "challenger", "previous"].forEach(function (a) {
        const tr = document.createElement("tr");
        const th = document.createElement("th"); th.textContent = a;
        const td = document.createElement("td"); td.id = "version-" + a;
        td.textContent = d.versions[a] === null || d.versions[a] === undefined ? "none" : "v" + d.versions[a];
        tr.append(th, td); vt.appendChild(tr);
      });
    }
    const ab = document.getElementById("abtests");
    ab.replaceChildren();
    if (!d.abtests.length) { const p = document.createElement("p"); p.textContent = "no A/B test configured"; ab.appendChild(p); }
    d.abtests.forEach(function (t) {
      const box = document.createElement("div"); box.className = "abtest";
      const h = document.createElement("h3"); h.textContent = t.test + ": " + (t.state || "no data"); box.appendChild(h);
      const p = document.createElement("p");
      p.textContent = t.p_value === null ? "no data" :
        "always-valid p = " + t.p_value.toFixed(4) + " · confidence " + (t.confidence * 100).toFixed(1) + " %";
      box.appendChild(p);
      const table = document.createElement("table");
      ["champion", "challenger"].forEach(function (arm) {
        const a = t.arms[arm]; const tr = document.createElement("tr");
        const th = document.createElement("th"); th.textContent = arm + (arm === "champion" ? " (control)" : "");
        const td = document.createElement("td");
        td.textContent = !a ? "no data" : pct(a.hit_ratio) + " of " + num(a.requests, 0) + " requests" +
          (a.ci95 ? " (95% CI " + pct(a.ci95[0]) + " – " + pct(a.ci95[1]) + ")" : "");
        tr.append(th, td); table.appendChild(tr);
      });
      box.appendChild(table); ab.appendChild(box);
    });
    const list = document.getElementById("events");
    list.replaceChildren();
    d.events.forEach(function (e) {
      const li = document.createElement("li"); li.className = "event " + e.kind;
      li.textContent = e.time + " · " + e.kind + " · " + e.text; list.appendChild(li);
    });
    if (window.Plotly) {
      const kinds = Array.from(new Set(d.events.map(function (e) { return e.kind; })));
      const data = kinds.map(function (k) {
        const es = d.events.filter(function (e) { return e.kind === k; });
        return { type: "scatter", mode: "markers", name: k, x: es.map(function (e) { return e.time; }),
                 y: es.map(function () { return k; }), text: es.map(function (e) { return e.text; }),
                 marker: { size: 12 } };
      });
      window.Plotly.react("chart-timeline", data, {
        title: { text: "Events" + (d.events.length ? "" : " (none in the window)"), font: { size: 14 } },
        height: 240, margin: { l: 110, r: 10, t: 36, b: 36 }, xaxis: { type: "date" },
      }, { displaylogo: false, responsive: true });
    }
  }

  const render = page === "model" ? renderModel : renderOverview;

  function applyUpdate(d) {
    render(d);
    window.predisDashboard.updates += 1;
    body.dataset.updates = String(window.predisDashboard.updates);
  }

  // Polling with exponential backoff, used while the event stream is down.
  let backoff = refreshMs;
  function poll() {
    fetch("/api/" + page + "?" + q, { credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/login"); return null; }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (d) { if (d) { applyUpdate(d); backoff = refreshMs; } })
      .catch(function () { backoff = Math.min(backoff * 2, 60000); })
      .finally(function () { if (!streaming) setTimeout(poll, backoff); });
  }

  let streaming = false;
  function stream() {
    if (!window.EventSource) { poll(); return; }
    const es = new EventSource("/api/stream?page=" + page + "&" + q);
    es.addEventListener(page, function (ev) { streaming = true; applyUpdate(JSON.parse(ev.data)); });
    es.addEventListener("logout", function () { es.close(); window.location.assign("/login"); });
    es.onerror = function () {
      es.close();
      if (streaming) { streaming = false; setTimeout(poll, backoff); }
      setTimeout(stream, Math.min(backoff * 2, 60000));
    };
  }

  function start() { poll(); stream(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
