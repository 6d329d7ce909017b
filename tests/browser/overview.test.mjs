// The live overview and the signals intake as people use them: casectl serve on a
// loopback port, driven in Debian's chromium by playwright-core.  Also the HTML report
// opened from disk (its inline script sorts and filters; no chart label is cut).
// Run by CTest (browser.overview) with CASECTL and CASE_SOURCE_DIR set; a missing
// chromium or playwright-core fails the test (scripts/bootstrap installs both).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CASECTL = process.env.CASECTL;
const SRC = process.env.CASE_SOURCE_DIR;
const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'libcase-browser-'));
const db = path.join(tmp, 'pilot.db');
const env = { ...process.env, CASECTL_STORE: db, CASECTL_NO_PROGRESS: '1' };
const servers = [];
let context, base, reader, signaller, coaOnly;

function casectl(...args) {
  return execFileSync(CASECTL, args, { env, cwd: SRC, encoding: 'utf8' }).trim();
}

async function serve(...extra) {
  const portFile = path.join(tmp, `port-${servers.length}`);
  const child = spawn(CASECTL, ['serve', '--port', '0', '--port-file', portFile,
    '--at', '2023-06-15', ...extra], { env, cwd: SRC, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, sig })));
  servers.push({ child, exited, log: () => log });
  for (let i = 0; i < 200 && !fs.existsSync(portFile); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(fs.existsSync(portFile), `casectl serve did not start: ${log}`);
  const port = fs.readFileSync(portFile, 'utf8').trim();
  assert.match(log, /serving http:\/\/127\.0\.0\.1:/, 'binds to loopback by default');
  return { url: `http://127.0.0.1:${port}`, child, exited };
}

before(async () => {
  assert.ok(CASECTL && SRC, 'CASECTL and CASE_SOURCE_DIR must be set');
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/bootstrap`);
  casectl('init', '--quiet', '--profile', 'ter_apel=lua/locations/ter_apel.lua',
    '--profile', 'budel=lua/locations/budel.lua');
  casectl('load', '--quiet', 'workflows/asielprocedure.yaml', 'workflows/asielprocedure-v2.yaml');
  casectl('import', '--quiet', 'examples/pilot/pilot.jsonl');
  casectl('import', '--quiet', 'examples/pilot/budel.jsonl');
  casectl('tick', '--quiet', '--daily', '--at', '2023-06-15');
  reader = casectl('token', 'create', '--quiet', '--role', 'IND', '--name', 'coordinator',
    '--may', 'read,signal');
  signaller = casectl('token', 'create', '--quiet', '--role', 'COA', '--name', 'coa-budel',
    '--may', 'read,signal');
  coaOnly = casectl('token', 'create', '--quiet', '--role', 'COA', '--name', 'coa-intake');
  assert.match(reader, /^lct_[A-Za-z0-9_-]{43}$/);
  base = (await serve()).url;
  context = await chromium.launchPersistentContext(path.join(tmp, 'chrome'), {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1400, height: 1000 },
  });
});

after(async () => {
  if (context) await context.close();
  for (const s of servers) {
    if (s.child.exitCode === null) s.child.kill('SIGTERM');
    await s.exited;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('every page without a valid token is refused', async () => {
  for (const p of ['/', '/api/report', '/cases.csv', '/signal', '/nope']) {
    const r = await fetch(base + p);
    assert.equal(r.status, 401, `${p} without a token`);
  }
  const r = await fetch(base + '/api/report', { headers: { Authorization: 'Bearer lct_' + 'x'.repeat(43) } });
  assert.equal(r.status, 401);
  assert.match((await r.json()).message, /unknown or revoked/i);
  const page = await context.newPage();
  const resp = await page.goto(base + '/');
  assert.equal(resp.status(), 401);
  assert.match(await page.textContent('#error'), /needs an access token/);
  await page.close();
});

test('sign in, open the overview, filter by location, sort by urgency', async () => {
  const page = await context.newPage();
  await page.goto(base + '/login');
  await page.fill('#token', reader);
  await Promise.all([page.waitForNavigation(), page.click('#sign-in')]);
  assert.equal(new URL(page.url()).pathname, '/');
  assert.equal(await page.textContent('#k-open'), '87'); // 80 in Ter Apel, 7 in Budel
  assert.equal(await page.textContent('#k-overdue'), '57');
  assert.match(await page.textContent('header'), /signed in as coordinator \(IND\)/);
  const rows = () => page.$$eval('#cases tbody tr', (tr) => tr.map((r) => ({
    loc: r.dataset.location, cls: r.className, cells: [...r.cells].map((c) => c.textContent) })));
  assert.equal((await rows()).length, 87);

  // Filter by location: the server answers with Budel's cases only.
  await page.selectOption('#f-location', 'budel');
  await Promise.all([page.waitForNavigation(), page.click('#f-apply')]);
  assert.equal(new URL(page.url()).searchParams.get('location'), 'budel');
  let r = await rows();
  assert.equal(r.length, 7);
  assert.ok(r.every((x) => x.loc === 'budel'));
  // Sorted by urgency (the default): overdue first, then due today, then the rest.
  assert.deepEqual(r.slice(0, 2).map((x) => x.cls), ['overdue', 'due_today']);
  assert.equal(r[0].cells[0], 'BU-0006');
  assert.match(r[0].cells[7], /overdue 1 d/);
  // The key figures follow the filter and say what they are of the whole caseload.
  assert.equal(await page.textContent('#k-open'), '7');
  assert.equal(await page.textContent('#k-overdue'), '1');
  assert.equal(await page.textContent('#k-today'), '1');
  assert.equal(await page.textContent('#k-closed'), '0');
  assert.match(await page.textContent('#k-scope'), /Key figures for the filter: location budel/);
  assert.match(await page.textContent('.kpi.over small'), /0 of them the court's; 57 in all/);
  assert.match(await page.textContent('#terms-summary'), /^1 overdue, of which 0 are the court's.*1 due today.*for the filter/);
  assert.equal(await page.$$eval('#terms-table tbody tr', (t) => t.length), 2);
  // Locations in words in the terms list and the filter, as in the open cases' list.
  assert.match(await page.textContent('#terms-table tbody tr:first-child'), /AC Budel-Cranendonck/);
  assert.equal(await page.textContent('#f-location option[value="budel"]'), 'AC Budel-Cranendonck (7)');

  // Sort by case through the column head, then back to urgency with the form.
  await Promise.all([page.waitForNavigation(), page.click('#cases thead a[data-sort="case"]')]);
  r = await rows();
  assert.deepEqual(r.map((x) => x.cells[0]), [...r.map((x) => x.cells[0])].sort());
  assert.equal(new URL(page.url()).searchParams.get('location'), 'budel', 'the filter stays');
  await page.selectOption('#f-location', '');
  await page.selectOption('#f-sort', 'urgency');
  await Promise.all([page.waitForNavigation(), page.click('#f-apply')]);
  r = await rows();
  assert.equal(r.length, 87);
  assert.equal(await page.textContent('#k-open'), '87', 'no filter: the whole caseload again');
  assert.equal(await page.textContent('#k-overdue'), '57');
  assert.ok(await page.$eval('#k-scope', (e) => e.hidden));
  const rank = { overdue: 0, due_today: 1, due_soon: 2, running: 3, none: 4 };
  const ranks = r.map((x) => rank[x.cls]);
  assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), 'overdue, due today, soon, running, none');
  const firstOverdue = Number(r[0].cells[7].match(/overdue (\d+) d/)[1]);
  const allOverdue = r.filter((x) => x.cls === 'overdue').map((x) => Number(x.cells[7].match(/overdue (\d+) d/)[1]));
  assert.equal(firstOverdue, Math.max(...allOverdue), 'the most overdue first');

  // Court terms are marked in the urgency list.
  assert.equal(await page.$$eval('#terms-table tr.overdue .badge.court', (b) => b.length), 40);
  // The same data as JSON and CSV.
  const json = await (await fetch(base + '/api/report?location=budel', { headers: { Authorization: `Bearer ${reader}` } })).json();
  assert.equal(json.open_cases.length, 7);
  assert.equal(json.by_location.budel.open, 7);
  assert.deepEqual(json.selection, { filtered: true, open: 7, closed: 0, new_last_7_days: 2,
    overdue: 1, court_overdue: 0, due_today: 1, due_soon: 0 });
  assert.equal(json.terms.overdue, 57, 'the summary sections still count every case');
  const csv = await (await fetch(base + '/cases.csv?agency=RECHTBANK', { headers: { Authorization: `Bearer ${reader}` } })).text();
  assert.match(csv.split('\r\n')[0], /^case,workflow,location,procesregisseur,state/);
  await page.close();
});

test('submit a signal with a token and see it in the list', async () => {
  const page = await context.newPage();
  await page.goto(base + '/login');
  await page.fill('#token', signaller);
  await Promise.all([page.waitForNavigation(), page.click('#sign-in')]);
  const before = await page.textContent('#cases tr[data-case="BU-0004"] td:last-child');
  await Promise.all([page.waitForNavigation(), page.click('#signal-link')]);
  await page.fill('#s-case', 'BU-0004');
  await page.selectOption('#s-event', 'incident_gemeld');
  await page.fill('#s-note', 'ruzie bij de balie <b>niet vet</b>');
  await Promise.all([page.waitForNavigation(), page.click('#s-submit')]);
  assert.match(await page.textContent('#notice'), /Signal incident_gemeld on case BU-0004 recorded \(journal row \d+\), sent by coa-budel \(COA\)/);
  await page.goto(base + '/');
  const row = await page.textContent('#signals-table tbody tr:first-child');
  assert.match(row, /BU-0004.*incident_gemeld.*COA.*coa-budel.*ruzie bij de balie <b>niet vet<\/b>/s);
  assert.equal(await page.$$eval('#signals-table b', (b) => b.length), 0, 'the note is text, not HTML');
  const after = await page.textContent('#cases tr[data-case="BU-0004"] td:last-child');
  assert.equal(Number(after), Number(before) + 1);
  // Journalled with the actor and the role.
  const events = casectl('show', '--json', 'BU-0004');
  const hist = JSON.parse(events).history.filter((h) => h.event === 'incident_gemeld');
  assert.equal(hist.at(-1).actor, 'coa-budel');
  assert.equal(hist.at(-1).role, 'COA');

  // A signal the role may not send is refused with a clear message.
  const r = await fetch(base + '/api/signals', {
    method: 'POST', headers: { Authorization: `Bearer ${signaller}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ case: 'BU-0004', event: 'signaal_politie', note: 'x' }) });
  assert.equal(r.status, 403);
  assert.match((await r.json()).message, /role COA may not fire 'signaal_politie'/);
  // Not a signal at all: refused before the case is touched.
  const r2 = await fetch(base + '/api/signals', {
    method: 'POST', headers: { Authorization: `Bearer ${signaller}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ case: 'BU-0004', event: 'ir_afgerond' }) });
  assert.equal(r2.status, 400);
  assert.match((await r2.json()).message, /not a signal/);
  // A signal-only token may not read the overview.
  assert.equal((await fetch(base + '/', { headers: { Authorization: `Bearer ${coaOnly}` } })).status, 403);
  await page.close();
});

test('refuse a signal without a token, with a revoked one, or from another site', async () => {
  const body = JSON.stringify({ case: 'BU-0004', event: 'incident_gemeld', note: 'x' });
  let r = await fetch(base + '/api/signals', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
  assert.equal(r.status, 401);
  // The signal form posted by a browser that is not signed in.
  const anon = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const page = await anon.newPage();
  await page.setContent(`<form method="post" action="${base}/api/signals"><input name="case" value="BU-0004">
    <input name="event" value="incident_gemeld"><button id="go">go</button></form>`);
  const [resp] = await Promise.all([page.waitForNavigation(), page.click('#go')]);
  assert.equal(resp.status(), 401);
  await anon.close();
  // Signed in by cookie, but without the page's form token.
  const ctxPage = await context.newPage();
  await ctxPage.goto(base + '/');
  // (The page's Content-Security-Policy allows no fetch; a form without the token is posted.)
  const [forged] = await Promise.all([ctxPage.waitForNavigation(), ctxPage.evaluate(() => {
    const f = document.createElement('form');
    f.method = 'post';
    f.action = '/api/signals';
    for (const [k, v] of [['case', 'BU-0004'], ['event', 'incident_gemeld']]) {
      const i = document.createElement('input');
      i.name = k;
      i.value = v;
      f.appendChild(i);
    }
    document.body.appendChild(f);
    f.submit();
  })]);
  assert.equal(forged.status(), 403);
  assert.match(await ctxPage.textContent('#error'), /not from this server's signal page/);
  await ctxPage.close();
  // Revoked: refused from then on.
  const t = casectl('token', 'create', '--quiet', '--role', 'COA', '--name', 'coa-tijdelijk');
  r = await fetch(base + '/api/signals', { method: 'POST', headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' }, body });
  assert.equal(r.status, 201);
  casectl('token', 'revoke', '--quiet', 'coa-tijdelijk');
  r = await fetch(base + '/api/signals', { method: 'POST', headers: { Authorization: `Bearer ${t}`, 'Content-Type': 'application/json' }, body });
  assert.equal(r.status, 401);
});

test('bounded: request size and rate', async () => {
  const s = await serve('--rate', '30', '--max-body', '1024');
  const big = JSON.stringify({ case: 'BU-0004', event: 'incident_gemeld', note: 'x'.repeat(2000) });
  const r = await fetch(s.url + '/api/signals', { method: 'POST', headers: { Authorization: `Bearer ${signaller}`, 'Content-Type': 'application/json' }, body: big });
  assert.equal(r.status, 413);
  assert.match((await r.json()).message, /larger than 1024 bytes/);
  // Near 1 MiB (which the server still reads and drops): a 413 with its message, also to a
  // client that sends its body without waiting for 100 Continue (fetch does).
  const near = await fetch(s.url + '/api/signals', { method: 'POST', headers: { Authorization: `Bearer ${signaller}`, 'Content-Type': 'application/json' }, body: 'x'.repeat(1048576 - 16) });
  assert.equal(near.status, 413);
  assert.match((await near.json()).message, /larger than 1024 bytes/);
  // Far over it, from a client that waits for 100 Continue as curl does: the 413 comes
  // instead of the Continue, so not a byte of the 3 MiB is sent.
  const huge = await new Promise((resolve, reject) => {
    const body = 'x'.repeat(3 * 1048576);
    const req = http.request(s.url + '/api/signals', {
      method: 'POST',
      headers: { Authorization: `Bearer ${signaller}`, 'Content-Type': 'application/json', 'Content-Length': body.length, Expect: '100-continue' },
    });
    let continued = false;
    req.on('continue', () => { continued = true; req.end(body); });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => { resolve({ status: res.statusCode, continued, text }); req.destroy(); });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
  assert.equal(huge.status, 413);
  assert.equal(huge.continued, false, 'the server asked for none of the body');
  assert.match(JSON.parse(huge.text).message, /larger than 1024 bytes/);
  const codes = [];
  for (let i = 0; i < 40; i++) {
    const x = await fetch(s.url + '/api/report', { headers: { Authorization: `Bearer ${reader}` } });
    await x.arrayBuffer(); // read, so the connection is reused (16 per address at most)
    codes.push(x.status);
  }
  assert.ok(codes.slice(0, 25).every((c) => c === 200), codes.join(' '));
  assert.ok(codes.includes(429), 'over the rate: 429');
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a store error shows a clear page, never a crash', async () => {
  // Another writer holds the write lock: a signal waits the busy timeout, then a clear 503.
  const lock = spawn('sqlite3', [db], { stdio: ['pipe', 'ignore', 'inherit'] });
  lock.stdin.write('BEGIN IMMEDIATE;\nUPDATE cases SET created = created WHERE id = \'BU-0004\';\n');
  await new Promise((r) => setTimeout(r, 500));
  const body = JSON.stringify({ case: 'BU-0004', event: 'incident_gemeld', note: 'tijdens het slot' });
  let r = await fetch(base + '/api/signals', { method: 'POST', headers: { Authorization: `Bearer ${signaller}`, 'Content-Type': 'application/json' }, body });
  assert.equal(r.status, 503);
  assert.match((await r.json()).message, /busy|locked/i);
  lock.stdin.end();
  await new Promise((res) => lock.on('exit', res));
  r = await fetch(base + '/api/signals', { method: 'POST', headers: { Authorization: `Bearer ${signaller}`, 'Content-Type': 'application/json' }, body });
  assert.equal(r.status, 201, 'served again once the lock is gone');

  // The file is overwritten with garbage under the running server.
  const size = fs.statSync(db).size;
  const fd = fs.openSync(db, 'r+');
  fs.writeSync(fd, Buffer.alloc(size, 0x5a), 0, size, 0);
  fs.closeSync(fd);
  for (const f of [db + '-wal']) if (fs.existsSync(f)) fs.truncateSync(f, 0);
  const page = await context.newPage();
  const resp = await page.goto(base + '/?sort=days');
  assert.ok([401, 503].includes(resp.status()), `status ${resp.status()}`);
  if (resp.status() === 503) assert.match(await page.textContent('#error'), /The store cannot be read/);
  await page.close();
  r = await fetch(base + '/api/report?sort=case', { headers: { Authorization: `Bearer ${reader}` } });
  assert.ok([401, 503].includes(r.status));
  assert.equal(servers[0].child.exitCode, null, 'the server is still running');
});

test('the HTML report from disk: its script filters, no chart label is cut', async () => {
  const dir = fs.mkdtempSync(path.join(tmp, 'file-'));
  const fresh = path.join(dir, 's.db');
  const e2 = { ...env, CASECTL_STORE: fresh };
  const run = (...a) => execFileSync(CASECTL, a, { env: e2, cwd: SRC, encoding: 'utf8' });
  run('init', '--quiet', '--profile', 'ter_apel=lua/locations/ter_apel.lua', '--profile', 'budel=lua/locations/budel.lua');
  run('load', '--quiet', 'workflows/asielprocedure.yaml', 'workflows/asielprocedure-v2.yaml');
  run('import', '--quiet', 'examples/pilot/pilot.jsonl');
  run('import', '--quiet', 'examples/pilot/budel.jsonl');
  run('tick', '--quiet', '--daily', '--at', '2023-06-15');
  const file = path.join(dir, 'report.html');
  run('report', '--quiet', '--at', '2023-06-15', '--format', 'html', '-o', file);
  const page = await context.newPage();
  await page.goto('file://' + file);
  await page.selectOption('#f-location', 'budel');
  const visible = await page.$$eval('#cases tbody tr', (tr) => tr.filter((r) => !r.hidden).map((r) => r.dataset.location));
  assert.equal(visible.length, 7);
  assert.ok(visible.every((l) => l === 'budel'));
  assert.equal(await page.textContent('#shown'), '7');
  // The file cannot recount the terms: it says its key figures are the whole caseload's.
  assert.ok(!(await page.$eval('#k-scope', (e) => e.hidden)));
  assert.match(await page.textContent('#k-scope'), /whole caseload/);
  await page.selectOption('#f-location', '');
  assert.ok(await page.$eval('#k-scope', (e) => e.hidden));
  await page.click('#cases thead a[data-sort="case"]');
  const ids = await page.$$eval('#cases tbody tr', (tr) => tr.map((r) => r.dataset.case));
  assert.deepEqual(ids, [...ids].sort());
  // Every text of every chart lies inside its chart, and the charts use the page's width.
  const cut = await page.$$eval('svg.chart', (svgs) => svgs.flatMap((s) => {
    const box = s.getBoundingClientRect();
    return [...s.querySelectorAll('text')].map((t) => ({ id: s.id, text: t.textContent, r: t.getBoundingClientRect(), box }))
      .filter(({ r, box: b }) => r.left < b.left - 1 || r.right > b.right + 1 || r.top < b.top - 1 || r.bottom > b.bottom + 1)
      .map(({ id, text }) => `${id}: ${text}`);
  }));
  assert.deepEqual(cut, [], 'labels outside their chart');
  const widths = await page.$$eval('svg.chart', (svgs) => svgs.map((s) => s.getBoundingClientRect().width));
  const main = await page.$eval('main', (m) => m.clientWidth);
  assert.ok(widths.every((w) => w > 0.8 * Math.min(main, 1000)), `chart widths ${widths} of ${main}`);
  // Legend entries do not overlap.
  const overlaps = await page.$$eval('svg.chart', (svgs) => svgs.flatMap((s) => {
    const t = [...s.querySelectorAll('text')].filter((x) => x.previousElementSibling && x.previousElementSibling.tagName === 'rect' && x.getAttribute('y') === '16');
    const out = [];
    for (let i = 1; i < t.length; i++) if (t[i - 1].getBoundingClientRect().right > t[i].getBoundingClientRect().left) out.push(`${s.id}: ${t[i].textContent}`);
    return out;
  }));
  assert.deepEqual(overlaps, []);
  await page.close();
});
