// One case walked through the console in Debian's Chromium, as the people who work it would:
// a clerk registers it at the window, the housing bureau's handler finds it in the inbox,
// accepts it and replies in writing, the petitioner looks it up with the query code and rates
// it, the supervisor opens the due board, and the director sees it counted. Every screen is
// photographed (PNG) and checked with axe-core; a serious or critical violation fails the walk.
// The accused organ's handler is shown nothing of an accusation against it (Art. 30 ¶3).
//
// Run by services/suite/tests/console.rs against a suite it started:
//   CONSOLE_URL=http://127.0.0.1:PORT/ SHOTS=dir node walk.mjs
// It prints one JSON line at the end: the case number and what each screen showed.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const BASE = process.env.CONSOLE_URL.replace(/\/$/, "");
const SHOTS = process.env.SHOTS;
const PATIENCE_MS = 30_000;
mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const seen = { screens: [] };
const pages = [];

// A failure leaves a picture of every page open, to see what the person saw.
process.on("uncaughtException", async (e) => {
  console.error(e);
  for (const [i, p] of pages.entries()) {
    await p.screenshot({ path: `${SHOTS}/failed-${i}.png`, fullPage: true }).catch(() => {});
    console.error(`page ${i}: ${p.url()}`);
  }
  await browser.close();
  process.exit(1);
});

// A person of their own: their own cookies, a desktop or a phone-sized screen. The console's
// CSP allows only its own scripts; axe is put in by the test, so CSP is bypassed for that.
async function person(phone = false) {
  const context = await browser.newContext({
    bypassCSP: true,
    acceptDownloads: true,
    viewport: phone ? { width: 390, height: 844 } : { width: 1280, height: 900 },
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
  });
  const page = await context.newPage();
  pages.push(page);
  return page;
}

// The screen as it is: a full-page PNG, and axe-core's WCAG 2 A/AA rules, none serious.
async function screen(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join("; ")})`),
    [],
    `axe on ${name}`,
  );
  seen.screens.push({ name, violations: result.violations.length, passes: result.passes.length });
}

async function signIn(page, org, role, subject) {
  await page.goto(`${BASE}/sign-in`);
  await page.selectOption("#org", org);
  await page.selectOption("#role", role);
  await page.fill("#subject", subject);
  await page.click("text=以此身份登录");
  await page.waitForURL(`${BASE}/`);
}

// Sends the petition form and waits for the page that answers it (the receipt, or the form
// again with warnings or a refusal).
async function send(page) {
  await Promise.all([page.waitForNavigation(), page.click("form.petition button[type=submit]")]);
}

// Reloads `url` until `check` holds: the pipeline carries a step between services a moment
// after the page that caused it.
async function until(page, url, check, what) {
  const end = Date.now() + PATIENCE_MS;
  for (;;) {
    await page.goto(url);
    if (await check()) return;
    if (Date.now() > end) throw new Error(`waited ${PATIENCE_MS} ms for ${what}`);
    await page.waitForTimeout(200);
  }
}

// --- the clerk at the window -------------------------------------------------------------
const clerk = await person();
await signIn(clerk, "pingcheng.bureau", "clerk", "clerk.wang");
await screen(clerk, "home-clerk");
await clerk.click("nav >> text=登记");
await clerk.selectOption("#channel", { label: "走访" });
await clerk.fill("#p_name_1", "赵敏");
// a mistyped check digit is caught as the clerk types
await clerk.locator("#p_id_1").pressSequentially("140213198807150028");
await clerk.waitForSelector("#p_id_1_note.bad");
seen.wrongId = await clerk.textContent("#p_id_1_note");
await clerk.fill("#p_id_1", "");
await clerk.locator("#p_id_1").pressSequentially("140213198807150027");
await clerk.waitForSelector("#p_id_1_note.ok");
seen.rightId = await clerk.textContent("#p_id_1_note");
await clerk.fill("#p_phone_1", "13912345678");
await clerk.fill("#people_present", "1");
await clerk.selectOption("#category", "01.01");
await clerk.selectOption("#location", "140213001");
await clerk.fill("#title", "小区楼顶漏水无人维修");
await clerk.fill("#content", "北关街道某小区3号楼楼顶漏水半年，物业与开发商互相推诿，请求责成维修。");
await screen(clerk, "intake-form");
await send(clerk);
assert.equal(await clerk.locator("section.warnings").count(), 0, "a first petition warns of nothing");
assert.equal(clerk.url(), `${BASE}/register/receipt`);
const caseNumber = (await clerk.textContent("#case-number")).trim();
const queryCode = (await clerk.textContent("#query-code")).trim();
assert.match(caseNumber, /^140213-\d{4}-\d{6}$/);
assert.match(queryCode, /^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
await screen(clerk, "receipt");
seen.caseNumber = caseNumber;

// The same petitioner on the same matter again: the window warns before saving.
await clerk.goto(`${BASE}/register`);
await clerk.selectOption("#channel", { label: "电话" });
await clerk.fill("#p_name_1", "赵敏");
await clerk.fill("#p_id_1", "140213198807150027");
await clerk.selectOption("#category", "01.01");
await clerk.selectOption("#location", "140213001");
await clerk.fill("#title", "再次反映楼顶漏水");
await clerk.fill("#content", "再次反映：楼顶漏水仍未维修。");
await send(clerk);
await clerk.waitForSelector("section.warnings");
seen.warnings = (await clerk.textContent("section.warnings")).replace(/\s+/g, " ").trim();
assert.match(seen.warnings, /重复信访/);
await screen(clerk, "intake-warnings");

// --- the housing bureau's handler --------------------------------------------------------
const handler = await person();
await signIn(handler, "pingcheng.housing", "handler", "handler.li");
await until(
  handler,
  `${BASE}/inbox?tab=to-claim`,
  async () => (await handler.locator(`text=${caseNumber}`).count()) > 0,
  `${caseNumber} in the housing bureau's inbox`,
);
await screen(handler, "inbox");
await handler.click(`text=${caseNumber}`);
await handler.waitForSelector("#accept");
await screen(handler, "case-to-claim");
await handler.focus("#accept");
await handler.keyboard.press("Enter");
await handler.waitForSelector("p.flash.done");
const caseUrl = handler.url();
// a survey will take time: the handler asks for 10 more days, the bureau agrees (Art. 34)
await handler.click("summary >> text=申请延期");
await handler.fill("#ext-days", "10");
await handler.fill("#ext-reason", "需委托第三方检测屋面防水层，检测周期约两周。");
await handler.click("form[action$='/extension'] button");
await handler.waitForSelector("p.flash.done");
const desk = await person();
await signIn(desk, "pingcheng.bureau", "supervisor", "supervisor.zhou");
await until(desk, caseUrl, async () => (await desk.locator("#approve-extension").count()) > 0, "the extension request on the bureau's case page");
await desk.fill("#decision-reason", "检测确需时间，同意延长10日。");
await desk.click("#approve-extension");
await desk.waitForSelector("p.flash.done");
await screen(desk, "case-extension-decided");
await until(
  handler,
  caseUrl,
  async () => (await handler.locator("ol.steps >> text=延期审批").count()) > 0,
  "the approved extension among the case's steps",
);
await handler.waitForSelector("#reply");
await handler.selectOption("#outcome", { label: "支持" });
await handler.fill("#reply-text", "经核查，已责成开发商于三十日内完成楼顶防水维修，物业负责监督。");
await handler.fill("#legal-basis", "《物业管理条例》第三十一条");
await handler.click("#reply");
await handler.waitForSelector("p.flash.done");
seen.handlerState = (await handler.textContent("#assignment-state")).trim();
await screen(handler, "case-answered");

// --- the petitioner, on a phone ----------------------------------------------------------
const petitioner = await person(true);
await petitioner.goto(`${BASE}/query`);
await screen(petitioner, "query");
// by keyboard alone: the first Tab reaches the skip link, which leads into the page, the
// next Tab to the code's field, and Enter sends the form
await petitioner.keyboard.press("Tab");
assert.equal(await petitioner.evaluate(() => document.activeElement.textContent), "跳到正文");
await petitioner.keyboard.press("Enter");
await petitioner.keyboard.press("Tab");
assert.equal(await petitioner.evaluate(() => document.activeElement.id), "query_code");
await petitioner.keyboard.type(queryCode.toLowerCase());
await petitioner.keyboard.press("Enter");
await petitioner.waitForURL(`${BASE}/query/case`);
await until(
  petitioner,
  `${BASE}/query/case`,
  async () => (await petitioner.locator("#rate").count()) > 0,
  "the written reply on the petitioner's page",
);
seen.reply = (await petitioner.textContent("#reply-text")).trim();
assert.match(seen.reply, /楼顶防水维修/);
await screen(petitioner, "petitioner-answered");
await petitioner.selectOption("#bureau", { label: "满意" });
await petitioner.selectOption("#organ", { label: "基本满意" });
await petitioner.click("#rate");
await petitioner.waitForSelector("p.flash.done");
await until(
  petitioner,
  `${BASE}/query/case`,
  async () => (await petitioner.locator("ol.steps >> text=满意度评价").count()) > 0,
  "the rating among the steps",
);
await screen(petitioner, "petitioner-rated");
// a wrong code is told so, without a case
await petitioner.goto(`${BASE}/query`);
await petitioner.fill("#query_code", "AAAA-BBBB-CCCC");
await petitioner.click("form.query button");
await petitioner.waitForSelector("p.flash.refused");

// --- the accused organ sees nothing of an accusation against it (Art. 30 ¶3) --------------
await clerk.goto(`${BASE}/register`);
await clerk.selectOption("#channel", { label: "书信" });
await clerk.fill("#p_name_1", "钱伟");
await clerk.fill("#p_id_1", "140213197502030011");
await clerk.selectOption("#category", "09.01");
await clerk.selectOption("#location", "140213001");
await clerk.fill("#title", "反映住建局工作人员吃拿卡要");
await clerk.fill("#content", "住建局某科室工作人员在办理房屋登记时索要好处费。");
await clerk.fill("#accused_name", "孙某");
await clerk.selectOption("#accused_organ", "pingcheng.housing");
await send(clerk);
if (await clerk.locator("section.warnings").count()) {
  await send(clerk);
}
assert.equal(clerk.url(), `${BASE}/register/receipt`);
const accusation = (await clerk.textContent("#case-number")).trim();
seen.accusation = accusation;
for (const tab of ["to-claim", "in-hand", "overdue"]) {
  await handler.goto(`${BASE}/inbox?tab=${tab}`);
  assert.equal(await handler.locator(`text=${accusation}`).count(), 0, `accusation in ${tab}`);
}

// --- the director ----------------------------------------------------------------------------
const director = await person();
await signIn(director, "pingcheng.bureau", "leader", "director.chen");
await until(
  director,
  `${BASE}/situation`,
  async () => {
    const rated = director.locator("tr[data-organ='pingcheng.housing'] td.rated");
    return (
      (await rated.count()) > 0 &&
      /\(1\/1\)/.test(await rated.textContent()) &&
      Number(await director.textContent("#cases")) >= 2
    );
  },
  "the housing bureau's rating counted on the situation page",
);
seen.cases = Number((await director.textContent("#cases")).trim());
seen.housingRated = (await director.textContent("tr[data-organ='pingcheng.housing'] td.rated")).trim();
seen.housingSatisfied = (await director.textContent("tr[data-organ='pingcheng.housing'] td.satisfied")).trim();
// the petition and the accusation; the warned-of repeat was never saved
assert.equal(seen.cases, 2, "cases counted this month");
await screen(director, "situation");
const [download] = await Promise.all([
  director.waitForEvent("download"),
  director.click("text=下载分析报告"),
]);
seen.report = download.suggestedFilename();
assert.match(seen.report, /\.html$/);

// --- an organ objects that a case is not its own; the bureau agrees and sends it on -------------
await clerk.goto(`${BASE}/register`);
await clerk.selectOption("#channel", { label: "书信" });
await clerk.fill("#p_name_1", "周强");
await clerk.fill("#p_id_1", "140213197502030011");
await clerk.selectOption("#category", "01.01");
await clerk.selectOption("#location", "140213003");
await clerk.fill("#title", "小区门口道路破损");
await clerk.fill("#content", "新华街小区门口道路破损，雨天积水，请求修缮。");
await send(clerk);
if (await clerk.locator("section.warnings").count()) {
  await send(clerk);
}
assert.equal(clerk.url(), `${BASE}/register/receipt`);
const objected = (await clerk.textContent("#case-number")).trim();
await until(
  handler,
  `${BASE}/inbox?tab=to-claim`,
  async () => (await handler.locator(`text=${objected}`).count()) > 0,
  `${objected} in the housing bureau's inbox`,
);
await handler.click(`text=${objected}`);
const objectedUrl = handler.url();
await handler.click("summary >> text=提出异议");
await handler.fill("#object-reason", "道路养护属街道办事处职责，非本局受理范围。");
await handler.click("form[action$='/object'] button");
await handler.waitForSelector("p.flash.done");
await until(desk, objectedUrl, async () => (await desk.locator("#objection-answer").count()) > 0, "the objection on the bureau's case page");
await desk.selectOption("#new-organ", "pingcheng.street.xinhuajie");
await desk.fill("#objection-answer", "同意，改交新华街街道办事处办理。");
await screen(desk, "case-objection");
await desk.click("form[action$='/resolve-objection'] button[value=yes]");
await desk.waitForSelector("p.flash.done");
await until(
  desk,
  objectedUrl,
  async () => /新华街/.test(await desk.textContent("dl.facts")),
  "the case with the street office",
);
seen.objectedNowWith = (await desk.textContent("dl.facts")).includes("新华街街道办事处");

// --- the supervisor's due board, as time passes ---------------------------------------------
// A third petition, left unclaimed by the street office it goes to: 13 days on, its 15-day
// notice limit (Art. 23 ¶3) is due soon; 20 days on (its last day, Sun 12-13, moves to the
// Monday) it is overdue and urged (催办). The test moves the suite's simulated clock
// through its admin port.
await clerk.goto(`${BASE}/register`);
await clerk.selectOption("#channel", { label: "网上信访" });
await clerk.fill("#p_name_1", "孙丽");
await clerk.fill("#p_id_1", "140213199001010011");
await clerk.selectOption("#category", "01.05");
await clerk.selectOption("#location", "140213002");
await clerk.fill("#title", "物业费上涨未经业主大会");
await clerk.fill("#content", "物业公司擅自上调物业费，未经业主大会表决。");
await send(clerk);
assert.equal(clerk.url(), `${BASE}/register/receipt`);
const unclaimed = (await clerk.textContent("#case-number")).trim();
seen.unclaimed = unclaimed;
const supervisor = desk;
const advance = async (days) => {
  const to = new Date(Date.parse(process.env.CLOCK_START) + days * 86_400_000).toISOString();
  const r = await fetch(`${process.env.ADMIN_URL}/clock/advance?to=${encodeURIComponent(to)}`, { method: "POST" });
  assert.equal(r.status, 200, `the clock moves ${days} days`);
};
if (process.env.ADMIN_URL) {
  await advance(13);
  await until(
    supervisor,
    `${BASE}/board`,
    async () => (await supervisor.locator(`section[aria-labelledby=soon-h] >> text=${unclaimed}`).count()) > 0,
    `${unclaimed} due soon on the board`,
  );
  await screen(supervisor, "board-due-soon");
  await advance(20);
  await until(
    supervisor,
    `${BASE}/board`,
    async () =>
      (await supervisor.locator(`section[aria-labelledby=overdue-h] >> text=${unclaimed}`).count()) > 0 &&
      (await supervisor.locator("section[aria-labelledby=notices-h] >> text=催办").count()) > 0,
    `${unclaimed} overdue and urged on the board`,
  );
  seen.board = (await supervisor.textContent("section[aria-labelledby=overdue-h]")).replace(/\s+/g, " ").trim();
} else {
  await supervisor.goto(`${BASE}/board`);
}
await screen(supervisor, "board");

// --- the same form on a phone ----------------------------------------------------------------
const phoneClerk = await person(true);
await signIn(phoneClerk, "pingcheng.bureau", "clerk", "clerk.wang");
await phoneClerk.goto(`${BASE}/register`);
await screen(phoneClerk, "intake-form-phone");
const overflow = await phoneClerk.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
assert.equal(overflow, false, "the intake form fits a phone's width");

await browser.close();
console.log(JSON.stringify(seen));
