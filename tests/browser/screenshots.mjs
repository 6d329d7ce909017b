// Screenshots of the live overview for docs/ (scripts/screenshots runs this).
// usage: node screenshots.mjs URL READ_TOKEN SIGNAL_TOKEN OUTDIR
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [url, token, signalToken, out] = process.argv.slice(2);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libcase-shots-'));
const context = await chromium.launchPersistentContext(dir, {
  executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1400, height: 900 },
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--hide-scrollbars', '--font-render-hinting=none'],
});
try {
  const page = await context.newPage();
  await page.goto(url + '/login');
  await page.fill('#token', token);
  await Promise.all([page.waitForNavigation(), page.click('#sign-in')]);
  const shots = [
    ['overview.png', null],            // the top of the page: key figures and open cases
    ['overview-terms.png', '#s-terms'],
    ['overview-locations.png', '#s-locations'],
    ['overview-trends.png', '#s-trends'],
    ['overview-caseload.png', '#s-caseload'],
  ];
  for (const [name, sel] of shots) {
    const file = path.join(out, name);
    if (sel) await page.locator(sel).screenshot({ path: file });
    else await page.screenshot({ path: file, clip: { x: 0, y: 0, width: 1400, height: 900 } });
    console.log('wrote ' + file);
  }
  await page.goto(url + '/?location=budel&sort=urgency');
  await page.screenshot({ path: path.join(out, 'overview-budel.png'), clip: { x: 0, y: 0, width: 1400, height: 700 } });
  console.log('wrote ' + path.join(out, 'overview-budel.png'));
  // The signal form as the police sees it (a token that may only send signals).
  await page.click('#logout');
  await page.fill('#token', signalToken);
  await Promise.all([page.waitForNavigation(), page.click('#sign-in')]);
  await page.fill('#s-case', 'BU-0004');
  await page.fill('#s-note', 'ruzie bij de balie');
  await page.screenshot({ path: path.join(out, 'signal.png'), clip: { x: 0, y: 0, width: 1400, height: 420 } });
  console.log('wrote ' + path.join(out, 'signal.png'));
} finally {
  await context.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
