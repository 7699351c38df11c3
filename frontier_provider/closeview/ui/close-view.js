// The Close view in the browser: reads /api/matrix and /api/entity/<id> and draws the page.
// Money arrives as exact decimal strings and is shown digit for digit (only grouped); charts plot
// numbers, and every chart has the same figures in a table beside it.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import "./close-view.css";

const STATUS = {
  final: { symbol: "\u2713", label: "final", css: "cv-final" },
  preliminary: { symbol: "\u25D0", label: "preliminary", css: "cv-preliminary" },
  failed: { symbol: "\u2717", label: "failed", css: "cv-failed" },
  "not run": { symbol: "\u2013", label: "not run", css: "cv-not-run" },
};
// Ratios that are shares of revenue or equity: shown in percent.
const PERCENT_RATIOS = new Set(["net_margin", "gross_margin", "operating_margin", "roe", "roa"]);
// Names for the key ratios the API lists (key_ratios); any other ratio is named from its key.
const RATIO_NAMES = {
  current_ratio: "Current ratio",
  debt_to_equity: "Debt to equity",
  net_margin: "Net margin",
  roe: "Return on equity",
  roa: "Return on assets",
};
// Colours with at least 4.5:1 contrast on white, told apart by dash pattern and point shape too.
const LINE_STYLES = [
  { stroke: "#0b5394", dash: [] },
  { stroke: "#a61c00", dash: [8, 4] },
  { stroke: "#38761d", dash: [2, 3] },
  { stroke: "#6a1b9a", dash: [12, 3, 2, 3] },
];
const DASH = "\u2013";
const COMPARISONS = { prior_period: "Prior period", prior_year_period: "Same period, prior year" };

const root = document.getElementById("close-view");
const api = root.dataset.api;
const statusLine = document.getElementById("cv-status");
const periodPicker = document.getElementById("cv-period");
const entityPicker = document.getElementById("cv-entity");
// The matrix shows the latest year until asked for every staged period.
const MATRIX_PERIODS = 12;
const charts = [];
let matrix = null;
let showAllPeriods = false;

document.addEventListener("DOMContentLoaded", () => {
  start().catch((error) => say(error.message, true));
});

async function start() {
  matrix = await getJson(`${api}/matrix`);
  if (matrix.periods.length === 0) {
    say("Nothing is staged yet: no close has run.");
    return;
  }
  const wanted = new URLSearchParams(window.location.search);
  const period = matrix.periods.includes(wanted.get("period")) ? wanted.get("period") : matrix.periods.at(-1);
  const entity = matrix.entities.includes(wanted.get("entity")) ? wanted.get("entity") : matrix.entities[0];
  fillPicker(periodPicker, [...matrix.periods].reverse(), period);
  fillPicker(entityPicker, matrix.entities, entity);
  periodPicker.addEventListener("change", () => choose(periodPicker.value, entityPicker.value));
  entityPicker.addEventListener("change", () => choose(periodPicker.value, entityPicker.value));
  drawMatrix(matrix);
  await choose(period, entity);
}

async function choose(period, entity) {
  periodPicker.value = period;
  entityPicker.value = entity;
  const query = new URLSearchParams({ period, entity });
  window.history.replaceState(null, "", `${window.location.pathname}?${query}`);
  if (!showAllPeriods && !matrix.periods.slice(-MATRIX_PERIODS).includes(period)) {
    showAllPeriods = true;
    drawMatrix(matrix);
  }
  markChosen(period, entity);
  drawPeriodSummary(matrix, period);
  say(`Loading ${entity} ${period}\u2026`);
  const found = await getJson(`${api}/entity/${encodeURIComponent(entity)}?period=${encodeURIComponent(period)}`);
  drawEntity(found);
  say(`Showing ${entity} for ${period}: ${matrix.entities.length} entities, ${matrix.periods.length} periods staged.`);
}

// --- matrix and period summary -----------------------------------------------------------------

function drawMatrix(found) {
  const rows = [...found.rows].reverse();
  const shown = showAllPeriods ? rows : rows.slice(0, MATRIX_PERIODS);
  const table = el("table", { class: "cv-table cv-matrix", id: "cv-matrix-table" });
  table.append(el("caption", {}, `Each entity's close in the ${shown.length === rows.length ? rows.length : `latest ${shown.length} of ${rows.length}`} staged periods, newest first. Choose a period or an entity to see it below.`));
  const head = el("tr", {}, el("th", { scope: "col" }, "Period"));
  for (const entity of found.entities) {
    head.append(el("th", { scope: "col" }, button(entity, `Show entity ${entity}`, () => choose(periodPicker.value, entity))));
  }
  table.append(el("thead", {}, head));
  const body = el("tbody");
  for (const row of shown) {
    const tr = el("tr", {}, el("th", { scope: "row" }, button(row.period, `Show period ${row.period}`, () => choose(row.period, entityPicker.value))));
    for (const cell of row.cells) tr.append(matrixCell(cell));
    body.append(tr);
  }
  table.append(body);
  const parts = [table];
  if (rows.length > MATRIX_PERIODS) {
    const label = showAllPeriods ? `Show the latest ${MATRIX_PERIODS} periods` : `Show all ${rows.length} periods`;
    parts.push(button(label, label, () => {
      showAllPeriods = !showAllPeriods;
      drawMatrix(found);
      markChosen(periodPicker.value, entityPicker.value);
    }));
  }
  document.getElementById("cv-matrix").replaceChildren(...parts);
}

function markChosen(period, entity) {
  for (const cell of document.querySelectorAll("#cv-matrix [aria-current]")) cell.removeAttribute("aria-current");
  const current = document.querySelector(`#cv-matrix td[data-period="${period}"][data-entity="${entity}"]`);
  if (current) current.setAttribute("aria-current", "true");
}

function matrixCell(cell) {
  const td = el("td", { "data-entity": cell.entity, "data-period": cell.period, "data-status": cell.status });
  td.append(statusBadge(cell));
  if (cell.status === "failed" && cell.failure) {
    const failure = cell.failure;
    td.append(
      el("div", { class: "cv-failure" },
        link(cell.failure_url, `${failure.task_id} log`, `Log of the failed task ${failure.task_id} (${failure.category}): ${failure.message}`)),
    );
  }
  if (cell.health_score !== null) td.append(el("div", { "data-field": "health_score" }, `Health ${score(cell.health_score)}`));
  if (cell.credit_rating || cell.overall_risk) {
    td.append(el("div", {}, `${cell.credit_rating ?? DASH} \u00B7 ${cell.overall_risk ?? DASH} risk`));
  }
  return td;
}

function drawPeriodSummary(found, period) {
  const row = found.rows.find((item) => item.period === period);
  document.getElementById("cv-period-title").textContent = `Period ${period}`;
  const table = el("table", { class: "cv-table", id: "cv-period-table", "data-period": period });
  table.append(el("caption", {}, `The close of ${period} by entity: figures as published in the staged analysis.`));
  const columns = ["Entity", "Status", "Currency", "Revenue YTD", "Net income YTD", "Total assets", "Equity", "Health score", "Rating", "Risk", "Figures as of", "Released"];
  table.append(el("thead", {}, el("tr", {}, ...columns.map((name) => el("th", { scope: "col" }, name)))));
  const body = el("tbody");
  for (const cell of row.cells) {
    body.append(
      el("tr", { "data-entity": cell.entity },
        el("th", { scope: "row" }, cell.entity),
        el("td", { "data-field": "status" }, statusBadge(cell)),
        el("td", { "data-field": "currency" }, cell.currency ?? DASH),
        el("td", { class: "cv-num", "data-field": "revenue" }, money(cell.revenue)),
        el("td", { class: "cv-num", "data-field": "net_income" }, money(cell.net_income)),
        el("td", { class: "cv-num", "data-field": "total_assets" }, money(cell.total_assets)),
        el("td", { class: "cv-num", "data-field": "shareholders_equity" }, money(cell.shareholders_equity)),
        el("td", { class: "cv-num", "data-field": "health_score" }, score(cell.health_score)),
        el("td", { "data-field": "credit_rating" }, cell.credit_rating ?? DASH),
        el("td", { "data-field": "overall_risk" }, cell.overall_risk ?? DASH),
        el("td", { "data-field": "as_of" }, cell.as_of ?? DASH),
        el("td", { "data-field": "released" }, cell.status === "not run" ? DASH : cell.released ? "yes" : "no"),
      ),
    );
  }
  table.append(body);
  const failures = (found.period_failures[period] ?? []).map((failure) =>
    el("li", {}, link(failure.failure_url, `${failure.dag_id} ${failure.task_id} log`, failure.message), ` (${failure.category}, ${failure.failed_at}): ${failure.message}`));
  const notes = failures.length ? [el("p", {}, `Tasks of the whole period that failed in ${period}:`), el("ul", { id: "cv-period-failures" }, ...failures)] : [];
  document.getElementById("cv-period-summary").replaceChildren(table, ...notes);
}

// --- one entity --------------------------------------------------------------------------------

function drawEntity(found) {
  const { entity, period, trend, detail } = found;
  const first = trend[0].period;
  document.getElementById("cv-entity-title").textContent = `${entity}: ${trend.length} periods to ${period}`;
  for (const chart of charts.splice(0)) chart.destroy();
  const currency = found.cell.currency ?? "";
  const times = found.key_ratios.filter((key) => !PERCENT_RATIOS.has(key));
  const percents = found.key_ratios.filter((key) => PERCENT_RATIOS.has(key));
  const figures = [
    { id: "health", title: "Health score (out of 10)", series: [["Health score", (c) => c.health_score]], digits: 2 },
    { id: "revenue", title: `Revenue ${currency}, fiscal year to date`, series: [["Revenue", (c) => number(c.revenue)]], digits: 0 },
    { id: "net-income", title: `Net income ${currency}, fiscal year to date`, series: [["Net income", (c) => number(c.net_income)]], digits: 0 },
    { id: "ratios", title: "Key ratios (times)", series: times.map((key) => [ratioName(key), (c) => c.ratios?.[key] ?? null]), digits: 3 },
    { id: "returns", title: "Key ratios (%)", series: percents.map((key) => [ratioName(key), (c) => percent(c.ratios?.[key])]), digits: 1 },
  ].filter((figure) => figure.series.length);
  const holder = el("div", { class: "cv-charts" });
  document.getElementById("cv-trend").replaceChildren(holder, trendTable(entity, trend, found.key_ratios));
  for (const figure of figures) holder.append(trendChart(entity, trend, first, period, figure));
  drawDetail(detail, entity, period);
}

function trendChart(entity, trend, first, last, figure) {
  const xs = trend.map((cell) => periodTime(cell.period));
  const series = figure.series.map(([, value]) => trend.map((cell) => value(cell) ?? null));
  const points = series[0].filter((value) => value !== null).length;
  const description = figure.series
    .map(([label], index) => {
      const values = series[index].filter((value) => value !== null);
      return values.length ? `${label} from ${fixed(values[0], figure.digits)} to ${fixed(values.at(-1), figure.digits)}` : `${label}: no data`;
    })
    .join("; ");
  const plot = el("div", {
    class: "cv-plot",
    role: "img",
    "aria-label": `${figure.title} of ${entity}, ${first} to ${last}, ${points} periods with data: ${description}. The figures are in the trend table below.`,
  });
  const chart = el("figure", { class: "cv-chart", id: `cv-chart-${figure.id}`, "data-points": String(points) },
    el("figcaption", {}, figure.title), plot);
  const options = {
    width: 520,
    height: 240,
    scales: { x: { time: true } },
    axes: [
      { values: (u, ticks) => ticks.map((t) => periodLabel(t)), stroke: "#1f1f1f", grid: { stroke: "#e0e0e0" } },
      { stroke: "#1f1f1f", grid: { stroke: "#e0e0e0" }, size: 70, values: (u, ticks) => ticks.map((t) => compact(t)) },
    ],
    series: [
      { label: "Period", value: (u, t) => (t === null ? DASH : periodLabel(t)) },
      ...figure.series.map(([label], index) => ({
        label,
        stroke: LINE_STYLES[index].stroke,
        dash: LINE_STYLES[index].dash,
        width: 2,
        points: { show: true, size: 6 + index, fill: LINE_STYLES[index].stroke },
        value: (u, v) => (v === null ? DASH : fixed(v, figure.digits)),
      })),
    ],
  };
  requestAnimationFrame(() => charts.push(new uPlot(options, [xs, ...series], plot)));
  return chart;
}

function trendTable(entity, trend, keyRatios) {
  const table = el("table", { class: "cv-table", id: "cv-trend-table" });
  table.append(el("caption", {}, `Trend data of ${entity}: the figures of the charts, one row per period.`));
  const columns = ["Period", "Status", "Health score", "Revenue YTD", "Net income YTD", ...keyRatios.map(ratioName)];
  table.append(el("thead", {}, el("tr", {}, ...columns.map((name) => el("th", { scope: "col" }, name)))));
  const body = el("tbody");
  for (const cell of trend) {
    body.append(
      el("tr", { "data-period": cell.period, "data-status": cell.status },
        el("th", { scope: "row" }, cell.period),
        el("td", {}, statusBadge(cell)),
        el("td", { class: "cv-num", "data-field": "health_score" }, score(cell.health_score)),
        el("td", { class: "cv-num", "data-field": "revenue" }, money(cell.revenue)),
        el("td", { class: "cv-num", "data-field": "net_income" }, money(cell.net_income)),
        ...keyRatios.map((key) => el("td", { class: "cv-num", "data-field": key }, ratio(cell.ratios?.[key], key))),
      ),
    );
  }
  table.append(body);
  return el("details", { class: "cv-trend-data" }, el("summary", {}, "Trend data table"), table);
}

function drawDetail(detail, entity, period) {
  const name = detail.company_name ? `${entity} (${detail.company_name})` : entity;
  const parts = [el("h3", {}, `${name} in ${period}`)];
  const statements = detail.statements ?? {};
  const statementTables = [["balance_sheet", "Balance sheet"], ["income_statement", "Income statement"]]
    .filter(([key]) => statements[key])
    .map(([key, title]) => lineTable(`cv-${key.replace("_", "-")}`, `${title} ${detail.currency ?? ""}`.trim(), statements[key], money));
  parts.push(statementTables.length ? el("div", { class: "cv-columns" }, ...statementTables) : el("p", {}, `No statements are staged for ${entity} in ${period}.`));
  parts.push(el("h3", {}, "Ratios"));
  const families = Object.entries(detail.ratios ?? {}).filter(([, values]) => values && Object.keys(values).length);
  if (families.length === 0) parts.push(el("p", {}, "No ratios: no analysis is staged for this period."));
  else parts.push(el("div", { class: "cv-columns" }, ...families.map(([family, values]) => lineTable(`cv-ratios-${family}`, titleCase(family), values, ratio, ratioName))));
  if (detail.recommendations?.length) {
    parts.push(el("h3", {}, "Recommendations"), el("ul", {}, ...detail.recommendations.map((text) => el("li", {}, String(text)))));
  }
  parts.push(el("h3", {}, "Variances"));
  if (detail.variances) parts.push(...variancesTables(detail.variances));
  else parts.push(el("p", { id: "cv-no-variances" }, `No flux review is staged for ${entity} in ${period}.`));
  document.getElementById("cv-detail").replaceChildren(...parts);
}

function lineTable(id, title, lines, format, name = titleCase) {
  const table = el("table", { class: "cv-table cv-lines", id });
  table.append(el("caption", {}, title));
  table.append(el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Line"), el("th", { scope: "col" }, "Amount"))));
  const body = el("tbody");
  for (const [key, value] of Object.entries(lines)) {
    body.append(el("tr", { "data-line": key }, el("th", { scope: "row" }, name(key)), el("td", { class: "cv-num" }, format(value, key))));
  }
  table.append(body);
  return table;
}

function variancesTables(variances) {
  const lines = variances.filter((item) => item.level === "statement_line");
  const accounts = variances.filter((item) => item.level !== "statement_line");
  const material = accounts.filter((item) => item.material).length;
  return [
    variancesTable("cv-variances", "Statement lines against the prior period and the same period of the prior year.", lines),
    el("details", { class: "cv-trend-data" },
      el("summary", {}, `GL accounts (${accounts.length} comparisons, ${material} material)`),
      variancesTable("cv-variances-accounts", "GL accounts, material variances first.", accounts)),
  ];
}

function variancesTable(id, caption, variances) {
  const table = el("table", { class: "cv-table", id });
  table.append(el("caption", {}, caption));
  const columns = ["Item", "Compared with", "Amount", "Comparative", "Change", "Change %", "Material", "Explanation"];
  table.append(el("thead", {}, el("tr", {}, ...columns.map((name) => el("th", { scope: "col" }, name)))));
  const body = el("tbody");
  const ordered = [...variances].sort((a, b) => Number(b.material) - Number(a.material));
  for (const item of ordered) {
    const name = item.level === "statement_line" ? lineName(item.item) : `${item.item} ${item.description ?? ""}`.trim();
    body.append(
      el("tr", { class: item.material ? "cv-material" : "", "data-item": item.item, "data-comparison": item.comparison },
        el("th", { scope: "row" }, name),
        el("td", {}, `${COMPARISONS[item.comparison] ?? titleCase(item.comparison)} (${item.comparative_period})`),
        el("td", { class: "cv-num" }, money(item.current_amount)),
        el("td", { class: "cv-num" }, money(item.comparative_amount)),
        el("td", { class: "cv-num" }, money(item.change_amount)),
        el("td", { class: "cv-num" }, item.change_percent === null ? DASH : `${fixed(item.change_percent, 1)}%`),
        el("td", {}, item.material ? "\u26A0 material" : "no"),
        el("td", {}, item.explanation ? `${item.explanation} (${item.explained_by})` : item.material ? "not explained" : DASH),
      ),
    );
  }
  table.append(body);
  return table;
}

// --- formatting --------------------------------------------------------------------------------

function statusBadge(cell) {
  const status = STATUS[cell.status] ?? { symbol: "?", label: cell.status, css: "" };
  return el("span", { class: `cv-badge ${status.css}` }, el("span", { "aria-hidden": "true" }, status.symbol), ` ${status.label}`);
}

// An exact decimal string, grouped by thousands; never through a float.
function money(text) {
  if (text === null || text === undefined) return DASH;
  const match = /^(-?)(\d+)(\.\d+)?$/.exec(String(text));
  if (!match) return String(text);
  return `${match[1]}${match[2].replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${match[3] ?? ""}`;
}

function score(value) {
  return value === null || value === undefined ? DASH : Number(value).toFixed(2);
}

function ratio(value, key) {
  if (value === null || value === undefined) return DASH;
  return PERCENT_RATIOS.has(key) ? `${(Number(value) * 100).toFixed(1)}%` : Number(value).toFixed(3);
}

function percent(value) {
  return value === null || value === undefined ? null : Number(value) * 100;
}

function number(text) {
  return text === null || text === undefined ? null : Number(text);
}

function fixed(value, digits) {
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function compact(value) {
  return Number(value).toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 2 });
}

function periodTime(period) {
  const [year, month] = period.split("-").map(Number);
  return Date.UTC(year, month - 1, 1) / 1000;
}

function periodLabel(seconds) {
  const date = new Date(seconds * 1000);
  return `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, "0")}`;
}

// "balance_sheet.cash_and_equivalents" -> "Cash and equivalents (balance sheet)"
function lineName(key) {
  const [statement, line] = key.includes(".") ? key.split(".", 2) : [null, key];
  return statement ? `${titleCase(line)} (${statement.replaceAll("_", " ")})` : titleCase(line);
}

function ratioName(key) {
  return RATIO_NAMES[key] ?? titleCase(key);
}

function titleCase(key) {
  const text = key.replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// --- DOM and HTTP ------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) if (value !== "") node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function button(text, label, onClick) {
  const node = el("button", { type: "button", class: "cv-link-button", "aria-label": label }, text);
  node.addEventListener("click", onClick);
  return node;
}

// A link into Airflow's UI. Inside Airflow's frame the page may not navigate the top window, so the
// click is handed to the UI's router (same origin); on its own the link opens as usual.
function link(href, text, title) {
  const node = el("a", { href, title, target: "_top", class: "cv-failure-link" }, text);
  node.addEventListener("click", (event) => {
    const url = new URL(href, window.location.origin);
    if (window.parent === window || url.origin !== window.location.origin) return;
    event.preventDefault();
    window.parent.history.pushState(null, "", `${url.pathname}${url.search}${url.hash}`);
    window.parent.dispatchEvent(new PopStateEvent("popstate"));
  });
  return node;
}

function fillPicker(select, values, chosen) {
  select.replaceChildren(...values.map((value) => el("option", { value }, value)));
  select.value = chosen;
  select.disabled = false;
}

function say(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("cv-error", isError);
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) throw new Error("Log in to Airflow to see the close.");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${response.status}: ${body.detail ?? response.statusText}`);
  return body;
}
