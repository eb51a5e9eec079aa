// Time to first render of a department's inbox, in Debian's Chromium: a handler of the
// housing bureau opens the inbox (待领, the first 50 by due date) `RUNS` times; each load is a
// fresh navigation, timed by the browser itself (Navigation Timing and Paint Timing).
// Run by the console-inbox bench (tests/e2e), which fills the inbox first:
//   CONSOLE_URL=http://127.0.0.1:PORT/ RUNS=30 node inbox-bench.mjs
// Prints one JSON line: milliseconds at p50, p90 and max for the first byte, the whole
// document and the first contentful paint, and the rows shown.

import { chromium } from "playwright-core";

const BASE = process.env.CONSOLE_URL.replace(/\/$/, "");
const RUNS = Number(process.env.RUNS || 30);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
await page.goto(`${BASE}/sign-in`);
await page.selectOption("#org", "pingcheng.housing");
await page.selectOption("#role", "handler");
await page.fill("#subject", "handler.bench");
await page.click("text=以此身份登录");
await page.waitForURL(`${BASE}/`);

const samples = { firstByte: [], document: [], firstPaint: [] };
let rows = 0;
for (let i = 0; i < RUNS; i++) {
  await page.goto(`${BASE}/inbox?tab=to-claim`, { waitUntil: "load" });
  const t = await page.evaluate(async () => {
    const nav = performance.getEntriesByType("navigation")[0];
    // the paint entry is recorded with the first frame, which may come after "load"
    const paint = await new Promise((done) => {
      new PerformanceObserver((list, observer) => {
        const fcp = list.getEntriesByName("first-contentful-paint")[0];
        if (fcp) { observer.disconnect(); done(fcp); }
      }).observe({ type: "paint", buffered: true });
      setTimeout(() => done(null), 5000);
    });
    return {
      firstByte: nav.responseStart - nav.requestStart,
      document: nav.responseEnd - nav.startTime,
      firstPaint: paint ? paint.startTime : NaN,
      rows: document.querySelectorAll("table.list tbody tr").length,
    };
  });
  samples.firstByte.push(t.firstByte);
  samples.document.push(t.document);
  samples.firstPaint.push(t.firstPaint);
  rows = t.rows;
}
await browser.close();

const at = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 10) / 10;
};
const summary = Object.fromEntries(
  Object.entries(samples).map(([k, xs]) => [k, { p50: at(xs, 0.5), p90: at(xs, 0.9), max: at(xs, 1) }]),
);
console.log(JSON.stringify({ runs: RUNS, rows, ...summary }));
