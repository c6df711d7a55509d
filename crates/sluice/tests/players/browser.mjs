// Plays one HLS URL in headless Debian Chromium (driven by playwright-core) with hls.js
// (lowLatencyMode), Shaka Player (lowLatencyMode, defaults otherwise) or the browser's native
// HLS, on a bare page served from the stream's own origin, and reports how it goes.
//
// Usage: node browser.mjs ENGINE URL MAX_SECONDS      ENGINE: hls.js | shaka | native
// URL may also be a stream's start URL (`.../api/streams/NAME/hls`): it is POSTed once the
// page is ready and the playlist it returns is played, so times count from the stream's first
// request (a cold start).
//
// Output, one JSON object per line on stdout, every 250 ms and once more at the end:
//   {"t": seconds since the player was created, "frames": video frames decoded so far,
//    "position": the playhead's media time (seconds; a client that plays old media again
//    goes back, never beyond what it played before), "width", "height": the picture's size
//    (0 before the first frame), "firstFrame": when
//    the first picture was presented (seconds, same clock as "t"; null before),
//    "fatal": [fatal errors], "errors": [other errors], "stalls": `waiting` events after the
//    first frame, "latency": the engine's live latency estimate (hls.js `latency`, Shaka
//    `getStats().liveLatency`), "pdtLatency": wall clock minus the EXT-X-PROGRAM-DATE-TIME of
//    the playhead (hls.js `playingDate`, Shaka `getPlayheadTimeAsDate()`), both in seconds}
// The last line also has "done": true. The run ends after MAX_SECONDS, or as soon as stdin
// closes (how the tests stop it).
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const { chromium } = require('playwright-core');

const [engine, url, maxArg] = process.argv.slice(2);
const maxSeconds = Number(maxArg || 60);
// PLAYERS_DEBUG=1: the engines' debug builds, their logs on stderr.
const debug = Boolean(process.env.PLAYERS_DEBUG);
const scripts = {
  'hls.js': require.resolve('hls.js/dist/hls.js'),
  shaka: require.resolve(`shaka-player/dist/shaka-player.compiled${debug ? '.debug' : ''}.js`),
  native: null,
};
if (!(engine in scripts) || !url) {
  process.stderr.write('usage: node browser.mjs hls.js|shaka|native URL MAX_SECONDS\n');
  process.exit(2);
}

/** The playlist to play: `url` itself, or what POSTing a stream's start URL returns. */
async function startStream(url) {
  if (!/\/api\/streams\/[^/]+\/hls$/.test(url)) { return url; }
  const r = await fetch(url, { method: 'POST' });
  if (!r.ok) { throw new Error(`POST ${url}: ${r.status} ${await r.text()}`); }
  return new URL((await r.json()).url, url).toString();
}

let stop = false;
process.stdin.on('data', () => {});
process.stdin.on('end', () => { stop = true; });
process.stdin.on('error', () => { stop = true; });

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
    // With DEBUG=pw:browser too, Chromium's own HLS log reaches stderr.
    ...(debug ? ['--enable-logging=stderr', '--vmodule=*hls*=2,*manifest_demuxer*=2'] : []),
  ],
});
const pageErrors = [];
let last = { t: 0, frames: 0, width: 0, height: 0, fatal: [], errors: [], stalls: 0 };
const emit = extra => process.stdout.write(JSON.stringify({ ...last, ...extra }) + '\n');
try {
  const page = await browser.newPage();
  page.on('pageerror', e => pageErrors.push(`page: ${e.message}`));
  if (debug) {
    page.on('console', m => process.stderr.write(`${new Date().toISOString()} ${m.type()}: ${m.text()}\n`));
  }
  // The page lives on the stream's origin, as a camera page would: no CORS in the way.
  await page.route(new URL('/players-test-page', url).toString(),
    route => route.fulfill({ contentType: 'text/html', body: '<!doctype html><video id=v muted autoplay playsinline></video>' }));
  await page.goto(new URL('/players-test-page', url).toString());
  if (scripts[engine]) { await page.addScriptTag({ path: scripts[engine] }); }
  // A stream's start URL is POSTed now, when the player is ready: times count from here.
  const t0 = await page.evaluate(() => performance.now());
  const playlist = await startStream(url);
  await page.evaluate(([engine, url, t0, debug]) => {
    const v = document.getElementById('v');
    const s = window.state = { fatal: [], errors: [], stalls: 0, t0 };
    v.addEventListener('error', () => s.fatal.push(`video element: ${v.error && v.error.code} ${v.error && v.error.message}`));
    // The first decoded picture's presentation time: time-to-first-frame.
    v.requestVideoFrameCallback(now => { s.firstFrame = (now - s.t0) / 1000; });
    v.addEventListener('waiting', () => { if (v.getVideoPlaybackQuality().totalVideoFrames > 0) { s.stalls++; } });
    if (engine === 'hls.js') {
      const hls = new Hls({ lowLatencyMode: true, debug });
      hls.on(Hls.Events.ERROR, (_, d) => {
        const status = d.response && d.response.code ? ` HTTP ${d.response.code}` : '';
        (d.fatal ? s.fatal : s.errors).push(`hls.js ${d.type} ${d.details}${status}`);
      });
      hls.loadSource(url);
      hls.attachMedia(v);
      s.latency = () => hls.latency;
      s.date = () => hls.playingDate;
    } else if (engine === 'shaka') {
      shaka.polyfill.installAll();
      if (debug) { shaka.log.setLevel(shaka.log.Level.DEBUG); }
      const player = new shaka.Player();
      player.configure({ streaming: { lowLatencyMode: true } });
      // Shaka dispatches a streaming error before its failure callback decides: on a live
      // stream the default callback retries HTTP errors and downgrades them to RECOVERABLE.
      // So errors are classified when reported, by the severity they ended up with.
      s.shakaErrors = [];
      player.addEventListener('error', e => s.shakaErrors.push(e.detail));
      s.classify = () => {
        for (const d of s.shakaErrors.splice(0)) {
          const what = d instanceof shaka.util.Error
            ? `shaka ${d.code} ${JSON.stringify(d.data || []).slice(0, 300)}`
            : `shaka: ${d && d.message || d}`;
          (d.severity === shaka.util.Error.Severity.CRITICAL ? s.fatal : s.errors).push(what);
        }
      };
      player.attach(v)
        .then(() => player.load(url))
        .catch(e => s.fatal.push(`shaka load ${e.code || e}`));
      s.latency = () => player.getStats().liveLatency;
      s.date = () => player.getPlayheadTimeAsDate();
    } else {
      v.src = url;
      s.latency = () => null;
      s.date = () => null;
    }
    v.play().catch(() => {}); // autoplay: muted and allowed by the flag; `error` reports failures
  }, [engine, playlist, t0, debug]);
  const started = Date.now();
  for (;;) {
    const sample = await page.evaluate(() => {
      const v = document.getElementById('v');
      const s = window.state;
      if (s.classify) { s.classify(); }
      const date = s.date();
      const latency = s.latency();
      return {
        t: (performance.now() - s.t0) / 1000,
        frames: v.getVideoPlaybackQuality().totalVideoFrames,
        position: v.currentTime,
        width: v.videoWidth,
        height: v.videoHeight,
        fatal: s.fatal.slice(),
        errors: s.errors.slice(),
        stalls: s.stalls,
        firstFrame: s.firstFrame ?? null,
        latency: Number.isFinite(latency) ? latency : null,
        pdtLatency: date ? (Date.now() - date.getTime()) / 1000 : null,
      };
    });
    // Each distinct error once: a player retrying reports the same one again and again.
    sample.errors = [...new Set(pageErrors.concat(sample.errors))];
    sample.fatal = [...new Set(sample.fatal)];
    last = sample;
    if (stop || Date.now() - started > maxSeconds * 1000) { break; }
    emit({});
    await page.waitForTimeout(250);
  }
} catch (e) {
  last.fatal.push(`driver: ${e && e.message || e}`);
} finally {
  // playwright gives every launch a fresh, temporary profile and removes it here.
  await browser.close();
}
emit({ done: true });
