// The operators' dashboard: polls the four services' read APIs from the browser and draws what they answer.
// No framework and no external asset (the ministry network may be closed); text is set with textContent only,
// so nothing a service returns is ever interpreted as markup.
"use strict";

(() => {
  const TOKEN_KEY = "iomki.dashboard.token";
  const STATES = ["SUBMITTED", "ISSUED", "FROZEN", "REVOKED", "REJECTED"];
  const CLOSED = ["plant_closed", "room_closed"];
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  // The token arrives in the fragment (never sent to a server, so never logged) and is then removed from the
  // address bar; sessionStorage keeps it for reloads of this tab only.
  function takeToken() {
    const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function el(tag, attrs, ...children) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const percent = (rate) => `${Math.round(rate * 100)} %`;
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
  const short = (id) => id.slice(0, 8);  // enough to tell plants apart on screen; the full id is its tooltip
  const title = (state) => state.charAt(0) + state.slice(1).toLowerCase();

  async function get(base, path, token) {
    const answer = await fetch(base + path, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (!answer.ok) {
      let detail = answer.statusText;
      try { detail = (await answer.json()).detail || detail; } catch (_) { /* not problem+json */ }
      throw new Error(`${base}${path.split("?")[0]}: ${answer.status} ${detail}`);
    }
    return answer.json();
  }

  function show(id, ...nodes) {
    $(id).replaceChildren(...nodes);
  }

  function failed(id, error) {
    show(id, el("p", { class: "error", "data-test": `${id}-error` }, error.message));
  }

  // -- permits ------------------------------------------------------------------------------------------

  function drawPermits(summary) {
    show("permit-totals", ...STATES.map((state) => el("div", { class: "total", "data-test": `total-${state}` },
      el("b", {}, summary.by_status[state] ?? 0), el("span", {}, title(state)))));
    const head = el("tr", {}, el("th", {}, "Province"), STATES.map((s) => el("th", { class: "n" }, title(s))),
      el("th", { class: "n" }, "Total"));
    const rows = summary.by_province.map((p) => el("tr", { "data-test": `province-${p.province_code}` },
      el("th", {}, `${p.province_name || "?"} (${p.province_code})`),
      STATES.map((s) => el("td", { class: "n", "data-test": `permits-${p.province_code}-${s}` }, p.by_status[s] ?? 0)),
      el("td", { class: "n", "data-test": `permits-${p.province_code}-total` }, p.total)));
    show("permit-provinces", rows.length ? el("table", {}, el("thead", {}, head), el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No permits yet."));
  }

  // -- sanctions: freezes and revocations by ground, then by province, month and ground -----------------

  const GROUNDS = {
    missed_reports: "Missed reports (laporan terlewat)",
    false_declaration: "False declaration (pernyataan tidak benar)",
    inspection_finding: "Inspection finding (temuan pemeriksaan)",
    closure_not_observed: "Closure not observed (penutupan dilanggar)",
    company_request: "Company's request (permintaan perusahaan)",
    capacity_breaches: "Repeated capacity breaches (pelanggaran kapasitas berulang)",
    other: "Other (lainnya)",
  };

  function drawSanctions(sanctions, names) {
    const totals = Object.keys(GROUNDS).map((g) => el("tr", { "data-test": `ground-${g}` },
      el("th", {}, GROUNDS[g]),
      el("td", { class: "n", "data-test": `ground-${g}-freeze` }, sanctions.by_ground.freeze[g] ?? 0),
      el("td", { class: "n", "data-test": `ground-${g}-revoke` }, sanctions.by_ground.revoke[g] ?? 0)));
    const head = el("tr", {}, el("th", {}, "Ground"), el("th", { class: "n" }, "Frozen"),
      el("th", { class: "n" }, "Revoked"));
    const rows = sanctions.rows.slice(-60).reverse().map((r) => el("tr", {},
      el("td", {}, `${names[r.province_code] || "?"} (${r.province_code})`), el("td", {}, r.month),
      el("td", {}, r.action === "freeze" ? "Frozen" : "Revoked"), el("td", {}, GROUNDS[r.ground] || r.ground),
      el("td", { class: "n" }, r.sanctions)));
    show("sanction-grounds", el("table", {}, el("thead", {}, head), el("tbody", {}, totals)));
    show("sanction-months", rows.length
      ? el("table", {}, el("thead", {}, el("tr", {}, ["Province", "Month", "Sanction", "Ground", "Count"].map(
        (h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "muted" }, "No freezes or revocations yet."));
  }

  // -- compliance: one horizontal bar per province (reporting rate), on-time rate as a thinner bar inside --

  function drawCompliance(rows) {
    if (!rows.length) {
      show("compliance-chart", el("p", { class: "muted" }, "No provinces with permits yet."));
      return;
    }
    const label = 150, track = 240, row = 34, width = label + track + 250, height = rows.length * row + 8;
    // Scales with its panel: the viewBox keeps the drawing's proportions at any width.
    const chart = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img",
      "aria-label": "Reporting rate by province", "data-test": "compliance-chart" });
    rows.forEach(({ province, compliance: c }, i) => {
      const y = i * row + 4;
      const rate = c.reporting_rate ?? 0;
      const text = c.periods_due
        ? `${percent(c.reporting_rate)} reported (${c.reported}/${c.periods_due}) · ${percent(c.on_time_rate)} on time`
        : "no report deadline yet";
      chart.append(
        el("svg:text", { x: 0, y: y + 17 }, `${province.province_name || "?"} (${province.province_code})`),
        el("svg:rect", { x: label, y, width: track, height: 24, rx: 3, fill: "#e8ecf1" }),
        el("svg:rect", { x: label, y, width: Math.round(rate * track), height: 24, rx: 3, fill: "#0b6e4f",
          "data-test": `compliance-bar-${province.province_code}`, "data-rate": c.reporting_rate ?? "" },
          el("svg:title", {}, text)),
        el("svg:rect", { x: label, y: y + 18, width: Math.round((c.on_time_rate ?? 0) * track), height: 6,
          fill: "#68d391" }),
        el("svg:text", { x: label + track + 8, y: y + 17, "data-test": `compliance-label-${province.province_code}` },
          text));
    });
    show("compliance-chart", chart);
  }

  // -- PPKM: each province's level, plants by sector class, breaches this week and first doses, then its regencies --

  const CLASSES = [["critical", "Kritikal (critical)"], ["essential", "Esensial (essential)"],
    ["non_essential", "Non-esensial (non-essential)"], ["unknown", "Belum diketahui (unknown)"],
    ["export_oriented", "Orientasi ekspor (export-oriented)"]];

  const levelText = (level) => (level === null || level === undefined ? "—"
    : level === "emergency" ? "Darurat (emergency)" : `Level ${level}`);

  function ppkmRow(code, label, ppkm, province) {
    return el("tr", { "data-test": `ppkm-${code}`, class: province ? "province" : "regency" },
      el(province ? "th" : "td", {}, label),
      el("td", { "data-test": `ppkm-${code}-level` },
        el("span", { class: `badge level-${ppkm.level ?? "none"}` }, levelText(ppkm.level))),
      CLASSES.map(([key]) => el("td", { class: "n", "data-test": `ppkm-${code}-${key}` }, ppkm.plants[key])),
      el("td", { class: "n", "data-test": `ppkm-${code}-breaches` }, ppkm.breaches_this_week),
      el("td", { class: "n", "data-test": `ppkm-${code}-dose1`, title: `${ppkm.dose1_plants} laporan (reports)` },
        ppkm.dose1_share === null ? "—" : percent(ppkm.dose1_share)));
  }

  function drawPpkm(rows) {
    if (!rows.length) {
      show("ppkm-table", el("p", { class: "muted" }, "Belum ada izin (no permits yet)."));
      return;
    }
    const head = el("tr", {}, el("th", {}, "Wilayah (region)"), el("th", {}, "Level PPKM (level)"),
      CLASSES.map(([, label]) => el("th", { class: "n" }, label)),
      el("th", { class: "n" }, "Pelanggaran minggu ini (breaches this week)"),
      el("th", { class: "n" }, "Vaksin dosis 1 (first dose)"));
    const body = rows.flatMap(({ province, compliance }) => [
      ppkmRow(province.province_code, `${province.province_name || "?"} (${province.province_code})`,
        compliance.ppkm.totals, true),
      ...compliance.ppkm.regions.map((r) => ppkmRow(r.regency_code, r.regency_code, r, false))]);
    show("ppkm-table", el("table", {}, el("thead", {}, head), el("tbody", {}, body)));
  }

  // -- incidents: closed plants, with their closure and cluster ------------------------------------------

  function drawClosures(plants, names) {
    if (!plants.length) {
      show("closures", el("p", { class: "muted", "data-test": "no-closures" }, "No plant or room is closed."));
      return;
    }
    const head = el("tr", {}, ["Plant (facility)", "Region", "Status", "Cases", "Cluster", "Closed until"]
      .map((h) => el("th", {}, h)));
    const rows = plants.map(({ plant, status }) => {
      const closure = status && status.plant_closure;
      return el("tr", { "data-test": `closure-${plant.facility_id}` },
        el("td", { class: "id", title: plant.facility_id }, short(plant.facility_id)),
        el("td", {}, `${plant.regency_code} · ${names[plant.province_code] || plant.province_code}`),
        el("td", {}, el("span", { class: `badge ${plant.status}`, "data-test": `closure-status-${plant.facility_id}` },
          plant.status.replace("_", " "))),
        el("td", { class: "n" }, plant.cases_total),
        el("td", { class: "id" }, closure && closure.cluster_id ? `cluster ${short(closure.cluster_id)}` : "—"),
        el("td", {}, closure ? when(closure.ends_at) : "—"));
    });
    show("closures", el("table", {}, el("thead", {}, head), el("tbody", {}, rows)));
  }

  // -- incidents: close contacts traced per case, by province ---------------------------------------------

  function drawTracing(rows) {
    if (!rows.length) {
      show("tracing-table", el("p", { class: "muted" }, "Belum ada izin (no permits yet)."));
      return;
    }
    const head = el("tr", {}, ["Provinsi (province)", "Kasus (cases)", "Kontak erat (contacts)",
      "Kontak per kasus (per case)", "Pabrik di bawah target (plants below target)"]
      .map((h, i) => el("th", i ? { class: "n" } : {}, h)));
    const body = rows.map(({ province, tracing: t }) => el("tr", { "data-test": `tracing-${province.province_code}` },
      el("th", {}, `${province.province_name || "?"} (${province.province_code})`),
      el("td", { class: "n" }, t.cases), el("td", { class: "n" }, t.contacts),
      el("td", { class: "n", "data-test": `tracing-${province.province_code}-ratio`,
        title: `target ${t.target}` },
      t.contacts_per_case === null ? "—" : el("span", { class: `badge ${t.meets_target ? "met" : "below"}` },
        `${t.contacts_per_case.toFixed(1)} ${t.meets_target ? "≥" : "<"} ${t.target}`)),
      el("td", { class: "n" }, t.plants_below_target)));
    show("tracing-table", el("table", {}, el("thead", {}, head), el("tbody", {}, body)));
  }

  // -- notifier: open alerts and how far they have escalated ---------------------------------------------

  function drawAlerts(alerts, names) {
    if (!alerts.length) {
      show("alert-list", el("p", { class: "muted", "data-test": "no-alerts" }, "No open alert."));
      return;
    }
    const head = el("tr", {}, ["Level", "Severity", "Event", "Plant (facility)", "Region", "Seen", "Escalates at"]
      .map((h) => el("th", {}, h)));
    const rows = alerts.map((a) => el("tr", { "data-test": `alert-${a.facility_id}-${a.event_type}` },
      el("td", {}, el("span", { class: `badge ${a.level}`, "data-test": "alert-level" }, a.level)),
      el("td", {}, el("span", { class: `badge ${a.severity}` }, a.severity)),
      el("td", { "data-test": "alert-event" }, a.count > 1 ? `${a.event_type} ×${a.count}` : a.event_type),
      el("td", { class: "id", title: a.facility_id }, short(a.facility_id)),
      el("td", {}, `${a.regency_code} · ${names[a.province_code] || a.province_code}`),
      el("td", {}, when(a.first_seen_at)),
      el("td", {}, when(a.escalate_at))));
    show("alert-list", el("table", {}, el("thead", {}, head), el("tbody", {}, rows)));
  }

  // -- the refresh loop ---------------------------------------------------------------------------------

  async function refresh(config, token) {
    const { permits, reports, incidents, notifier } = config.services;
    const names = {};
    const permitSummary = get(permits, "/permits/summary", token);
    const work = [
      permitSummary.then(async (summary) => {
        drawPermits(summary);
        summary.by_province.forEach((p) => { names[p.province_code] = p.province_name || p.province_code; });
        drawSanctions(summary.sanctions, names);
        const rows = await Promise.all(summary.by_province.map(async (province) => ({
          province, compliance: await get(reports, `/compliance?province=${province.province_code}`, token) })));
        drawCompliance(rows);
        drawPpkm(rows);
      }).catch((error) => {
        failed("permit-provinces", error); failed("compliance-chart", error); failed("ppkm-table", error);
        throw error;
      }),
      permitSummary.then((summary) => Promise.all(summary.by_province.map(async (province) => ({
        province, tracing: await get(incidents, `/tracing?province=${province.province_code}`, token) }))))
        .then(drawTracing).catch((error) => { failed("tracing-table", error); throw error; }),
      get(incidents, "/incidents?limit=500", token).then(async (page) => {
        const closed = page.items.filter((plant) => CLOSED.includes(plant.status));
        return Promise.all(closed.map(async (plant) => ({ plant, status: plant.status === "plant_closed"
          ? await get(incidents, `/facilities/${plant.facility_id}/status`, token) : null })));
      }).catch((error) => { failed("closures", error); throw error; }),
      get(notifier, "/alerts?status=open&limit=200", token)
        .catch((error) => { failed("alert-list", error); throw error; }),
    ];
    const settled = await Promise.allSettled(work);
    const [, , closures, alerts] = settled;
    // Region names come from the permits summary, so the other panels are drawn once it has answered.
    if (closures.status === "fulfilled") drawClosures(closures.value, names);
    if (alerts.status === "fulfilled") drawAlerts(alerts.value.alerts, names);
    const failures = settled.filter((result) => result.status === "rejected").length;
    $("status").textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${config.refresh_seconds} s`
      + (failures ? ` · ${failures} source(s) unavailable` : "");
    $("status").className = failures ? "error" : "muted";
  }

  async function main() {
    const token = takeToken();
    if (!token) {
      $("no-token").hidden = false;
      $("status").textContent = "No token";
      return;
    }
    const config = await (await fetch("/dashboard/config.json", { cache: "no-store" })).json();
    const loop = async () => {
      try {
        await refresh(config, token);
      } catch (error) {
        $("status").textContent = `Refresh failed: ${error.message}`;
      }
      setTimeout(loop, config.refresh_seconds * 1000);
    };
    loop();
  }

  main();
})();
