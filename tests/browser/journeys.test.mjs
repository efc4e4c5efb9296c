// The app's journeys in a real browser (issue 13's "Done when"), against a real `junction serve`
// and a local webhook. One server for the file; the tests run in order and build on each other
// (the destination the first one adds is the one the others use), as a person's session would.
//
// Run by scripts/test (`node --test tests/browser/`); screenshots go to docs/screenshots/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  cspViolations, HOOK_SECRET, TOKEN, WRITE_KEY, api, axeViolations, eventually, launch, sendWithPython, shoot,
  signedInPage, startServer, startWebhook, tabTo, track,
} from './harness.mjs';

let server;
let hook;
let browser;
let page;
/** The destination the first journey adds, and its Send Contact mapping. */
let dest;
let contact;

/** No page may show the webhook URL's secret or a full write key. */
async function noSecrets(p) {
  const html = await p.content();
  assert.ok(!html.includes(HOOK_SECRET), `${p.url()} shows the webhook's secret`);
  assert.ok(!html.includes(WRITE_KEY), `${p.url()} shows a full write key`);
}

before(async () => {
  hook = await startWebhook();
  server = await startServer();
  browser = await launch();
  page = await signedInPage(browser, server);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await hook?.close();
});

test('1. sign in, add ChartMogul with quick setup, test the connection', async () => {
  await noSecrets(page);
  await shoot(page, 'home');
  await page.click('nav[aria-label=Main] >> text=Catalog');
  await shoot(page, 'catalog');
  await page.click('text=Add ChartMogul');
  await page.fill('#name', 'ChartMogul (browser test)');
  await page.check('input[name=sources][value=sample-app]');
  await page.fill('#setting-chartmogul_webhook_url', hook.url);
  await page.check('input[name=setup][value=quick]');
  await shoot(page, 'add-destination');
  await page.click('button:has-text("Create destination")');
  await page.waitForURL(/\/destinations\/[^/]+\/mappings$/);
  dest = new URL(page.url()).pathname.split('/')[2];
  const rows = page.locator('table.mappings tbody tr');
  assert.equal(await rows.count(), 2, 'quick setup adds both default mappings');
  await page.locator('table.mappings a', { hasText: 'Send Contact' }).waitFor();
  await noSecrets(page);
  await shoot(page, 'mappings');

  await page.click('nav.tabs >> text=Settings');
  const shown = await page.inputValue('#setting-chartmogul_webhook_url');
  assert.equal(shown, `http://127.0.0.1:${hook.port}/…`, 'the saved URL is masked after the host');
  await page.click('button:has-text("Test connection")');
  const message = page.locator('#test-message');
  await message.waitFor();
  assert.match(await message.innerText(), /Please configure the ChartMogul webhook URL/);
  await noSecrets(page);
  await page.locator('#test-title').scrollIntoViewIfNeeded();
  await shoot(page, 'destination-settings');
});

test('2. the trigger builder and a picked field, previewed live, saved, shown as FQL', async () => {
  await track(server, 'identify', {
    userId: 'recent-1',
    traits: { email: 'recent@example.com', plan: 'pro', job_title: 'VP Sales' },
  });
  await page.goto(`${server.admin}/destinations/${dest}/mappings`);
  await page.click('table.mappings >> text=Send Contact');
  await page.waitForURL(/\/mappings\/[^/]+$/);
  contact = new URL(page.url()).pathname.split('/')[4];

  // Load the recent event, add a condition with the builder.
  await page.selectOption('#recent', { index: 0 });
  await page.click('button:has-text("Load event")');
  assert.match(await page.inputValue('#event'), /VP Sales/);
  await page.click('button:has-text("Add condition")');
  await page.selectOption('#t-field-1', 'traits');
  await page.fill('#t-path-1', 'plan');
  await page.selectOption('#t-op-1', '=');
  await page.fill('#t-value-1', 'pro');

  // Pick a path the loaded event has: the datalist offers it; the preview follows as one types.
  const offered = await page.locator('#event-paths option').evaluateAll((o) => o.map((x) => x.value));
  assert.ok(offered.includes('$.traits.job_title'), 'the field picker suggests the event\'s paths');
  await page.fill('#f-title', '$.traits.job_title');
  await page.locator('#preview-body', { hasText: '"title": "VP Sales"' }).waitFor();
  await page.locator('#fql-text', { hasText: 'type = "identify" and traits.plan = "pro"' }).waitFor();
  await page.evaluate(() => window.scrollTo(0, 0));
  await shoot(page, 'mapping-editor');
  const before = await api(server, 'GET', `/destinations/${dest}/mappings/${contact}`);
  assert.equal(before.body.data.trigger, 'type = "identify"', 'nothing saved yet');

  await page.click('#save');
  await page.locator('#saved-note').waitFor();
  assert.equal(await page.locator('#fql-text').innerText(), 'type = "identify" and traits.plan = "pro"');
  // Send test: for real, only once confirmed.
  const sentBefore = hook.received.length;
  await page.check('#send-confirm');
  await page.click('#send-test');
  await page.locator('#preview-response', { hasText: 'HTTP 200' }).waitFor();
  assert.equal(hook.received.length, sentBefore + 1, 'one real request');
  await page.click('button:has-text("View as FQL")');
  assert.equal(await page.inputValue('#fql'), 'type = "identify" and traits.plan = "pro"');
  const saved = await api(server, 'GET', `/destinations/${dest}/mappings/${contact}`);
  assert.equal(saved.body.data.trigger, 'type = "identify" and traits.plan = "pro"');
  assert.deepEqual(saved.body.data.mapping.title, { '@path': '$.traits.job_title' });
  await noSecrets(page);
});

test('2b. nested groups in the builder round-trip through the FQL view', async () => {
  await page.goto(`${server.admin}/destinations/${dest}/mappings`);
  await page.click('table.mappings >> text=Send Customer');
  await page.waitForURL(/\/mappings\/[^/]+$/);
  // Row 0 is `type = "group"`; a group adds rows 1 (open), 2 (its condition), 3 (close).
  await page.click('button:has-text("Add group")');
  await page.selectOption('#t-join-1', 'or');
  await page.selectOption('#t-field-2', 'traits');
  await page.fill('#t-path-2', 'plan');
  await page.fill('#t-value-2', 'pro');
  await page.click('button:has-text("Add condition to group")');
  await page.selectOption('#t-field-3', 'traits');
  await page.fill('#t-path-3', 'plan');
  await page.fill('#t-value-3', 'enterprise');
  const text = 'type = "group" and (traits.plan = "pro" or traits.plan = "enterprise")';
  await page.click('button:has-text("View as FQL")');
  assert.equal(await page.inputValue('#fql'), text);
  await page.fill('#fql', `${text} and traits.plan != "free"`);
  await page.click('button:has-text("Back to the builder")');
  assert.equal(await page.locator('li.condition').count(), 4, 'the edited text back as rows');
  await page.click('#save');
  await page.locator('#saved-note').waitFor();
  assert.equal(await page.locator('#fql-text').innerText(), `${text} and traits.plan != "free"`);
  // Text the parser refuses stays as FQL, with the column of the problem.
  await page.click('button:has-text("View as FQL")');
  await page.fill('#fql', 'type = ');
  await page.click('button:has-text("Back to the builder")');
  assert.match(await page.locator('#trigger-error').innerText(), /column/);
});

test('2c. a pasted test event saved as a sample, loaded again in another mapping', async () => {
  await page.goto(`${server.admin}/destinations/${dest}/mappings/${contact}`);
  const pasted = { type: 'identify', userId: 'sample-7', traits: { plan: 'pro', job_title: 'Sampled CTO' } };
  await page.fill('#event', JSON.stringify(pasted, null, 2));
  await page.fill('#sample-name', 'Pro CTO');
  await page.click('button:has-text("Save sample")');
  await page.locator('#sample-status', { hasText: 'Saved the test event as sample “Pro CTO”.' }).waitFor();
  const stored = await api(server, 'GET', `/destinations/${dest}/samples`);
  assert.deepEqual(stored.body.data, [{ name: 'Pro CTO', event: pasted }]);
  await shoot(page, 'mapping-editor-samples');

  // Another mapping of the destination offers it; loading it replaces the event box.
  await page.goto(`${server.admin}/destinations/${dest}/mappings`);
  await page.click('table.mappings >> text=Send Customer');
  await page.waitForURL(/\/mappings\/[^/]+$/);
  await page.fill('#event', '{}');
  await page.selectOption('#sample', 'Pro CTO');
  await page.click('button:has-text("Load sample")');
  assert.match(await page.inputValue('#event'), /Sampled CTO/);
});

test('3. Python identify events in the debugger, found, tested and sent for real', async () => {
  await page.goto(`${server.admin}/sources/sample-app/debugger`);
  await page.locator('#live-status', { hasText: 'Live' }).waitFor();
  await sendWithPython(server, [1, 2, 3].map((i) => ({
    type: 'identify', userId: `py-user-${i}`,
    traits: { email: `py${i}@example.com`, plan: 'pro', job_title: `Engineer ${i}` },
  })));
  await page.locator('li.event', { hasText: 'py-user-3' }).waitFor();
  await shoot(page, 'debugger');
  await page.fill('#q', 'py-user-2');
  const visible = page.locator('li.event:visible');
  await eventually('the search to leave one event', async () => (await visible.count()) === 1);
  await visible.locator('summary').click();
  assert.match(await visible.locator('pre.pretty').innerText(), /analytics\.identify\("py-user-2"/);
  await visible.locator('a', { hasText: 'Test this event with ChartMogul (browser test)' }).click();
  await page.waitForURL(/\/tester\?/);
  assert.match(await page.inputValue('#event'), /py-user-2/);

  const before = hook.received.length;
  await page.click('#send');
  await page.locator('#tester-error').waitFor();
  assert.equal(hook.received.length, before, 'nothing sent without the confirmation');
  await page.check('#confirm');
  await page.click('#send');
  const results = page.locator('#tester-results');
  await results.waitFor();
  assert.match(await results.innerText(), /HTTP 200/);
  assert.match(await results.innerText(), /POST http:\/\/127\.0\.0\.1:\d+\/…/);
  assert.ok(hook.received.slice(before).some((r) => r.body.includes('py-user-2')));
  await noSecrets(page);
  await shoot(page, 'event-tester');
});

test('4. a failing webhook: overview, story, fix, replay from the dead letter', async () => {
  hook.status = 404;
  for (const i of [1, 2, 3]) {
    await track(server, 'identify', { userId: `fail-${i}`, traits: { email: `f${i}@example.com`, plan: 'pro' } });
  }
  await page.goto(`${server.admin}/destinations/${dest}/overview?window=1h`);
  // All three fail before the webhook is fixed (their deliveries may trail their ingestion).
  await eventually('the three failures in the overview', async () => {
    await page.reload();
    return (await page.locator('#failures a.sample').count()) >= 3;
  });
  await noSecrets(page);
  await shoot(page, 'delivery-overview');
  await page.locator('#failures a.sample').first().click();
  await page.waitForURL(/\/events\//);
  const storyUrl = page.url();
  assert.match(await page.locator('main').innerText(), /404/);
  await noSecrets(page);
  await shoot(page, 'event-story');

  await page.goto(`${server.admin}/`);
  await page.locator('main', { hasText: 'went to the dead letter in the last hour' }).waitFor();

  hook.status = 200;
  await page.goto(`${server.admin}/destinations/${dest}/dead-letter`);
  await eventually('the three failed jobs in the dead letter', async () => {
    await page.reload();
    return (await page.locator('#replay-form tbody tr').count()) >= 3;
  });
  await shoot(page, 'dead-letter');
  await page.check('input[name=scope][value=all]');
  await page.click('#replay');
  await page.locator('#replay-report').waitFor();
  assert.match(await page.locator('#replay-report').innerText(), /Replayed [3-9] job/);
  // The progress follows the replays on the page itself (htmx, every 2 s) until they are done.
  await page.locator('#replay-progress', { hasText: 'done' }).waitFor({ timeout: 30000 });
  assert.match(await page.locator('#replay-progress').innerText(), /Delivered [3-9] of [3-9]/);
  await eventually('the replays delivered', async () =>
    [1, 2, 3].every((i) => hook.received.some((r) => r.body.includes(`fail-${i}`))));
  await eventually('the overview to count them delivered', async () => {
    const overview = await api(server, 'GET', `/destinations/${dest}/overview?window=1h`);
    return overview.body.data.totals.destination.delivered >= 5;
  });
  // The story shows the replay delivered.
  await eventually('the story to show the replay delivered', async () => {
    await page.goto(storyUrl);
    const replay = page.locator('article.job', { hasText: 'replay of job' });
    return (await replay.locator('.badge.state-succeeded').count()) > 0;
  });
});

test('5a. the main journey by keyboard alone', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const kb = await context.newPage();
  await kb.goto(`${server.admin}/`);
  // The token field has focus on arrival.
  await kb.waitForFunction(() => document.activeElement?.id === 'token');
  await kb.keyboard.type(TOKEN);
  await kb.keyboard.press('Enter');
  await kb.waitForURL(`${server.admin}/`);
  const focusedText = (text) => document.activeElement?.textContent?.trim() === text;
  await tabTo(kb, 'the Catalog link', focusedText, 'Catalog');
  await kb.keyboard.press('Enter');
  await kb.waitForURL(/\/catalog$/);
  await tabTo(kb, 'Add ChartMogul', focusedText, 'Add ChartMogul');
  await kb.keyboard.press('Enter');
  await kb.waitForURL(/\/catalog\//);
  await tabTo(kb, 'the name field', () => document.activeElement?.id === 'name');
  await kb.keyboard.press('Control+A');
  await kb.keyboard.type('Keyboard ChartMogul');
  await tabTo(kb, 'the source', () => document.activeElement?.value === 'sample-app');
  await kb.keyboard.press('Space');
  await tabTo(kb, 'the webhook URL', () => document.activeElement?.id === 'setting-chartmogul_webhook_url');
  await kb.keyboard.type(hook.url);
  await tabTo(kb, 'Create destination', focusedText, 'Create destination');
  await kb.keyboard.press('Enter');
  await kb.waitForURL(/\/mappings$/);
  await tabTo(kb, 'Send Contact', focusedText, 'Send Contact');
  await kb.keyboard.press('Enter');
  await kb.waitForURL(/\/mappings\/[^/]+$/);
  await tabTo(kb, 'Save mapping', focusedText, 'Save mapping');
  await kb.keyboard.press('Enter');
  await kb.locator('#saved-note').waitFor();
  await context.close();
});

/** A failed event's messageId (set by 5b), for the event page. */
let failedSample;

/** Every screen of the app, as the journeys so far left them. */
function screens() {
  return [
    '/sign-in', '/', '/catalog', '/catalog/actions-chartmogul', '/destinations', `/destinations/${dest}`,
    `/destinations/${dest}/mappings`, `/destinations/${dest}/mappings/${contact}`,
    `/destinations/${dest}/mappings/${contact}/delete`, `/destinations/${dest}/tester`,
    `/destinations/${dest}/overview`, `/destinations/${dest}/dead-letter?include_replayed=1`,
    `/events/${failedSample}`, '/sources', '/sources/sample-app', '/sources/sample-app/debugger',
    '/audiences', '/audiences/buyers', '/profiles',
  ];
}

test('5b. axe finds no serious or critical violation on any screen', async () => {
  const cookies = await page.context().cookies();
  const story = await api(server, 'GET', `/destinations/${dest}/overview?window=1h`);
  const sample = story.body.data.totals.destination.failed.samples[0];
  await api(server, 'POST', '/audiences', {
    name: 'Buyers', kind: 'audience', query: "event('Order Completed').count() >= 1",
  });
  failedSample = sample;
  const found = [];
  for (const screen of screens()) {
    for (const violation of await axeViolations(browser, server, `${server.admin}${screen}`, cookies)) {
      found.push({ screen, ...violation });
    }
  }
  assert.deepEqual(found, []);
});

test('5d. every screen fits a 360 px wide phone and follows dark mode', async () => {
  const phone = await signedInPage(browser, server, {
    viewport: { width: 360, height: 740 }, colorScheme: 'dark',
  });
  const wide = [];
  for (const screen of screens()) {
    await phone.goto(`${server.admin}${screen}`);
    const { scroll, background } = await phone.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      background: getComputedStyle(document.body).backgroundColor,
    }));
    if (scroll > 360) wide.push(`${screen}: ${scroll} px wide`);
    const [r, g, b] = background.match(/\d+/g).map(Number);
    assert.ok(r + g + b < 150, `${screen}: background ${background} is not dark`);
  }
  await phone.goto(`${server.admin}/destinations/${dest}/mappings/${contact}`);
  await shoot(phone, 'mapping-editor-phone-dark');
  await phone.context().close();
  assert.deepEqual(wide, [], 'no screen scrolls sideways');
});

test('5c. adding a destination and saving a mapping work with JavaScript off', async () => {
  const noJs = await signedInPage(browser, server, { javaScriptEnabled: false });
  await noJs.goto(`${server.admin}/catalog/actions-chartmogul`);
  await noJs.fill('#name', 'No-JS ChartMogul');
  await noJs.fill('#setting-chartmogul_webhook_url', hook.url);
  await noJs.check('input[name=setup][value=custom]');
  await noJs.click('button:has-text("Create destination")');
  await noJs.waitForURL(/\/mappings$/);
  assert.match(await noJs.locator('main').innerText(), /No mapping yet/);

  await noJs.goto(`${server.admin}/destinations/${dest}/mappings/${contact}`);
  await noJs.fill('#name', 'Send Contact (pro)');
  await noJs.click('button:has-text("Add condition")'); // a plain POST re-renders the builder
  await noJs.selectOption('#t-field-2', 'traits');
  await noJs.fill('#t-path-2', 'email');
  await noJs.selectOption('#t-op-2', 'exists');
  await noJs.click('#save');
  await noJs.locator('#saved-note').waitFor();
  assert.equal(
    await noJs.locator('#fql-text').innerText(),
    'type = "identify" and traits.plan = "pro" and traits.email != null',
  );
  await noJs.context().close();
});

test('6. a forged cross-site POST is refused', async () => {
  hook.target = `${server.admin}/destinations/${dest}/mappings/${contact}/action`;
  await page.goto(`http://127.0.0.1:${hook.port}/attack`);
  await page.click('#go');
  assert.match(await page.locator('body').innerText(), /sent from another site/);
  const mapping = await api(server, 'GET', `/destinations/${dest}/mappings/${contact}`);
  assert.equal(mapping.body.data.enabled, true, 'the forged form changed nothing');
});

test('7. sources: a new write key is shown once, then masked', async () => {
  await page.goto(`${server.admin}/sources`);
  await page.fill('#source-name', 'Browser source');
  await page.click('button:has-text("Create source")');
  const key = await page.locator('#revealed-key').innerText();
  assert.match(key, /^wk_[0-9a-f]{32}$/);
  await shoot(page, 'source-key-reveal');
  const debuggerLink = await page.locator('main a:has-text("Debugger")').getAttribute('href');
  await page.goto(`${server.admin}${debuggerLink.replace('/debugger', '')}`);
  assert.ok(!(await page.content()).includes(key), 'shown once only');
  await page.goto(`${server.admin}/sources`);
  await noSecrets(page);
});

test('8. nothing on any page broke the Content-Security-Policy', () => {
  assert.deepEqual(cspViolations, []);
});
