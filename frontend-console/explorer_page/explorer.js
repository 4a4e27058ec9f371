// The fedrollup explorer: renders /api/snapshot (tasks, rounds, stakes, producers, votes, outputs with their L1
// state) and polls /api/audit until the audit's verdict is in. No framework, no network beyond this server.
"use strict";

const COLORS = ["#2f6fdb", "#d9822b", "#1f7a3a", "#a4262c", "#7d4cdb", "#0f8b8d", "#8a6d3b", "#5a6478"];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const short = (text) => (typeof text === "string" && text.startsWith("0x") && text.length > 20
  ? `${text.slice(0, 8)}…${text.slice(-4)}` : String(text));
const pct = (bps) => `${(bps / 100).toFixed(2)}%`;

function row(cells, attrs = {}) {
  return el("tr", attrs, ...cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))));
}

function num(value) {
  return el("td", { class: "num" }, value);
}

function table(headers, rows, id) {
  const body = el("tbody", {}, ...rows);
  return el("table", id ? { id } : {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))), body);
}

// A line chart in SVG: series = [{name, points: [[x, y], …]}], x = rounds, y in [0, yMax].
function lineChart(title, series, yMax, yLabel) {
  const W = 420, H = 220, L = 48, R = 12, T = 24, B = 32;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - y / (yMax || 1)) * (H - T - B);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W);
  svg.setAttribute("height", H);
  const add = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
  };
  add("text", { x: L, y: 14, style: "font-weight:600;fill:#1d2433" }, title);
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    add("line", { x1: L, x2: W - R, y1: Y(y), y2: Y(y), stroke: "#e3e6eb" });
    add("text", { x: L - 4, y: Y(y) + 4, "text-anchor": "end" }, yLabel(y));
  }
  for (let x = x0; x <= x1; x++) add("text", { x: X(x), y: H - B + 16, "text-anchor": "middle" }, `r${x}`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    add("polyline", { points: s.points.map(([x, y]) => `${X(x)},${Y(y)}`).join(" "), fill: "none",
      stroke: color, "stroke-width": 2 });
    for (const [x, y] of s.points) add("circle", { cx: X(x), cy: Y(y), r: 3, fill: color });
  });
  const legend = el("div", { class: "legend" }, ...series.map((s, i) => el("span", {},
    el("i", { style: `background:${COLORS[i % COLORS.length]}` }), s.name)));
  return el("div", { class: "chart" }, svg, legend);
}

const eth = (wei) => Number(BigInt(wei) / 10n ** 12n) / 1e6;

function renderTask(task, snap) {
  const rounds = snap.rounds.filter((r) => r.task === task.task);
  const section = el("section", { id: `task-${task.task}` },
    el("h2", {}, `Task ${task.task} — ${task.state}, ${rounds.length} of ${task.rounds} rounds closed`),
    el("p", { class: "hint" }, `publisher ${task.publisher} · ${task.groups} groups · MAD ${pct(task.mad_bps)} · `
      + `escrow ${task.escrow.text} · privacy: ${task.privacy}`));
  if (rounds.length) {
    const accuracy = [{ name: "global model", points: rounds.map((r) => [r.round, r.global_bps / 100]) },
      { name: "accumulated", points: rounds.map((r) => [r.round, r.accumulated_bps / 100]) }];
    const groups = [...new Set(rounds.flatMap((r) => r.models.map((m) => m.group)))].sort((a, b) => a - b);
    for (const g of groups) {
      accuracy.push({ name: `group ${g} model`, points: rounds.flatMap((r) => r.models
        .filter((m) => m.group === g).map((m) => [r.round, m.bps / 100])) });
    }
    const validators = [...new Set(rounds.flatMap((r) => r.validator_stakes.map((v) => v.address)))];
    const stakes = validators.map((a) => ({ name: `validator ${short(a)}`, points: rounds.flatMap((r) => r
      .validator_stakes.filter((v) => v.address === a).map((v) => [r.round, eth(v.stake.wei)])) }));
    const top = Math.max(0.001, ...stakes.flatMap((s) => s.points.map((p) => p[1])));
    section.append(el("div", { class: "charts" },
      lineChart("accuracy over rounds (the rollup's, on the public test set)", accuracy, 100, (y) => `${y}%`),
      lineChart("validator stakes over rounds (ETH)", stakes, top * 1.1, (y) => y.toFixed(3))));
  }
  const qos = rounds.some((r) => r.cells.length); // a QoS task: each cell's SLA figures from CellCompliance
  section.append(el("h3", {}, "Rounds"), table(
    ["round", "closed (UTC)", "global", "accum.", "group models", "Pos/Neg", "paid to trainers", "validator reward",
      "late or penalised", "elected producer", "escrow left", ...(qos ? ["SLA compliance per cell"] : [])],
    rounds.map((r) => row([num(r.round), new Date(r.timestamp * 1000).toISOString().slice(5, 19).replace("T", " "),
      num(pct(r.global_bps)), num(pct(r.accumulated_bps)),
      r.models.map((m) => `g${m.group} ${pct(m.bps)}`).join(" · ") || "—", num(`${r.positive}/${r.negative}`),
      num(r.trainer_paid.text), r.validator_reward ? `g${r.validator_reward.group} +${r.validator_reward.amount.text}`
        : "—", el("td", { class: "trouble" }, r.trouble.join("; ") || "—"),
      el("td", { class: "addr" }, r.next_producer ? `round ${r.elected_round}: ${short(r.next_producer)}` : "—"),
      num(r.escrow_left.text),
      ...(qos ? [el("td", { class: "cells" }, r.cells.map((c) => c.text).join("; ") || "—")] : [])],
    { "data-round": r.round })), `rounds-${task.task}`));
  const stakes = snap.stakes.filter((s) => s.task === task.task);
  section.append(el("h3", {}, "Participants: stakes (cumulative rewards) after the latest round"), table(
    ["role", "address", "stake"],
    stakes.map((s) => row([s.role, el("td", { class: "addr" }, s.address), num(s.stake.text)])),
    `stakes-${task.task}`));
  const producers = snap.producers.filter((p) => p.task === task.task);
  section.append(el("h3", {}, "Producers (FLPoS) and failovers"), table(["round", "producer", "stake", "why"],
    producers.map((p) => row([num(p.round), el("td", { class: "addr" }, p.producer),
      num(p.stake ? p.stake.text : "—"), p.why]))));
  return section;
}

function render(snap) {
  const c = snap.chain;
  const members = c.members.map((m) => `${m.role || "member"} ${short(m.address)}`).join(", ");
  document.getElementById("chain").textContent = `chain ${c.chain_id} · application ${c.application} · `
    + `${c.consensus === "QUORUM" ? `Quorum of ${c.members.length} (a root settles with ${c.majority}): ${members}`
      : `Authority owned by ${c.members[0]}`} · node ${c.node_rpc_url}`;
  const tasks = document.getElementById("tasks");
  tasks.replaceChildren(...(snap.tasks.length ? snap.tasks.map((t) => renderTask(t, snap))
    : [el("p", {}, "no task on this rollup yet")]));
  document.querySelector("#votes tbody").replaceChildren(...snap.votes.map((v) => row([num(v.epoch),
    `${v.first_block}–${v.last_block}`, el("td", { class: "addr" }, v.accepted_root ? short(v.accepted_root)
      : "not settled"), `${v.in_favour}/${v.members.length} (needs ${v.needs})`,
    v.members.map((m) => `${m.role} ${m.vote}`).join(", ")])));
  document.querySelector("#outputs tbody").replaceChildren(...snap.outputs.map((o) => row([num(o.index),
    num(o.input_index), num(o.epoch_index), o.name,
    el("td", { class: "addr" }, Object.entries(o.fields).map(([k, v]) => `${k}=${short(v)}`).join(", ").slice(0, 160)),
    el("td", { title: o.why }, el("span", { class: `badge ${o.l1}` }, o.l1), o.l1 === "failed" ? ` ${o.why}` : "")],
  { id: `output-${o.index}`, "data-state": o.l1, class: o.l1 })));
}

async function getJson(path) {
  const reply = await fetch(path, { cache: "no-store" });
  const body = await reply.json();
  if (!reply.ok) throw new Error(body.error || reply.statusText);
  return body;
}

async function pollAudit() {
  const banner = document.getElementById("audit");
  try {
    const audit = await getJson("/api/audit");
    banner.className = `banner ${audit.state}`;
    banner.dataset.state = audit.state;
    if (audit.state === "running") {
      setTimeout(pollAudit, 1000);
      return;
    }
    banner.textContent = audit.verdict + (audit.notes && audit.notes.length ? ` (${audit.notes.length} notes)` : "");
    // the audit waited for every epoch to settle: read the outputs' L1 states again
    render(await getJson("/api/snapshot?refresh=1"));
    document.body.dataset.settled = "yes";
  } catch (err) {
    banner.textContent = `the audit's state could not be read: ${err.message}`;
    setTimeout(pollAudit, 2000);
  }
}

async function main() {
  try {
    render(await getJson("/api/snapshot"));
    document.body.dataset.loaded = "yes";
  } catch (err) {
    document.getElementById("chain").textContent = `could not read the rollup: ${err.message}`;
    document.body.dataset.loaded = "error";
  }
  pollAudit();
}

main();
