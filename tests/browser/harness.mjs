// The browser tests' harness: a real `junction serve` (the binary cargo built) on free loopback
// ports with an admin token, a local webhook whose answer a test can change, Debian's Chromium
// driven by playwright-core, axe-core for accessibility, and Segment's Python library for events.
//
// Environment (scripts/test sets it):
//   JUNCTION_TEST_BROWSER_MODULES  node_modules holding playwright-core and axe-core
//   JUNCTION_TEST_BINARY           the junction binary (default target/debug/junction)
//   JUNCTION_TEST_CHROMIUM         the browser (default /usr/bin/chromium)
//   JUNCTION_TEST_PYTHON           the Python with segment-analytics-python installed

import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
const modules = process.env.JUNCTION_TEST_BROWSER_MODULES
  ?? path.join(root, 'target/browser-tests/node_modules');
const require = createRequire(path.join(modules, 'noop.js'));
const { chromium } = require('playwright-core');
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const TOKEN = 'browser-test-admin-token';
export const WRITE_KEY = 'junction-sample-write-key';
export const HOOK_SECRET = 'hook-secret-4242';
const binary = process.env.JUNCTION_TEST_BINARY ?? path.join(root, 'target/debug/junction');
const chromiumPath = process.env.JUNCTION_TEST_CHROMIUM ?? '/usr/bin/chromium';
export const screenshots = path.join(root, 'docs/screenshots');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` (async, truthy when done) every 200 ms for up to `ms`. */
export async function eventually(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

/** A webhook on a free port: answers `status` (settable) and keeps what it received. */
export async function startWebhook() {
  const hook = { status: 200, received: [] };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      if (req.url === '/attack') {
        // Another site's page with a form aimed at the app: the forged-POST check.
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<!doctype html><title>Win a prize</title><form method="post" action="${hook.target}">
          <input type="hidden" name="do" value="disable"><button id="go">Claim</button></form>`);
        return;
      }
      hook.received.push({ url: req.url, body });
      res.writeHead(hook.status, { 'content-type': 'application/json' });
      res.end(hook.status < 300 ? '{"ok":true}' : '{"error":"Not found"}');
    });
  });
  // Junction's client keeps connections for up to 90 s; Node would close an idle one after 5 s,
  // and a request racing that close fails as a network error (a retry, not the answer we set).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  hook.port = port;
  hook.url = `http://127.0.0.1:${port}/hooks/${HOOK_SECRET}`;
  hook.close = () => new Promise((resolve) => server.close(resolve));
  return hook;
}

/** `junction serve` on free ports with a fresh data directory and the admin token. */
export async function startServer() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'junction-browser-'));
  const tracking = await freePort();
  const admin = await freePort();
  const child = spawn(binary, [
    'serve', '--data-dir', dir,
    '--tracking-addr', `127.0.0.1:${tracking}`,
    '--admin-addr', `127.0.0.1:${admin}`,
    '--delivery-allow', '127.0.0.1',
  ], { env: { ...process.env, JUNCTION_ADMIN_TOKEN: TOKEN, RUST_LOG: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  const server = {
    dir, child,
    admin: `http://127.0.0.1:${admin}`,
    tracking: `http://127.0.0.1:${tracking}`,
    log: () => log,
  };
  await eventually('junction serve to answer', async () => {
    const res = await fetch(`${server.admin}/healthz`);
    return res.ok;
  });
  server.stop = async () => {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    rmSync(dir, { recursive: true, force: true });
  };
  return server;
}

/** The admin JSON API, for checks a person would make on the page. */
export async function api(server, method, pathname, body) {
  const res = await fetch(`${server.admin}/api/v1${pathname}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** One event sent to the Tracking API with the sample source's write key. */
export async function track(server, kind, event) {
  const res = await fetch(`${server.tracking}/v1/${kind}`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(event),
  });
  if (!res.ok) throw new Error(`tracking answered ${res.status}`);
}

/** Sends `calls` with Segment's Python library (the script the CLI's client tests use). */
export function sendWithPython(server, calls) {
  const python = process.env.JUNCTION_TEST_PYTHON;
  if (!python) throw new Error('JUNCTION_TEST_PYTHON is not set: run the tests with scripts/test');
  const script = path.join(root, 'crates/cli/tests/serve/clients/send.py');
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => { out += c; });
    child.stderr.on('data', (c) => { err += c; });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`send.py: ${code} ${err}`))));
    child.stdin.end(JSON.stringify({ host: server.tracking, writeKey: WRITE_KEY, gzip: false, calls }));
  });
}

export async function launch() {
  return chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
}

/** What the browser reported against the Content-Security-Policy, on any page. */
export const cspViolations = [];

/** A signed-in page (through the sign-in form, as a person does). */
export async function signedInPage(browser, server, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      cspViolations.push(`${page.url()}: ${message.text()}`);
    }
  });
  await page.goto(`${server.admin}/`);
  await page.fill('#token', TOKEN);
  await page.click('button[type=submit]');
  await page.waitForURL(`${server.admin}/`);
  return page;
}

/** Saves a screenshot of the page under docs/screenshots/. */
export async function shoot(page, name) {
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: false });
}

/**
 * Runs axe on the page; the serious and critical violations. The page's CSP forbids inline
 * scripts, so axe runs in a context that bypasses it (only for this check).
 */
export async function axeViolations(browser, server, url, cookies) {
  const context = await browser.newContext({ bypassCSP: true });
  await context.addCookies(cookies);
  const page = await context.newPage();
  await page.goto(url);
  await page.addScriptTag({ content: axeSource });
  const results = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  await context.close();
  return results.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Presses Tab until the focused element satisfies `predicate` (text/attributes), at most 80 times. */
export async function tabTo(page, description, predicate, arg) {
  for (let i = 0; i < 80; i += 1) {
    await page.keyboard.press('Tab');
    const hit = await page.evaluate(predicate, arg);
    if (hit) return;
  }
  throw new Error(`Tab never reached ${description}`);
}
