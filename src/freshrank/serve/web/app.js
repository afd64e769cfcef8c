// freshrank relevance workbench. Plain ES modules, no build step.
// Everything shown comes from data: it is always set with textContent / attributes, never parsed as HTML.

const TOKEN_KEY = "freshrank.token";
const PAGE_SIZE = 10;
const TREND_REFRESH_MS = 10000;
const HEALTH_REFRESH_MS = 30000;
const PALETTE = ["#f97316", "#ec4899", "#14b8a6", "#8b5cf6", "#eab308", "#06b6d4", "#ef4444", "#22c55e"];
const GRADE_NAMES = ["not relevant", "somewhat relevant", "relevant", "perfect"];
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  q: "",
  genre: "",
  trends: [], // picked hashtags; empty = boost by all live trends
  boost: true,
  offset: 0,
  total: 0,
  hits: [],
  key: "",
  focus: -1,
  tab: "results",
  colors: new Map(), // hashtag/label -> colour, stable while the page lives
  metrics: null,
  champion: "",
  versions: [],
};

// DOM helpers -------------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** Element with attributes and children; strings become text nodes (never HTML). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(x * 100)}%`);

function colorOf(name) {
  if (!state.colors.has(name)) state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
  return state.colors.get(name);
}

let toastTimer = 0;
function toast(message, kind = "info") {
  const box = $("toast");
  box.textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 6000 : 3000);
}

// API ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/** fetch JSON; writes carry the bearer token in a header (never in the URL). */
async function api(path, { method = "GET", body, write = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (write) {
    if (!token()) throw new ApiError(0, "Enter the API token in the Operations panel first.");
    headers.Authorization = `Bearer ${token()}`;
  }
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin",
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : response.statusText;
    throw new ApiError(response.status, detail || `HTTP ${response.status}`);
  }
  return data;
}

function queryParams(extra = {}) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  if (state.genre) params.set("genre", state.genre);
  for (const t of state.trends) params.append("trend", t);
  if (!state.boost) params.set("boost", "false");
  for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== "") params.set(k, String(v));
  return params;
}

function report(error, what) {
  const message = error instanceof ApiError ? error.message : String(error && error.message || error);
  toast(`${what}: ${message}`, "error");
  if (error instanceof ApiError && (error.status === 0 || error.status === 401)) $("token").focus();
}

// URL state (shareable; never holds the token) -----------------------------------------------------

function saveHash() {
  const params = queryParams();
  const hash = params.toString();
  history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
}

function loadHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.q = params.get("q") || "";
  state.genre = params.get("genre") || "";
  state.trends = params.getAll("trend");
  state.boost = params.get("boost") !== "false";
  $("q").value = state.q;
  $("boost").checked = state.boost;
}

// Trends ------------------------------------------------------------------------------------------

function sparkline(counts, color) {
  const width = 140, height = 22, pad = 2;
  const box = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "spark", "aria-hidden": "true" });
  if (!counts || counts.length < 2) {
    box.append(svg("line", { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "spark-none" }));
    return box;
  }
  const max = Math.max(1, ...counts);
  const step = (width - 2 * pad) / (counts.length - 1);
  const points = counts.map((c, i) => [pad + i * step, height - pad - (c / max) * (height - 2 * pad)]);
  const line = points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  const area = `${pad},${height - pad} ${line} ${width - pad},${height - pad}`;
  box.append(svg("polygon", { points: area, fill: color, "fill-opacity": "0.15" }));
  box.append(svg("polyline", { points: line, fill: "none", stroke: color, "stroke-width": "1.6",
    "stroke-linejoin": "round", "stroke-linecap": "round" }));
  const [lx, ly] = points[points.length - 1];
  box.append(svg("circle", { cx: lx, cy: ly, r: "2.2", fill: color }));
  return box;
}

function renderTrends(trends) {
  const list = $("trends");
  list.replaceChildren(...trends.map((t) => {
    const color = colorOf(t.hashtag);
    const picked = state.trends.includes(t.hashtag);
    const lift = t.baseline > 0 ? `×${(t.count / t.baseline).toFixed(1)}` : "new";
    const button = el("button", {
      type: "button", class: `trend${picked ? " picked" : ""}`, "aria-pressed": picked ? "true" : "false",
      title: `${t.hashtag} → “${t.label}”\nburst z ${fmt(t.score, 2)}`
        + (t.p_value != null ? ` (p = ${t.p_value.toExponential(1)})` : "")
        + `\n${t.count} posts in the window`
        + (t.expected != null ? `, ${fmt(t.expected, 1)} expected` : "")
        + (t.authors != null ? `, ${t.authors} authors` : "")
        + `\nprevious window ${fmt(t.baseline, 1)} (${lift})`,
    },
    el("span", { class: "swatch", style: { background: color } }),
    el("span", { class: "trend-tag", text: t.hashtag }),
    el("span", { class: "trend-score", title: "burst z (Poisson test against the expected count)",
      text: fmt(t.score, 1) }),
    sparkline(t.history, color),
    el("span", { class: "trend-count" }, el("strong", { text: `${t.count}` }),
      t.expected != null ? ` posts · ${fmt(t.expected, 1)} expected` : ` posts · ${lift}`));
    button.addEventListener("click", () => toggleTrend(t.hashtag));
    return el("li", {}, button);
  }));
  $("trends-empty").hidden = trends.length > 0;
  $("trends-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function loadTrends() {
  try {
    renderTrends(await api("/api/trends?n=20"));
  } catch (error) {
    $("trends-updated").textContent = `trends unavailable: ${error.message}`;
  }
}

function toggleTrend(hashtag) {
  const i = state.trends.indexOf(hashtag);
  if (i >= 0) state.trends.splice(i, 1);
  else state.trends.push(hashtag);
  state.offset = 0;
  loadTrends();
  runSearch();
}

function renderChips() {
  const chips = state.trends.map((tag) => {
    const chip = el("button", { type: "button", class: "chip", title: "remove this trend" },
      el("span", { text: tag }), el("span", { class: "x", "aria-hidden": "true", text: "×" }));
    chip.addEventListener("click", () => toggleTrend(tag));
    return chip;
  });
  if (!chips.length) {
    chips.push(el("span", { class: "chip muted", text: state.boost ? "boost: all live trends" : "boost: off" }));
  }
  $("chips").replaceChildren(...chips);
  const key = $("judge-key");
  if (state.key) {
    key.replaceChildren("judging ", el("strong", { text: state.key }),
      state.genre ? el("span", { text: ` · ${state.genre}` }) : "");
  } else {
    key.textContent = "type a query or pick a trend to judge results";
  }
}

// Search and results ------------------------------------------------------------------------------

let searchSeq = 0;

async function runSearch() {
  const seq = ++searchSeq;
  saveHash();
  try {
    const data = await api(`/api/search?${queryParams({ limit: PAGE_SIZE, offset: state.offset })}`);
    if (seq !== searchSeq) return; // a newer search is on its way
    state.hits = data.hits;
    state.total = data.total;
    state.key = data.query.key;
    state.focus = data.hits.length ? Math.min(Math.max(state.focus, 0), data.hits.length - 1) : -1;
    renderResults(data);
    renderChips();
    loadMetrics();
    if (state.tab === "compare") runCompare();
  } catch (error) {
    if (seq === searchSeq) report(error, "search failed");
  }
}

function explanationBar(hit, maxScore) {
  const scale = maxScore > 0 ? 100 / maxScore : 0;
  const bar = el("div", { class: "xbar", role: "img", "aria-label": "score explanation" });
  // A trend-only query has no text relevance to show: its score is the boost alone.
  const parts = state.q || hit.text_score > 0 ? [{ name: "text", value: hit.text_score, color: "var(--text-seg)",
    title: `text relevance ${fmt(hit.text_score)}` }] : [];
  for (const c of hit.contributions) {
    parts.push({ name: c.hashtag, value: c.contribution, color: colorOf(c.hashtag),
      title: `${c.hashtag}: weight ${fmt(c.weight, 2)} × score ${fmt(c.trend_score)} = ${fmt(c.contribution)}` });
  }
  for (const p of parts) {
    if (p.value <= 0) continue;
    bar.append(el("span", { class: "seg", title: p.title, style: { width: `${p.value * scale}%`, background: p.color } }));
  }
  const legend = el("div", { class: "xlegend" });
  parts.forEach((p, i) => {
    if (i > 0) legend.append(el("span", { class: "op", text: "+" }));
    legend.append(el("span", { class: "xitem", title: p.title },
      el("span", { class: "swatch", style: { background: p.color } }),
      el("span", { class: "xname", text: p.name }), el("span", { class: "xval", text: fmt(p.value) })));
  });
  legend.append(el("span", { class: "op", text: "=" }), el("strong", { class: "xtotal", text: fmt(hit.score) }));
  return el("div", { class: "explain" }, bar, legend);
}

function ratingButtons(hit, index) {
  const group = el("div", { class: "rating", role: "radiogroup", "aria-label": `grade for ${hit.title}` });
  for (let g = 0; g <= 3; g++) {
    const chosen = hit.grade === g;
    const b = el("button", {
      type: "button", class: `grade g${g}${chosen ? " chosen" : ""}`, role: "radio",
      "aria-checked": chosen ? "true" : "false", title: `${g}: ${GRADE_NAMES[g]}`, "data-grade": g,
      disabled: !state.key,
    }, String(g));
    b.addEventListener("click", () => { setFocus(index); rate(index, g); });
    group.append(b);
  }
  return group;
}

function resultCard(hit, index, maxScore) {
  const year = hit.release_year ? el("span", { class: "year", text: `(${hit.release_year})` }) : null;
  const card = el("li", { class: "result", "data-id": hit.id, "data-index": index, tabindex: "-1" },
    el("div", { class: "rank", text: `${hit.rank}` }),
    el("div", { class: "body" },
      el("div", { class: "title-row" }, el("h3", { class: "title", text: hit.title }), year,
        el("span", { class: "score", title: "final score", text: fmt(hit.score) })),
      el("div", { class: "genres" }, hit.genres.map((g) => el("span", { class: "genre", text: g }))),
      el("p", { class: "overview", text: hit.overview }),
      explanationBar(hit, maxScore)),
    ratingButtons(hit, index));
  card.addEventListener("click", (event) => {
    if (!(event.target instanceof HTMLButtonElement)) setFocus(index);
  });
  return card;
}

function renderResults(data) {
  const maxScore = Math.max(0, ...data.hits.map((h) => h.score));
  $("results").replaceChildren(...data.hits.map((hit, i) => resultCard(hit, i, maxScore)));
  $("warnings").replaceChildren(...data.warnings.map((w) => el("div", { class: "warning", text: w })));
  const first = data.hits.length ? data.offset + 1 : 0;
  $("results-summary").textContent = data.total
    ? `${data.total} ${data.total === 1 ? "movie" : "movies"} · showing ${first}–${data.offset + data.hits.length}`
    : "No movies match.";
  document.querySelector(".pager").hidden = data.total <= PAGE_SIZE && data.offset === 0;
  $("page-info").textContent = data.total ? `page ${Math.floor(data.offset / PAGE_SIZE) + 1}` : "";
  $("prev").disabled = data.offset === 0;
  $("next").disabled = data.offset + data.hits.length >= data.total;
  highlightFocus();
}

function setFocus(index) {
  state.focus = index;
  highlightFocus();
}

function highlightFocus() {
  for (const card of $("results").children) {
    const focused = Number(card.dataset.index) === state.focus;
    card.classList.toggle("focused", focused);
    if (focused) card.scrollIntoView({ block: "nearest" });
  }
}

async function rate(index, grade) {
  const hit = state.hits[index];
  if (!hit) return;
  if (!state.key) {
    toast("Type a query or pick a trend first: judgments are stored per query.", "error");
    return;
  }
  try {
    await api("/api/judgments", {
      method: "POST", write: true, body: { query: state.key, genre: state.genre, doc_id: hit.id, grade },
    });
    hit.grade = grade;
    const card = $("results").children[index];
    if (card) card.querySelector(".rating").replaceWith(ratingButtons(hit, index));
    toast(`Saved: “${hit.title}” is ${grade} (${GRADE_NAMES[grade]})`, "ok");
    await loadMetrics();
  } catch (error) {
    report(error, "could not save the judgment");
  }
}

// Metrics -----------------------------------------------------------------------------------------

function setMetric(id, value, previous, text) {
  const box = $(id);
  box.querySelector(".m-value").textContent = text;
  const delta = box.querySelector(".m-delta");
  if (delta && previous !== undefined && previous !== null && value !== null && Math.abs(value - previous) > 1e-9) {
    const d = value - previous;
    delta.textContent = `${d > 0 ? "▲" : "▼"} ${Math.abs(d).toFixed(3)}`;
    delta.className = `m-delta ${d > 0 ? "up" : "down"}`;
    box.classList.remove("flash");
    void box.offsetWidth; // restart the animation
    box.classList.add("flash");
  } else if (delta && value === null) {
    delta.textContent = "";
  }
}

async function loadMetrics() {
  try {
    const m = await api(`/api/query-metrics?${queryParams()}`);
    const before = state.metrics && state.metrics.query_id === m.query_id ? state.metrics : null;
    setMetric("m-ndcg", m.ndcg_at_10, before && before.ndcg_at_10, fmt(m.ndcg_at_10));
    setMetric("m-p", m.p_at_10, before && before.p_at_10, fmt(m.p_at_10, 2));
    setMetric("m-judged", m.judged_at_10, null, m.key ? `${pct(m.judged_at_10)} (${m.judged_in_top}/10)` : "–");
    $("m-judged").querySelector(".m-bar span").style.width = `${(m.judged_at_10 || 0) * 100}%`;
    $("m-judged").classList.toggle("low", !!m.key && m.judged_at_10 < 0.5);
    state.metrics = m;
  } catch (error) {
    report(error, "metrics unavailable");
  }
}

// Compare -----------------------------------------------------------------------------------------

function movementBadge(row) {
  if (row.movement === null) return el("span", { class: "move new", title: "not in the other list", text: "new" });
  if (row.movement > 0) return el("span", { class: "move up", title: `up ${row.movement}`, text: `▲${row.movement}` });
  if (row.movement < 0) return el("span", { class: "move down", title: `down ${-row.movement}`, text: `▼${-row.movement}` });
  return el("span", { class: "move same", title: "same rank", text: "=" });
}

function compareColumn(side) {
  const m = side.metrics;
  return el("div", { class: "cmp-col" },
    el("h3", { text: side.name }),
    el("div", { class: "cmp-metrics" },
      el("span", {}, "nDCG@10 ", el("strong", { text: fmt(m.ndcg_at_10) })),
      el("span", {}, "P@10 ", el("strong", { text: fmt(m.p_at_10, 2) })),
      el("span", {}, "judged ", el("strong", { text: pct(m.judged_at_10) }))),
    el("ol", { class: "cmp-list" }, side.rows.map((row) => el("li", { class: "cmp-row", "data-id": row.id },
      el("span", { class: "cmp-rank", text: `${row.rank}` }),
      el("span", { class: "cmp-title", text: row.title, title: row.title }),
      row.grade === null ? el("span", { class: "gbadge none", title: "not judged", text: "·" })
        : el("span", { class: `gbadge g${row.grade}`, title: GRADE_NAMES[row.grade], text: `${row.grade}` }),
      el("span", { class: "cmp-score", text: fmt(row.score) }),
      movementBadge(row)))));
}

async function runCompare() {
  const mode = document.querySelector("input[name=cmp-mode]:checked").value;
  const candidate = $("cmp-candidate").value;
  const box = $("compare");
  if (mode === "models" && !candidate) {
    box.replaceChildren(el("p", { class: "empty", text: "No candidate model is registered yet." }));
    return;
  }
  box.replaceChildren(el("p", { class: "empty", text: mode === "models" ? "Scoring with the candidate…" : "Ranking…" }));
  try {
    const data = await api(`/api/compare?${queryParams({ mode, candidate: mode === "models" ? candidate : "" })}`);
    box.replaceChildren(compareColumn(data.left), compareColumn(data.right));
  } catch (error) {
    box.replaceChildren(el("p", { class: "empty", text: `Compare failed: ${error.message}` }));
  }
}

// Snapshots ---------------------------------------------------------------------------------------

function describeQuery(q) {
  const parts = [];
  if (q.text) parts.push(`“${q.text}”`);
  if (q.trends && q.trends.length) parts.push(q.trends.join(" "));
  if (q.genre) parts.push(q.genre);
  return parts.join(" · ") || "(everything)";
}

async function loadSnapshots() {
  try {
    const list = await api("/api/snapshots");
    $("snap-list").replaceChildren(...list.map((s, i) => el("tr", {},
      el("td", {}, el("input", { type: "radio", name: "snap-a", value: s.name, checked: i === 1, "aria-label": `A: ${s.name}` })),
      el("td", {}, el("input", { type: "radio", name: "snap-b", value: s.name, checked: i === 0, "aria-label": `B: ${s.name}` })),
      el("td", { class: "snap-name", text: s.name }),
      el("td", { text: describeQuery(s.query) }),
      el("td", { text: fmt(s.metrics.ndcg_at_10) }),
      el("td", { text: fmt(s.metrics.p_at_10, 2) }),
      el("td", { text: new Date(s.created_at).toLocaleString() }))));
    if (!list.length) {
      $("snap-list").replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "empty", text: "No snapshots yet." })));
    }
  } catch (error) {
    report(error, "snapshots unavailable");
  }
}

async function saveSnapshot(event) {
  event.preventDefault();
  const name = $("snap-name").value.trim();
  if (!name) {
    toast("Give the snapshot a name.", "error");
    return;
  }
  try {
    await api("/api/snapshots", {
      method: "POST", write: true,
      body: { name, q: state.q, genre: state.genre, trend: state.trends },
    });
    $("snap-name").value = "";
    toast(`Snapshot “${name}” saved`, "ok");
    await loadSnapshots();
  } catch (error) {
    report(error, "could not save the snapshot");
  }
}

async function diffSnapshots() {
  const a = document.querySelector("input[name=snap-a]:checked");
  const b = document.querySelector("input[name=snap-b]:checked");
  if (!a || !b) {
    toast("Pick snapshot A and snapshot B.", "error");
    return;
  }
  try {
    const diff = await api(`/api/snapshots/diff?${new URLSearchParams({ a: a.value, b: b.value })}`);
    const deltas = Object.entries(diff.metric_deltas).map(([name, d]) => el("span", { class: `delta ${d > 0 ? "up" : d < 0 ? "down" : ""}` },
      `${name.replace(/_/g, " ")} `, el("strong", { text: `${d >= 0 ? "+" : ""}${d.toFixed(3)}` })));
    const rows = diff.moves.map((m) => el("tr", { class: m.status },
      el("td", { text: m.title }),
      el("td", { text: m.rank_a ?? "–" }),
      el("td", { text: m.rank_b ?? "–" }),
      el("td", {}, m.status === "new" ? el("span", { class: "move new", text: "new" })
        : m.status === "dropped" ? el("span", { class: "move down", text: "dropped" })
          : movementBadge({ movement: m.movement }))));
    $("snap-result").replaceChildren(
      el("h3", {}, el("span", { text: diff.a.name }), " → ", el("span", { text: diff.b.name })),
      el("div", { class: "deltas" }, deltas),
      el("table", { class: "snap-table" },
        el("thead", {}, el("tr", {}, ["movie", "rank A", "rank B", "movement"].map((h) => el("th", { text: h })))),
        el("tbody", {}, rows)));
  } catch (error) {
    report(error, "diff failed");
  }
}

// Operations --------------------------------------------------------------------------------------

function logOp(message, kind = "info") {
  const log = $("ops-log");
  log.prepend(el("li", { class: kind }, el("time", { text: new Date().toLocaleTimeString() }), el("span", { text: message })));
  while (log.children.length > 6) log.lastChild.remove();
}

async function loadModels() {
  try {
    const data = await api("/api/models");
    state.champion = data.champion;
    state.versions = data.versions;
    const others = data.versions.filter((v) => v !== data.champion);
    const options = (list) => (list.length ? list.map((v) => el("option", { value: v, text: v }))
      : [el("option", { value: "", text: "no other model" })]);
    $("promote-version").replaceChildren(...options(others));
    $("cmp-candidate").replaceChildren(...options(others));
    $("promote-btn").disabled = !others.length;
    $("models").replaceChildren(el("div", { class: "models-head", text: "Models" }),
      el("ul", {}, data.versions.map((v) => {
        const card = data.cards[v];
        const ndcg = card && card.metrics && card.metrics.ndcg_at_10 !== null ? card.metrics.ndcg_at_10 : null;
        return el("li", { class: v === data.champion ? "champion" : "" },
          el("span", { class: "mv", text: v }),
          v === data.champion ? el("span", { class: "badge ok", text: "champion" }) : null,
          ndcg !== null ? el("span", { class: "mndcg", title: "gate nDCG@10", text: fmt(ndcg) }) : null);
      })));
  } catch (error) {
    $("models").textContent = `models unavailable: ${error.message}`;
  }
}

function monitorSummary(data) {
  const checks = data.checks || {};
  const unscored = (checks.unscored_labels || []).length;
  const drift = checks.vocabulary_drift ? pct(checks.vocabulary_drift.share) : "–";
  return `model ${data.model_version} · ${checks.trending ?? 0} trending labels, ${unscored} unscored · `
    + `vocabulary drift ${drift}`;
}

async function loadMonitor() {
  try {
    const data = await api("/api/monitor");
    const badge = $("monitor-decision");
    badge.textContent = data.decision || "no decision";
    badge.className = `badge ${data.decision === "ok" ? "ok" : data.decision ? "warn" : ""}`;
    badge.title = data.decided_at ? `decided ${new Date(data.decided_at).toLocaleString()}` : "";
    const reasons = data.reasons && data.reasons.length ? [...data.reasons]
      : data.decision === "ok" ? ["every signal is within its threshold"] : data.message ? [data.message] : [];
    const items = reasons.map((r) => el("li", { text: String(r) }));
    if (data.decision) items.push(el("li", { class: "summary-line", text: monitorSummary(data) }));
    $("monitor-reasons").replaceChildren(...items);
  } catch (error) {
    $("monitor-decision").textContent = "unavailable";
  }
}

async function loadHealth() {
  const pill = $("health");
  try {
    const response = await fetch("/health");
    const data = await response.json();
    pill.className = `health-pill ${data.status}`;
    pill.querySelector(".label").textContent = data.status;
    pill.title = Object.entries(data.components).map(([k, v]) => `${k}: ${v}`).join("\n");
  } catch (error) {
    pill.className = "health-pill down";
    pill.querySelector(".label").textContent = "offline";
  }
}

async function operate(button, path, body, describe) {
  button.disabled = true;
  const label = button.textContent;
  button.textContent = "working…";
  try {
    const data = await api(path, { method: "POST", write: true, body });
    logOp(describe(data), "ok");
    await Promise.all([loadModels(), loadMonitor(), loadHealth()]);
    runSearch();
  } catch (error) {
    logOp(`${label} failed: ${error.message}`, "error");
    report(error, `${label} failed`);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

function describeRefresh(data) {
  const r = data.report || {};
  const scored = (r.scored || []).length;
  const already = (r.already_scored || []).length;
  return `refreshed: ${scored} new label(s) scored, ${already} already scored${r.failed && Object.keys(r.failed).length ? `, ${Object.keys(r.failed).length} failed` : ""}`;
}

function describePromotion(data) {
  if (!data.promoted) return `not promoted: ${(data.reasons || []).join("; ") || "gate failed"}`;
  return `champion is now ${data.champion_after} (was ${data.champion_before})`;
}

// Events ------------------------------------------------------------------------------------------

function switchTab(name) {
  state.tab = name;
  for (const tab of document.querySelectorAll(".tab")) {
    const active = tab.dataset.tab === name;
    tab.classList.toggle("active", active);
    tab.setAttribute("aria-selected", active ? "true" : "false");
  }
  for (const panel of ["results", "compare", "snapshots"]) $(`tab-${panel}`).hidden = panel !== name;
  if (name === "compare") runCompare();
  if (name === "snapshots") loadSnapshots();
}

function onKey(event) {
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement;
  if (typing) {
    if (event.key === "Escape") target.blur();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "/") {
    event.preventDefault();
    $("q").focus();
    return;
  }
  if (state.tab !== "results" || !state.hits.length) return;
  if (event.key === "ArrowDown" || event.key === "j") {
    event.preventDefault();
    setFocus(Math.min(state.focus + 1, state.hits.length - 1));
  } else if (event.key === "ArrowUp" || event.key === "k") {
    event.preventDefault();
    setFocus(Math.max(state.focus - 1, 0));
  } else if (/^[0-3]$/.test(event.key) && state.focus >= 0) {
    event.preventDefault();
    rate(state.focus, Number(event.key));
  }
}

let typingTimer = 0;
function bind() {
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(typingTimer);
    $("q").blur(); // Enter hands the keyboard to the results: j/k and 0-3 work at once
    state.q = $("q").value.trim();
    state.offset = 0;
    state.focus = 0;
    runSearch();
  });
  $("q").addEventListener("input", () => {
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      const q = $("q").value.trim();
      if (q === state.q) return;
      state.q = q;
      state.offset = 0;
      state.focus = 0;
      runSearch();
    }, 300);
  });
  $("genre").addEventListener("change", () => { state.genre = $("genre").value; state.offset = 0; runSearch(); });
  $("boost").addEventListener("change", () => { state.boost = $("boost").checked; state.offset = 0; runSearch(); });
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE_SIZE); state.focus = 0; runSearch(); });
  $("next").addEventListener("click", () => { state.offset += PAGE_SIZE; state.focus = 0; runSearch(); });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => switchTab(tab.dataset.tab));
  for (const radio of document.querySelectorAll("input[name=cmp-mode]")) {
    radio.addEventListener("change", () => {
      $("cmp-candidate").disabled = radio.value !== "models" || !radio.checked;
      runCompare();
    });
  }
  $("cmp-run").addEventListener("click", runCompare);
  $("snap-form").addEventListener("submit", saveSnapshot);
  $("snap-diff").addEventListener("click", diffSnapshots);
  $("token").value = token();
  $("token").addEventListener("input", () => sessionStorage.setItem(TOKEN_KEY, $("token").value.trim()));
  $("refresh-btn").addEventListener("click", () => operate($("refresh-btn"), "/api/refresh", undefined, describeRefresh));
  $("promote-btn").addEventListener("click", () => {
    const version = $("promote-version").value;
    if (!version) return;
    operate($("promote-btn"), "/api/models/promote", { version, force: $("promote-force").checked }, describePromotion);
  });
  $("rollback-btn").addEventListener("click", () => operate($("rollback-btn"), "/api/models/rollback", undefined,
    (data) => `rolled back: champion is now ${data.champion_after}`));
  $("health").addEventListener("click", loadHealth);
  document.addEventListener("keydown", onKey);
}

async function loadGenres() {
  try {
    const genres = await api("/api/genres");
    $("genre").replaceChildren(el("option", { value: "", text: "All genres" }),
      ...genres.map((g) => el("option", { value: g, text: g })));
    $("genre").value = state.genre;
  } catch (error) {
    report(error, "genres unavailable");
  }
}

async function main() {
  loadHash();
  bind();
  await Promise.all([loadGenres(), loadTrends()]);
  runSearch();
  loadHealth();
  loadModels();
  loadMonitor();
  setInterval(loadTrends, TREND_REFRESH_MS);
  setInterval(loadHealth, HEALTH_REFRESH_MS);
  document.body.dataset.ready = "true";
}

main();
