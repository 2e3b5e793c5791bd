// A crowd of dashboard viewers, cheap enough to run beside the server it loads (Node's http).
// Each viewer arrives at a random moment in the arrival window, opens the page once, then
// follows its poller (or, for trackio, polls get_logs_batch) at the page's interval until the
// end, obeying Retry-After. Prints one JSON line of latencies, statuses, bytes and own CPU.
//
// node bench/crowd.js --base http://127.0.0.1:PORT --page /projects/P --viewers 100
//      [--arrive 30] [--hold 60] [--host crowd.hf.space] [--mode ours|trackio]
//      [--batch payload.json] [--interval 3.5] [--timeout 15]
"use strict";

const http = require("http");
const zlib = require("zlib");

function options(argv) {
  const out = { arrive: 30, hold: 60, host: "crowd.hf.space", mode: "ours", interval: 3.5,
                timeout: 15 };
  for (let i = 2; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  for (const key of ["viewers", "arrive", "hold", "interval", "timeout"]) out[key] = Number(out[key]);
  return out;
}

const opts = options(process.argv);
const base = new URL(opts.base);
const batch = opts.batch ? require("fs").readFileSync(opts.batch) : null;
const stats = { page: [], poll: [], statuses: {}, errors: 0, timeouts: 0, throttled: 0,
                bytes: 0, pages: 0, polls: 0, updates: 0 };
const started = Date.now();
const cpuStart = process.cpuUsage();
const endAt = started + (opts.arrive + opts.hold) * 1000;

function count(status) { stats.statuses[status] = (stats.statuses[status] || 0) + 1; }

// A browser resends an idempotent request once when the server closed the kept-alive connection
// just as it was reused (Node documents the same: check req.reusedSocket); so does a viewer.
async function request(agent, address, method, path, body) {
  const answer = await send(agent, address, method, path, body);
  return answer.stale ? send(agent, address, method, path, body) : answer;
}

function send(agent, address, method, path, body) {
  return new Promise((resolve) => {
    const headers = { "Host": opts.host, "X-Forwarded-For": address, "X-Forwarded-Host": opts.host,
                      "X-Forwarded-Proto": "https", "Accept-Encoding": "br, gzip",
                      "User-Agent": "crowd" };
    if (body) { headers["Content-Type"] = "application/json"; headers["Content-Length"] = body.length; }
    const t0 = process.hrtime.bigint();
    const req = http.request({ host: base.hostname, port: base.port, method, path, agent, headers },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          const raw = Buffer.concat(chunks);
          stats.bytes += raw.length;
          resolve({ status: res.statusCode, ms, raw, encoding: res.headers["content-encoding"],
                    retry: res.headers["retry-after"] });
        });
        res.on("error", () => resolve({ status: 0, ms: 0 }));
      });
    let timedOut = false;
    req.setTimeout(opts.timeout * 1000, () => { timedOut = true; stats.timeouts += 1; req.destroy(); });
    req.on("error", (err) => resolve({
      status: 0, ms: Number(process.hrtime.bigint() - t0) / 1e6,
      stale: !timedOut && req.reusedSocket && (err.code === "ECONNRESET" || err.code === "EPIPE") }));
    if (body) req.write(body);
    req.end();
  });
}

function decode(answer) {
  return new Promise((resolve) => {
    const done = (err, buf) => resolve(err ? "" : buf.toString("utf8"));
    if (answer.encoding === "br") zlib.brotliDecompress(answer.raw, done);
    else if (answer.encoding === "gzip") zlib.gunzip(answer.raw, done);
    else resolve(answer.raw.toString("utf8"));
  });
}

const POLLER = /id="poller"[^>]*?hx-get="([^"]+)"[^>]*?hx-trigger="every ([0-9.]+)s/;

function poller(text) {
  const m = POLLER.exec(text);
  return m ? { url: m[1].replace(/&amp;/g, "&"), interval: Number(m[2]) } : null;
}

function sleep(ms) { return new Promise((r) => setTimeout(r, Math.max(0, ms))); }

function pauseFor(answer) {
  const value = Number(answer.retry);
  return Number.isFinite(value) && value > 0 ? value * 1000 : 15000;
}

async function viewer(index) {
  await sleep(Math.random() * opts.arrive * 1000);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const address = `10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`;
  let next = null;
  let interval = opts.interval;
  const page = await request(agent, address, "GET", opts.page);
  count(page.status);
  if (page.status === 200) {
    stats.page.push(page.ms);
    stats.pages += 1;
    if (opts.mode === "ours") {
      next = poller(await decode(page));
      if (next) interval = next.interval;
    }
  } else {
    stats.errors += page.status === 429 ? 0 : 1;
    if (page.status === 429) stats.throttled += 1;
  }
  if (opts.mode === "ours" && !next) { agent.destroy(); return; }
  await sleep(Math.random() * interval * 1000);
  while (Date.now() < endAt) {
    const answer = opts.mode === "ours"
      ? await request(agent, address, "GET", next.url)
      : await request(agent, address, "POST", "/api/get_logs_batch", batch);
    count(answer.status);
    stats.polls += 1;
    let wait = interval * 1000;
    if (answer.status === 200 || answer.status === 204) {
      stats.poll.push(answer.ms);
      if (answer.status === 200 && opts.mode === "ours") {
        stats.updates += 1;
        const found = poller(await decode(answer));
        if (found) { next = found; interval = found.interval; wait = interval * 1000; }
      }
    } else if (answer.status === 429 || answer.status === 503) {
      stats.throttled += answer.status === 429 ? 1 : 0;
      wait = pauseFor(answer);
    } else {
      stats.errors += 1;
    }
    await sleep(wait - answer.ms);
  }
  agent.destroy();
}

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

(async () => {
  await Promise.all(Array.from({ length: opts.viewers }, (_, i) => viewer(i)));
  const wall = (Date.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const out = {
    viewers: opts.viewers, mode: opts.mode, wall_s: wall,
    pages: stats.pages, polls: stats.polls, updates: stats.updates,
    page_p50_ms: percentile(stats.page, 0.5), page_p95_ms: percentile(stats.page, 0.95),
    poll_p50_ms: percentile(stats.poll, 0.5), poll_p95_ms: percentile(stats.poll, 0.95),
    errors: stats.errors, timeouts: stats.timeouts, throttled: stats.throttled,
    statuses: stats.statuses, bytes: stats.bytes, bytes_per_s: stats.bytes / wall,
    generator_cpu_s: (cpu.user + cpu.system) / 1e6,
    generator_cores: (cpu.user + cpu.system) / 1e6 / wall,
  };
  process.stdout.write(JSON.stringify(out) + "\n");
})();
