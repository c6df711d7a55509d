// Clicks a stream's record button on Sluice's web page in headless Chromium and reports the
// status line it shows, as JSON on stdout, with a screenshot.
//
// Usage: node record_button.mjs PAGE_URL STREAM SCREENSHOT
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');

const [pageUrl, stream, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(pageUrl);
  const card = page.locator(`.stream[data-name="${stream}"]`);
  await card.locator('button.record').click();
  await card.locator('.rec-status', { hasText: 'recording to' }).waitFor({ timeout: 30000 });
  result.status = await card.locator('.rec-status').textContent();
  result.disabled = await card.locator('button.record').isDisabled();
  result.badges = await card.locator('.badge').allTextContents();
  if (screenshot) { await page.screenshot({ path: screenshot }); }
} catch (e) {
  result.failure = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
