// Plays one stream of Sluice's web page in headless Debian Chromium (driven by playwright-core)
// and reports, as one JSON line on stdout, how playback went: currentTime against the wall
// clock, hls.js's live latency, stalls and errors. A screenshot of the page is saved.
//
// Usage: node play.mjs PAGE_URL STREAM ENGINE SECONDS SCREENSHOT
//   ENGINE: hls.js (lowLatencyMode) or native (the browser's own HLS)
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');

const [pageUrl, stream, engine, secondsArg, screenshot] = process.argv.slice(2);
const seconds = Number(secondsArg || 20);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
const result = { engine, samples: [], console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('console', m => { if (m.type() === 'error') { result.console.push(m.text()); } });
  const url = new URL(pageUrl);
  url.searchParams.set('only', stream);
  if (engine === 'native') { url.searchParams.set('native', '1'); }
  await page.goto(url.toString());
  // Playing: currentTime has moved.
  await page.waitForFunction(
    name => { const p = window.players[name]; return p && p.video.currentTime > 0.2; },
    stream, { timeout: 45000, polling: 100 });
  result.engineUsed = await page.evaluate(name => window.players[name].engine, stream);
  // Stalls are counted from here: the measured window, after startup.
  const stallsBefore = await page.evaluate(name => window.players[name].stalls, stream);
  const start = Date.now();
  while (Date.now() - start < seconds * 1000) {
    result.samples.push(await page.evaluate(name => {
      const p = window.players[name];
      return {
        wall: performance.now() / 1000,
        currentTime: p.video.currentTime,
        latency: p.hls ? p.hls.latency : null,
        paused: p.video.paused,
        dropped: p.video.getVideoPlaybackQuality().droppedVideoFrames,
      };
    }, stream));
    await page.waitForTimeout(250);
  }
  const player = await page.evaluate(name => {
    const p = window.players[name];
    return {
      fatal: p.fatal, errors: p.errors, stalls: p.stalls, width: p.video.videoWidth,
      // The snapshot the page shows before the first frame (a blob: URL of the JPEG).
      poster: p.video.poster.startsWith('blob:'),
    };
  }, stream);
  player.stalls -= stallsBefore;
  Object.assign(result, player);
  if (screenshot) { await page.screenshot({ path: screenshot }); }
} catch (e) {
  result.failure = String(e && e.stack || e);
  result.state = await browser.contexts()[0]?.pages()[0]?.evaluate(name => {
    const p = window.players && window.players[name];
    if (!p) { return 'no player'; }
    const v = p.video;
    const ranges = r => Array.from({ length: r.length }, (_, i) => [r.start(i), r.end(i)]);
    return { readyState: v.readyState, networkState: v.networkState, error: v.error && v.error.code,
      currentTime: v.currentTime, paused: v.paused, buffered: ranges(v.buffered), seekable: ranges(v.seekable),
      errors: p.errors };
  }, stream).catch(err => String(err));
} finally {
  // playwright gives every launch a fresh, temporary profile and removes it here.
  await browser.close();
}
const s = result.samples;
if (s.length > 1) {
  result.wallElapsed = s[s.length - 1].wall - s[0].wall;
  result.mediaElapsed = s[s.length - 1].currentTime - s[0].currentTime;
  const lat = s.map(x => x.latency).filter(x => typeof x === 'number' && x > 0).sort((a, b) => a - b);
  result.latencyMedian = lat.length ? lat[Math.floor(lat.length / 2)] : null;
  result.latencyMax = lat.length ? lat[lat.length - 1] : null;
  // Longest stretch of wall time during which currentTime did not advance.
  let frozen = 0; let since = s[0].wall;
  for (let i = 1; i < s.length; i++) {
    if (s[i].currentTime > s[i - 1].currentTime) { since = s[i].wall; }
    frozen = Math.max(frozen, s[i].wall - since);
  }
  result.longestFreeze = frozen;
}
delete result.samples;
process.stdout.write(JSON.stringify(result) + '\n');
