// End-to-end test of the web page in headless Chromium with a fake microphone that
// plays ../shared/audio/jfk.wav in a loop.
//
//   RESWHIS_URL=http://127.0.0.1:8765 node tests/browser/page.test.mjs
//
// Uses the system Chromium (CHROMIUM, default /usr/bin/chromium); never downloads one.
// Exits 0 on success, 1 with a message on failure. Screenshots go to tests/artifacts/.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const artifacts = join(repo, 'tests', 'artifacts');
const audio = resolve(repo, '..', 'shared', 'audio', 'jfk.wav');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const baseUrl = (process.env.RESWHIS_URL || '').replace(/\/+$/, '');
const LISTEN_MS = Number(process.env.LISTEN_MS || 14000);
const WATCHDOG_MS = 240_000;

function log(...args) {
  console.log(`[page.test ${new Date().toISOString().slice(11, 23)}]`, ...args);
}

class Failure extends Error {}
function check(condition, message) {
  if (!condition) throw new Failure(message);
}

const normalise = (text) =>
  text.toLowerCase().replace(/[^a-z0-9'\s]/g, ' ').replace(/'/g, '').replace(/\s+/g, ' ').trim();

const PHRASES = ['and so my fellow americans', 'what you can do for your country'];

// 16 kHz mono s16le PCM as a WAV file (to listen to what the page sent).
function wav(pcm) {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVEfmt ', 8);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(16000, 24);
  header.writeUInt32LE(32000, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

// Checks an SRT file's structure; returns its cues.
function parseSrt(srt) {
  check(srt.trim().length > 0, 'the SRT download is empty');
  const blocks = srt.replace(/\r\n/g, '\n').trim().split(/\n{2,}/);
  const cues = [];
  let previousEnd = 0;
  for (const [i, block] of blocks.entries()) {
    const lines = block.split('\n');
    check(lines[0] === String(i + 1), `SRT cue ${i + 1}: expected index "${i + 1}", got ${JSON.stringify(lines[0])}`);
    const match = /^(\d{2}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2}):(\d{2}):(\d{2}),(\d{3})$/.exec(lines[1] || '');
    check(match, `SRT cue ${i + 1}: bad timing line ${JSON.stringify(lines[1])}`);
    const ms = (h, m, s, f) => ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000 + Number(f);
    const from = ms(...match.slice(1, 5));
    const to = ms(...match.slice(5, 9));
    check(to > from, `SRT cue ${i + 1}: ends (${to} ms) before it starts (${from} ms)`);
    check(from >= previousEnd, `SRT cue ${i + 1}: starts at ${from} ms, before the previous cue ends (${previousEnd} ms)`);
    const text = lines.slice(2);
    check(text.length >= 1 && text.length <= 2 && text.every((l) => l.trim()), `SRT cue ${i + 1}: needs 1-2 non-empty text lines, got ${JSON.stringify(text)}`);
    check(text.every((l) => l.length <= 60), `SRT cue ${i + 1}: line too long: ${JSON.stringify(text)}`);
    previousEnd = to;
    cues.push({ from, to, text: text.join(' ') });
  }
  return cues;
}

async function main() {
  check(baseUrl, 'set RESWHIS_URL to the server, e.g. RESWHIS_URL=http://127.0.0.1:8765');
  check(existsSync(chromiumPath), `Chromium not found at ${chromiumPath}: apt-get install chromium (or set CHROMIUM)`);
  check(existsSync(audio), `test audio not found: ${audio}`);
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new Failure('playwright-core is not installed: run `npm ci` in tests/browser');
  }
  mkdirSync(artifacts, { recursive: true });

  const infoResponse = await fetch(`${baseUrl}/info`).catch((e) => {
    throw new Failure(`server unreachable at ${baseUrl}: ${e.cause?.message || e.message}`);
  });
  const info = await infoResponse.json();
  log('server /info:', JSON.stringify({ model_size: info.model_size, language: info.language, version: info.version }));

  const userDataDir = mkdtempSync(join(tmpdir(), 'reswhis-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: false, // --headless=new is passed below, exactly as given
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${audio}`,
    ],
    viewport: { width: 960, height: 600 },
    acceptDownloads: true,
    timeout: 60_000,
  });
  try {
    await context.grantPermissions(['microphone', 'clipboard-read', 'clipboard-write'], { origin: baseUrl });
    const page = context.pages()[0] || (await context.newPage());
    const problems = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    const wire = { sentFrames: 0, sentBytes: 0, oddFrames: 0, received: [], audio: [] };
    page.on('websocket', (ws) => {
      ws.on('framesent', ({ payload }) => {
        if (typeof payload === 'string') { wire.received.push(`-> ${payload}`); return; }
        wire.sentFrames += 1;
        wire.sentBytes += payload.length;
        wire.audio.push(Buffer.from(payload));
        if (payload.length % 2 !== 0) wire.oddFrames += 1;
      });
      ws.on('framereceived', ({ payload }) => wire.received.push(String(payload)));
      ws.on('close', () => wire.received.push('(closed)'));
    });
    const wireSummary = () => `sent ${wire.sentFrames} audio frames, ${wire.sentBytes} bytes (${(wire.sentBytes / 32000).toFixed(1)} s); received ${wire.received.length} messages, last: ${wire.received.slice(-3).join(' ')}`;

    try {
    await page.goto(`${baseUrl}/`, { waitUntil: 'load' });
    // The page shows a model given as a path by its name: models/ggml-tiny.en.bin -> tiny.en.
    const modelName = info.model_size.split(/[\\/]/).pop().replace(/^ggml-/, '').replace(/\.bin$/, '');
    await page.waitForFunction(
      ([name, full]) => {
        const element = document.getElementById('info-model');
        return element?.textContent === name && element.title === full;
      },
      [modelName, info.model_size],
      { timeout: 10_000 },
    ).catch(() => { throw new Failure(`the page does not show the model ${modelName} (${info.model_size}) from /info`); });
    const infoText = await page.locator('#server-info').innerText();
    check(infoText.includes(info.language), `the page does not show the language ${info.language}: ${JSON.stringify(infoText)}`);
    log('page shows:', JSON.stringify(infoText.replace(/\s+/g, ' ')));
    check(await page.locator('#app').getAttribute('data-state') === 'idle', 'the page does not start idle');
    check(await page.locator('#auth').isHidden(), 'API key field shown although auth_required is false');

    // Start with the keyboard (the button must be reachable and operable without a mouse).
    await page.locator('#toggle').focus();
    await page.keyboard.press('Enter');
    await page.waitForSelector('#app[data-state="listening"]', { timeout: 30_000 })
      .catch(async () => {
        const status = await page.locator('#status').innerText();
        throw new Failure(`never reached "listening"; status: ${JSON.stringify(status)}; ${problems.join(' | ')}`);
      });
    log('listening; status:', JSON.stringify(await page.locator('#status-text').innerText()));

    // Record what the page shows while it listens.
    let maxLevel = 0;
    let sawInterim = false;
    let committedWhileListening = '';
    const until = Date.now() + LISTEN_MS;
    while (Date.now() < until) {
      await page.waitForTimeout(250);
      const snapshot = await page.evaluate(() => ({
        level: Number(document.getElementById('level').getAttribute('aria-valuenow')),
        interim: [...document.querySelectorAll('#transcript .interim')].some((e) => e.textContent.trim()),
        state: document.getElementById('app').dataset.state,
      }));
      check(snapshot.state === 'listening', `left "listening" by itself: ${JSON.stringify(await page.locator('#status').innerText())} ${await page.locator('#notice').innerText()}`);
      maxLevel = Math.max(maxLevel, snapshot.level);
      sawInterim ||= snapshot.interim;
    }
    committedWhileListening = await page.locator('#transcript .segment').innerText().catch(() => '');
    await page.screenshot({ path: join(artifacts, 'browser-listening.png'), fullPage: true });
    log(wireSummary());
    log(`after ${LISTEN_MS} ms: level max ${maxLevel}%, interim seen: ${sawInterim}, text so far: ${JSON.stringify(committedWhileListening)}`);
    check(maxLevel > 10, `the level meter never moved (max ${maxLevel}%)`);
    // How soon text appears depends on the server's speed (a busy CI machine may show
    // nothing yet); the final transcript below is what must be right.
    if (!committedWhileListening.trim() && !sawInterim) log('note: no text appeared while listening (slow server?)');

    await page.locator('#toggle').click();
    const finishing = await page.locator('#app').getAttribute('data-state');
    log('after stop the state is', finishing);
    check(['finishing', 'done'].includes(finishing), `expected "finishing" after stop, got "${finishing}"`);
    await page.waitForSelector('#app[data-state="done"], #app[data-state="error"]', { timeout: 150_000 })
      .catch(() => {});
    if (await page.locator('#app').getAttribute('data-state') !== 'done') {
      const status = await page.locator('#status').innerText();
      throw new Failure(`never finished; status: ${JSON.stringify(status)}; notice: ${await page.locator('#notice').innerText()}; transcript: ${JSON.stringify(await page.locator('#transcript').innerText())}`);
    }
    log(wireSummary());
    check(wire.oddFrames === 0, `${wire.oddFrames} audio frames had an odd byte count`);
    log('finished; status:', JSON.stringify(await page.locator('#status-text').innerText()));

    const transcript = (await page.locator('#transcript').innerText()).trim();
    log('transcript:', JSON.stringify(transcript));
    const plain = normalise(transcript);
    for (const phrase of PHRASES) {
      check(plain.includes(phrase), `the transcript lacks "${phrase}": ${JSON.stringify(transcript)}`);
    }
    check(await page.locator('#transcript .interim').evaluateAll((els) => els.every((e) => !e.textContent)),
      'interim text left over after the end');

    // Downloads: plain text and SRT.
    const download = async (selector) => {
      const [file] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), page.locator(selector).click()]);
      const path = await file.path();
      return { name: file.suggestedFilename(), text: readFileSync(path, 'utf8') };
    };
    const txt = await download('#download-txt');
    check(/\.txt$/.test(txt.name), `text download named ${txt.name}`);
    check(normalise(txt.text) === plain, `the .txt download differs from the page:\n${txt.text}\nvs\n${transcript}`);
    const srt = await download('#download-srt');
    check(/\.srt$/.test(srt.name), `SRT download named ${srt.name}`);
    const cues = parseSrt(srt.text);
    log(`SRT ${srt.name}: ${cues.length} cues\n${srt.text}`);
    check(normalise(cues.map((c) => c.text).join(' ')) === plain, 'the SRT text differs from the transcript');
    check(cues.length >= 2, `expected the ~25 s of speech in several cues, got ${cues.length}`);
    check(cues.every((c) => c.to - c.from <= 10_000), 'an SRT cue lasts over 10 s');

    // Copy.
    await page.locator('#copy').click();
    await page.waitForFunction(() => document.getElementById('copy').textContent.startsWith('Copied'), null, { timeout: 5000 })
      .catch(() => { throw new Failure('the Copy button did not report success'); });
    const clipboard = await page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
    if (clipboard !== null) check(normalise(clipboard) === plain, 'the clipboard does not hold the transcript');

    await page.mouse.move(0, 0);
    await page.waitForTimeout(2100); // let the "Copied" label go back
    await page.screenshot({ path: join(artifacts, 'browser.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(artifacts, 'browser-mobile.png'), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `the page is ${overflow}px wider than a 390px phone screen`);
    log('screenshots in', artifacts);

    writeFileSync(join(artifacts, 'browser-sent.wav'), wav(Buffer.concat(wire.audio)));
    const serious = problems.filter((p) => !/favicon/i.test(p));
    check(serious.length === 0, `the page logged problems:\n${serious.join('\n')}`);
    } catch (error) {
      if (error instanceof Failure) {
        error.message += `\n  websocket: ${wire.sentFrames} audio frames sent; messages: ${wire.received.join(' ') || 'none'}`;
        if (problems.length) error.message += `\n  page console: ${problems.join(' | ')}`;
        await page.screenshot({ path: join(artifacts, 'browser-failure.png'), fullPage: true }).catch(() => {});
        writeFileSync(join(artifacts, 'browser-sent.wav'), wav(Buffer.concat(wire.audio)));
        error.message += `\n  the audio the page sent is in ${join(artifacts, 'browser-sent.wav')}`;
      }
      throw error;
    }
  } finally {
    await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error(`FAIL: the browser test took longer than ${WATCHDOG_MS / 1000} s`);
  process.exit(1);
}, WATCHDOG_MS);

main().then(
  () => {
    clearTimeout(watchdog);
    log('PASS');
    process.exit(0);
  },
  (error) => {
    clearTimeout(watchdog);
    console.error(`FAIL: ${error instanceof Failure ? error.message : error.stack || error}`);
    process.exit(1);
  },
);
