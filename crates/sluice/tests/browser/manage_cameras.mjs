// Manages cameras through Sluice's web page in headless Chromium: an invalid source's error in
// place, a probe shown before saving, adding a camera (it appears with a playing player), a
// duplicate name's error in place, editing its orientation (and an invalid edit), removing it
// after a confirmation. Reports what the page showed as one JSON line on stdout, with a
// screenshot of the probe result (SCREENSHOT with -probe before .png) and one after the edit.
//
// Usage: node manage_cameras.mjs PAGE_URL NAME SCREENSHOT
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');

const [pageUrl, name, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
const result = { dialogs: [] };
const text = locator => locator.textContent().then(t => t.trim());
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // Errors are shown in the page, never in an alert.
  page.on('dialog', d => { result.dialogs.push(d.message()); d.dismiss(); });
  await page.goto(pageUrl);
  await page.click('#add-toggle');
  const form = page.locator('#add');
  const sourceError = form.locator('.field-error[data-for="source"]');

  // An invalid source: the probe's error is shown next to the source field, and so is Save's.
  await form.locator('[name=name]').fill(name);
  await form.locator('[name=source]').fill('gopher://x');
  result.saveDisabledBeforeProbe = await form.locator('button.save').isDisabled();
  await form.locator('button.probe').click();
  await sourceError.filter({ hasText: 'unsupported source scheme' }).waitFor();
  result.invalidSourceProbe = await text(sourceError);
  result.invalidSourceResult = await text(form.locator('.probe-result'));
  await form.locator('button.save').click();
  await sourceError.filter({ hasText: 'unsupported source scheme' }).waitFor();
  result.invalidSourceSave = await text(sourceError);
  result.cardsAfterInvalid = await page.locator('.stream').count();

  // The demo: probed, its description shown, then saved.
  await form.locator('[name=source]').fill('builtin:demo');
  result.saveDisabledAfterEdit = await form.locator('button.save').isDisabled();
  await form.locator('button.probe').click();
  await form.locator('.probe-result.ok').waitFor({ timeout: 30000 });
  result.probe = await text(form.locator('.probe-result'));
  result.saveEnabledAfterProbe = await form.locator('button.save').isEnabled();
  if (screenshot) { await page.screenshot({ path: screenshot.replace(/\.png$/, '-probe.png') }); }
  await form.locator('button.save').click();
  const card = page.locator(`.stream[data-name="${name}"]`);
  await card.waitFor({ timeout: 30000 });
  result.addPanelHidden = await page.locator('#add-camera').isHidden();
  await page.waitForFunction(
    n => { const p = window.players[n]; return p && p.video.currentTime > 0.2 && p.video.videoWidth > 0; },
    name, { timeout: 45000, polling: 100 });
  result.width = await page.evaluate(n => window.players[n].video.videoWidth, name);

  // The same name again: the API's 409 next to the name field.
  await page.click('#add-toggle');
  await form.locator('[name=name]').fill(name);
  await form.locator('[name=source]').fill('builtin:demo');
  await form.locator('button.probe').click();
  await form.locator('.probe-result.ok').waitFor({ timeout: 30000 });
  await form.locator('button.save').click();
  const nameError = form.locator('.field-error[data-for="name"]');
  await nameError.filter({ hasText: 'already exists' }).waitFor();
  result.duplicateName = await text(nameError);
  await form.locator('button.cancel').click();

  // Edit: an invalid source is refused in place; then a new orientation is saved.
  await card.locator('button.edit').click();
  const edit = card.locator('form.edit-form');
  await edit.waitFor();
  result.editPlaceholder = await edit.locator('[name=source]').getAttribute('placeholder');
  await edit.locator('[name=source]').fill('gopher://y');
  await edit.locator('button.save').click();
  const editError = edit.locator('.field-error[data-for="source"]');
  await editError.filter({ hasText: 'unsupported source scheme' }).waitFor();
  result.editError = await text(editError);
  await edit.locator('[name=source]').fill('');
  await edit.locator('[name=orientation]').selectOption('6');
  await edit.locator('button.save').click();
  await edit.waitFor({ state: 'hidden' });
  await card.locator('.options', { hasText: 'orientation 6' }).waitFor();
  result.options = await text(card.locator('.options'));
  result.afterEdit = await page.evaluate(
    n => fetch(`/api/streams/${n}`).then(r => r.json()), name);
  // The player picks up the rotated picture (the init segment's matrix).
  await page.waitForFunction(
    n => { const p = window.players[n]; return p && p.video.currentTime > 0.2 && p.video.videoWidth > 0; },
    name, { timeout: 45000, polling: 100 });
  result.rotatedSize = await page.evaluate(
    n => [window.players[n].video.videoWidth, window.players[n].video.videoHeight], name);
  if (screenshot) { await page.screenshot({ path: screenshot }); }

  // Remove, after a confirmation; cancelling first keeps it.
  await card.locator('button.remove').click();
  result.confirm = await text(card.locator('.confirm .question'));
  await card.locator('button.cancel-remove').click();
  result.keptAfterCancel = await card.count();
  await card.locator('button.remove').click();
  await card.locator('button.confirm-remove').click();
  await card.waitFor({ state: 'detached' });
  result.removed = true;
  result.playerGone = await page.evaluate(n => !(n in window.players), name);
} catch (e) {
  result.failure = String(e && e.stack || e);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + '\n');
