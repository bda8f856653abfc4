// End-to-end browser flow against Lockbox's HTTPS door, in headless Debian Chromium driven by playwright-core.
// Run by crates/lockbox/tests/suite/web_browser.rs (which starts the server and creates the users); runnable by hand:
//
//   LOCKBOX_E2E_BASE=https://127.0.0.1:PORT \
//   LOCKBOX_E2E_PARTNER_USER=alice LOCKBOX_E2E_PARTNER_PASSWORD=... \
//   LOCKBOX_E2E_ADMIN_USER=root-admin LOCKBOX_E2E_ADMIN_PASSWORD=... \
//   LOCKBOX_E2E_UPLOAD=/path/to/50MiB.bin LOCKBOX_E2E_ARTIFACTS=/tmp/shots LOCKBOX_E2E_DOWNLOADS=/tmp/dl \
//   node crates/lockbox/tests/e2e/browser_flow.mjs
//
// Optional: LOCKBOX_E2E_CHROMIUM (default /usr/bin/chromium), LOCKBOX_E2E_TIMEOUT_MS (default 240000).
//
// Every wait is bounded. Any failure prints what was expected, the current URL, the page text and recent browser
// events, saves a screenshot `web-FAIL-<step>.png` in the artifacts directory and exits with status 1.
// On success the last line is `E2E_RESULT {json}`.

import { createHash, createHmac } from 'node:crypto';
import { createReadStream, mkdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';

// ------------------------------------------------------------------------------------------------------------------
// Configuration
// ------------------------------------------------------------------------------------------------------------------

function env(name) {
    const v = process.env[name];
    if (v === undefined || v === '') {
        console.error(`e2e: missing environment variable ${name}`);
        process.exit(2);
    }
    return v;
}

const BASE = env('LOCKBOX_E2E_BASE').replace(/\/+$/, '');
const PARTNER = { user: env('LOCKBOX_E2E_PARTNER_USER'), password: env('LOCKBOX_E2E_PARTNER_PASSWORD') };
const ADMIN = { user: env('LOCKBOX_E2E_ADMIN_USER'), password: env('LOCKBOX_E2E_ADMIN_PASSWORD') };
const UPLOAD = env('LOCKBOX_E2E_UPLOAD');
const ARTIFACTS = env('LOCKBOX_E2E_ARTIFACTS');
const DOWNLOADS = env('LOCKBOX_E2E_DOWNLOADS');
const CHROMIUM = process.env.LOCKBOX_E2E_CHROMIUM || '/usr/bin/chromium';
const OVERALL_MS = Number(process.env.LOCKBOX_E2E_TIMEOUT_MS || 240_000);

const WAIT_MS = 30_000; // any single element / navigation wait
const UPLOAD_MS = 150_000; // the whole 50 MiB upload
const DOWNLOAD_MS = 90_000; // the whole 50 MiB download

const CHROMIUM_ARGS = [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
];

mkdirSync(ARTIFACTS, { recursive: true });
mkdirSync(DOWNLOADS, { recursive: true });

// ------------------------------------------------------------------------------------------------------------------
// Logging and failure
// ------------------------------------------------------------------------------------------------------------------

const t0 = Date.now();
const since = () => ((Date.now() - t0) / 1000).toFixed(1);
const log = (msg) => console.log(`[e2e +${since()}s] ${msg}`);

let browser = null;
let currentPage = null; // the page a failure screenshot is taken of
let currentStep = 'start';
const events = []; // recent browser events (console errors, failed requests, HTTP errors), printed on failure

function remember(line) {
    events.push(`+${since()}s ${line}`);
    if (events.length > 60) events.shift();
}

class E2EFailure extends Error {}

/** Fails the current step with a clear message. */
function fail(message) {
    throw new E2EFailure(message);
}

function check(cond, message) {
    if (!cond) fail(message);
}

/** Runs `fn` with a time limit; on expiry fails with `what`. */
async function bounded(ms, what, fn) {
    let timer;
    const limit = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new E2EFailure(`timed out after ${ms / 1000} s: ${what}`)), ms);
    });
    try {
        return await Promise.race([fn(), limit]);
    } finally {
        clearTimeout(timer);
    }
}

let failing = false;
async function die(err) {
    if (failing) return;
    failing = true;
    const msg = err instanceof E2EFailure ? err.message : err && err.stack ? err.stack : String(err);
    console.error(`\n[e2e] FAILED in step "${currentStep}": ${msg}`);
    const page = currentPage;
    if (page && !page.isClosed()) {
        const safe = currentStep.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');
        const shot = join(ARTIFACTS, `web-FAIL-${safe}.png`);
        try {
            console.error(`[e2e] page URL: ${page.url()}`);
            const text = await bounded(5_000, 'page text', () => page.locator('body').innerText({ timeout: 5_000 }));
            console.error(`[e2e] page text (first 3000 chars):\n${String(text).slice(0, 3000)}`);
        } catch (e) {
            console.error(`[e2e] (could not read the page text: ${e.message})`);
        }
        try {
            await bounded(15_000, 'failure screenshot', () => page.screenshot({ path: shot, fullPage: true, timeout: 15_000 }));
            console.error(`[e2e] screenshot: ${shot}`);
        } catch (e) {
            console.error(`[e2e] (could not take a screenshot: ${e.message})`);
        }
    }
    if (events.length) console.error(`[e2e] recent browser events:\n  ${events.join('\n  ')}`);
    try {
        if (browser) await bounded(10_000, 'browser close', () => browser.close());
    } catch {
        // exiting anyway
    }
    process.exit(1);
}

process.on('unhandledRejection', (e) => die(e));
process.on('uncaughtException', (e) => die(e));
const overall = setTimeout(
    () => die(new E2EFailure(`overall time limit of ${OVERALL_MS / 1000} s exceeded`)),
    OVERALL_MS,
);

async function step(name, fn) {
    currentStep = name;
    log(`step: ${name}`);
    return fn();
}

// ------------------------------------------------------------------------------------------------------------------
// RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps)
// ------------------------------------------------------------------------------------------------------------------

function base32decode(s) {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const clean = s.toUpperCase().replace(/=+$/, '');
    let bits = 0;
    let value = 0;
    const out = [];
    for (const c of clean) {
        const i = alphabet.indexOf(c);
        if (i < 0) fail(`TOTP secret contains a character that is not base32: ${JSON.stringify(c)}`);
        value = (value << 5) | i;
        bits += 5;
        if (bits >= 8) {
            out.push((value >>> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    return Buffer.from(out);
}

const stepAt = (ms) => Math.floor(ms / 1000 / 30);

function hotp(key, counter) {
    const msg = Buffer.alloc(8);
    msg.writeBigUInt64BE(BigInt(counter));
    const mac = createHmac('sha1', key).update(msg).digest();
    const off = mac[mac.length - 1] & 0x0f;
    const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
    return String(bin % 1_000_000).padStart(6, '0');
}

// Self-check against RFC 6238 appendix B (SHA-1, T = 59 s -> 94287082, last 6 digits).
if (hotp(Buffer.from('12345678901234567890'), stepAt(59_000)) !== '287082') {
    console.error('e2e: TOTP implementation failed the RFC 6238 test vector');
    process.exit(2);
}

// ------------------------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------------------------

function sha256File(path) {
    return new Promise((resolve, reject) => {
        const h = createHash('sha256');
        createReadStream(path)
            .on('data', (d) => h.update(d))
            .on('end', () => resolve(h.digest('hex')))
            .on('error', reject);
    });
}

async function shot(page, name) {
    const path = join(ARTIFACTS, name);
    await page.screenshot({ path, fullPage: true, timeout: WAIT_MS });
    log(`screenshot ${path}`);
}

function watch(page, label) {
    page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') remember(`[${label}] console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => remember(`[${label}] page error: ${e.message}`));
    page.on('requestfailed', (r) =>
        remember(`[${label}] request failed: ${r.method()} ${r.url()} (${r.failure()?.errorText})`),
    );
    page.on('response', (r) => {
        if (r.status() >= 400) remember(`[${label}] HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
    });
}

async function newPage(label) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS);
    const page = await context.newPage();
    watch(page, label);
    return page;
}

const escapeRegex = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const pathOf = (page) => new URL(page.url()).pathname;

/** Waits until the page's URL satisfies `pred` (a function of URL) and the page has loaded. */
async function waitForPath(page, pred, expected) {
    try {
        await page.waitForURL((u) => pred(u), { timeout: WAIT_MS });
    } catch {
        fail(`expected to arrive at ${expected}, but the page stayed at ${page.url()}`);
    }
}

async function gotoOk(page, path) {
    const r = await page.goto(BASE + path);
    check(r, `no response for ${path}`);
    return r;
}

/** Fills the login form and submits it; returns the path the server sent the browser to. */
async function submitLogin(page, who) {
    const r = await gotoOk(page, '/login');
    check(r.status() === 200, `GET /login answered HTTP ${r.status()}, expected 200`);
    await page.fill('#user', who.user);
    await page.fill('#password', who.password);
    await page.click('#login-submit');
    await waitForPath(page, (u) => u.pathname !== '/login', 'a page after /login (the password was refused?)');
    return pathOf(page);
}

/**
 * First login: /login/enroll shows the secret and a QR code; submits the current code. Returns the TOTP key and
 * the time step used. Then /login/recovery lists 10 codes; clicks `a#continue`.
 */
async function enrol(page, who, screenshots) {
    check(
        pathOf(page) === '/login/enroll',
        `a user without a second factor must be sent to /login/enroll after the password, got ${page.url()}`,
    );
    const secretText = await page.locator('#totp-secret').innerText();
    const secret = secretText.replace(/\s+/g, '');
    check(/^[A-Za-z2-7]+=*$/.test(secret), `#totp-secret is not base32: ${JSON.stringify(secretText)}`);
    const key = base32decode(secret);
    check(key.length >= 10, `TOTP secret is only ${key.length} bytes (RFC 4226 requires at least 128 bits)`);
    // The QR code: #totp-qr is (or holds) an inline <svg> or an <img> that loaded.
    const qr = page.locator('#totp-qr');
    await qr.waitFor({ state: 'visible' });
    const qrInfo = await qr.evaluate((el) => {
        const target = ['svg', 'img'].includes(el.tagName.toLowerCase()) ? el : el.querySelector('svg, img');
        if (!target) return { kind: null };
        const box = target.getBoundingClientRect();
        return {
            kind: target.tagName.toLowerCase(),
            width: box.width,
            height: box.height,
            loaded: target.tagName.toLowerCase() === 'img' ? target.complete && target.naturalWidth > 0 : true,
        };
    });
    check(qrInfo.kind, '#totp-qr is neither an <svg>/<img> nor contains one');
    check(qrInfo.loaded, '#totp-qr <img> did not load');
    check(qrInfo.width >= 64 && qrInfo.height >= 64, `#totp-qr is too small to scan: ${JSON.stringify(qrInfo)}`);
    if (screenshots) await shot(page, 'web-01-enroll.png');

    const usedStep = stepAt(Date.now());
    await page.fill('#code', hotp(key, usedStep));
    await page.click('#enroll-submit');
    await waitForPath(page, (u) => u.pathname === '/login/recovery', '/login/recovery (was the TOTP code refused?)');

    const codes = page.locator('#recovery-codes li');
    await codes.first().waitFor({ state: 'visible' });
    const texts = (await codes.allInnerTexts()).map((t) => t.trim());
    check(texts.length === 10, `expected 10 recovery codes in #recovery-codes li, found ${texts.length}`);
    check(texts.every((t) => t.length > 0), 'a recovery code is empty');
    check(new Set(texts).size === 10, 'recovery codes are not all different');
    result.recovery_code_lengths = [...new Set(texts.map((t) => t.length))];
    if (screenshots) await shot(page, 'web-02-recovery.png');
    await page.click('a#continue');
    await waitForPath(page, (u) => u.pathname !== '/login/recovery', 'the page after the recovery codes');
    return { key, usedStep, qr: qrInfo.kind };
}

// ------------------------------------------------------------------------------------------------------------------
// The flow
// ------------------------------------------------------------------------------------------------------------------

const result = {};

async function main() {
    const uploadSize = statSync(UPLOAD).size;
    const fileName = basename(UPLOAD);
    const sourceSha = await sha256File(UPLOAD);
    result.file = fileName;
    result.bytes = uploadSize;
    result.sha256_source = sourceSha;

    await step('launch chromium', async () => {
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: CHROMIUM_ARGS,
            timeout: WAIT_MS,
        });
        result.chromium = browser.version();
        log(`chromium ${result.chromium}`);
    });

    // ---- a. partner: password, TOTP enrolment, recovery codes ---------------------------------------------------
    const page = await newPage('partner');
    currentPage = page;
    let partnerTotp;
    await step('partner login (password)', async () => {
        await submitLogin(page, PARTNER);
    });
    await step('partner TOTP enrolment and recovery codes', async () => {
        partnerTotp = await enrol(page, PARTNER, true);
        result.qr = partnerTotp.qr;
    });

    // ---- b. file browser and upload ----------------------------------------------------------------------------
    await step('file browser after enrolment', async () => {
        await waitForPath(
            page,
            (u) => u.pathname === '/files' && u.searchParams.get('path') === '/home',
            '/files?path=/home',
        );
        await page.locator('#file-list').waitFor({ state: 'attached' });
        await page.locator('#file-input').waitFor({ state: 'attached' });
        check(await page.locator('#dropzone').count(), 'the file browser has no #dropzone');
    });

    await step('upload 50 MiB with progress', async () => {
        // Record every value the progress bar takes, in the page (a MutationObserver on the `value` attribute,
        // which the `value` property reflects, plus a 10 ms sampler), and by polling from here.
        await page.evaluate(() => {
            const seen = [];
            window.__lockboxProgress = seen;
            const note = (v) => {
                const x = Number(v);
                if (v !== null && v !== undefined && v !== '' && !Number.isNaN(x) && seen[seen.length - 1] !== x) {
                    seen.push(x);
                }
            };
            new MutationObserver((records) => {
                for (const r of records) {
                    if (r.target.id === 'upload-progress' && r.attributeName === 'value') {
                        note(r.oldValue);
                        note(r.target.getAttribute('value'));
                    }
                }
            }).observe(document.documentElement, {
                subtree: true,
                attributes: true,
                attributeOldValue: true,
                attributeFilter: ['value'],
            });
            setInterval(() => {
                const p = document.getElementById('upload-progress');
                if (p) note(p.value);
            }, 10);
        });
        const polled = [];
        const started = Date.now();
        await page.setInputFiles('#file-input', UPLOAD);
        let status = '';
        let last = null;
        for (;;) {
            check(
                Date.now() - started < UPLOAD_MS,
                `upload not complete after ${UPLOAD_MS / 1000} s; #upload-status says ${JSON.stringify(status)}, ` +
                    `progress ${last}`,
            );
            const s = await page.evaluate(() => ({
                value: document.getElementById('upload-progress')?.value ?? null,
                max: document.getElementById('upload-progress')?.max ?? null,
                status: document.getElementById('upload-status')?.textContent ?? '',
            }));
            status = s.status.trim();
            last = s.value;
            if (s.value !== null && polled[polled.length - 1] !== s.value) polled.push(s.value);
            if (/\bcomplete\b/i.test(status)) break;
            check(!/\b(fail|failed|failure|error)\b/i.test(status), `upload failed: #upload-status says ${JSON.stringify(status)}`);
            await page.waitForTimeout(50);
        }
        result.upload_seconds = Number(((Date.now() - started) / 1000).toFixed(2));
        result.upload_mib_per_s = Number((uploadSize / 1048576 / result.upload_seconds).toFixed(1));
        const final = await page.evaluate(() => {
            const p = document.getElementById('upload-progress');
            return p ? { value: p.value, max: p.max } : null;
        });
        const observed = await page.evaluate(() => window.__lockboxProgress);
        result.progress_polled = polled;
        result.progress_observed = observed;
        result.progress_final = final;
        check(final, 'there is no <progress id="upload-progress"> after the upload');
        check(final.max === 100, `#upload-progress has max=${final.max}, expected 100`);
        check(final.value >= 100, `#upload-status says complete but #upload-progress is at ${final.value}, not 100`);
        const all = [...observed, ...polled];
        result.progress_intermediate_seen = all.some((v) => v > 0 && v < 100);
        check(all.every((v) => v >= 0 && v <= 100), `progress values outside 0..100: ${all}`);
        if (!result.progress_intermediate_seen) {
            log('WARNING: the upload finished before any progress value strictly between 0 and 100 was observed');
        }
        log(`upload complete in ${result.upload_seconds} s; progress seen ${JSON.stringify(observed)}`);
        await shot(page, 'web-03-upload-100.png');
    });

    // ---- c. the file is listed; download it and compare ---------------------------------------------------------
    let row;
    await step('file listed after reload', async () => {
        await page.reload();
        row = page.locator('#file-list tr.entry').filter({
            has: page.locator('.entry-name', { hasText: new RegExp(`^\\s*${escapeRegex(fileName)}\\s*$`) }),
        });
        try {
            await row.first().waitFor({ state: 'visible' });
        } catch {
            const names = await page.locator('#file-list tr.entry .entry-name').allInnerTexts();
            fail(`no row named ${fileName} in #file-list after reload; rows: ${JSON.stringify(names)}`);
        }
        check((await row.count()) === 1, `${await row.count()} rows named ${fileName}`);
        await shot(page, 'web-04-files.png');
    });

    await step('download and compare', async () => {
        const link = row.locator('a.download');
        check((await link.count()) === 1, `the row of ${fileName} has ${await link.count()} a.download links, expected 1`);
        const started = Date.now();
        const [download] = await Promise.all([
            page.waitForEvent('download', { timeout: WAIT_MS }),
            link.click(),
        ]);
        result.download_suggested_name = download.suggestedFilename();
        const saved = join(DOWNLOADS, fileName);
        await bounded(DOWNLOAD_MS, 'the download to finish', () => download.saveAs(saved));
        const failure = await download.failure();
        check(failure === null, `the download failed: ${failure}`);
        result.download_seconds = Number(((Date.now() - started) / 1000).toFixed(2));
        const size = statSync(saved).size;
        result.sha256_download = await sha256File(saved);
        check(size === uploadSize, `downloaded ${size} bytes, uploaded ${uploadSize}`);
        check(
            result.sha256_download === sourceSha,
            `downloaded file differs: sha256 ${result.sha256_download}, source ${sourceSha}`,
        );
        log(`download identical (${size} bytes, ${result.download_seconds} s, suggested name ${result.download_suggested_name})`);
    });

    // ---- d. the partner is refused the admin pages; logout; login with a TOTP code -------------------------------
    await step('partner refused /admin and /admin/audit', async () => {
        result.partner_admin_status = {};
        for (const path of ['/admin', '/admin/audit']) {
            const r = await gotoOk(page, path);
            result.partner_admin_status[path] = r.status();
            check(r.status() === 403, `partner got HTTP ${r.status()} for ${path} (final URL ${page.url()}), expected 403`);
        }
        await shot(page, 'web-05-partner-admin-403.png');
    });

    await step('partner logout', async () => {
        await gotoOk(page, '/files?path=/home');
        await page.locator('#file-list').waitFor({ state: 'visible' });
        await page.click('#logout');
        await waitForPath(page, (u) => u.pathname !== '/files', 'a page after logging out');
        await gotoOk(page, '/files?path=/home');
        check(
            (await page.locator('#file-list').count()) === 0,
            `after logging out /files still shows the file list (URL ${page.url()})`,
        );
        result.after_logout = pathOf(page);
    });

    await step('partner login with TOTP', async () => {
        const where = await submitLogin(page, PARTNER);
        check(where === '/login/totp', `an enrolled user must be asked for a code at /login/totp, got ${page.url()}`);
        // The step used at enrolment is spent; the server accepts one step of drift, so use the next step.
        const codeStep = Math.max(stepAt(Date.now() + 30_000), partnerTotp.usedStep + 1);
        await page.fill('#code', hotp(partnerTotp.key, codeStep));
        await page.click('#totp-submit');
        await waitForPath(page, (u) => u.pathname === '/files', '/files (was the TOTP code refused?)');
        await page.locator('#file-list').waitFor({ state: 'visible' });
        result.relogin_totp = true;
    });

    // ---- e. admin: enrolment, audit filtered by the partner, sessions --------------------------------------------
    const admin = await newPage('admin');
    currentPage = admin;
    await step('admin login and TOTP enrolment', async () => {
        await submitLogin(admin, ADMIN);
        await enrol(admin, ADMIN, false);
        result.admin_landing = pathOf(admin);
    });

    await step('admin audit filtered by partner', async () => {
        const r = await gotoOk(admin, `/admin/audit?user=${encodeURIComponent(PARTNER.user)}`);
        check(r.status() === 200, `admin got HTTP ${r.status()} for /admin/audit`);
        for (const field of ['user', 'org', 'action', 'from', 'to']) {
            check(
                (await admin.locator(`form [name="${field}"]`).count()) >= 1,
                `the audit filter form has no field named ${field}`,
            );
        }
        await admin.locator('#audit-table').waitFor({ state: 'visible' });
        const rows = admin.locator('#audit-table tr').filter({ hasText: 'upload_committed' }).filter({ hasText: fileName });
        if ((await rows.count()) < 1) {
            const all = await admin.locator('#audit-table tr').allInnerTexts();
            fail(
                `no #audit-table row with upload_committed and ${fileName}; ${all.length} rows:\n` +
                    all.slice(0, 20).join('\n'),
            );
        }
        result.audit_row = (await rows.first().innerText()).replace(/\s+/g, ' ').trim();
        await shot(admin, 'web-06-audit.png');
    });

    await step('admin sessions', async () => {
        const r = await gotoOk(admin, '/admin/sessions');
        check(r.status() === 200, `admin got HTTP ${r.status()} for /admin/sessions`);
        await admin.locator('#sessions-table').waitFor({ state: 'visible' });
        result.sessions_rows = await admin.locator('#sessions-table tbody tr').count();
        result.sessions_lists_partner = (await admin.locator('#sessions-table').innerText()).includes(PARTNER.user);
        await shot(admin, 'web-07-sessions.png');
    });

    currentStep = 'close';
    await bounded(WAIT_MS, 'closing the browser', () => browser.close());
    browser = null;
    clearTimeout(overall);
    result.seconds = Number(since());
    console.log(`E2E_RESULT ${JSON.stringify(result)}`);
}

main().then(
    () => process.exit(0),
    (e) => die(e),
);
