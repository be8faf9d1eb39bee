// reswhis web client: microphone -> AudioWorklet (resampled to 16 kHz s16le, see
// pcm-worklet.js) -> WebSocket /transcribe on the same origin -> live transcript.
// No framework, no build step.

const $ = (id) => document.getElementById(id);
const app = $('app');
const toggle = $('toggle');
const toggleLabel = $('toggle-label');
const statusText = $('status-text');
const notice = $('notice');
const transcriptBox = $('transcript');
const placeholder = $('placeholder');
const levelMeter = $('level');
const levelFill = $('level-fill');
const elapsed = $('elapsed');
const keyInput = $('api-key');
const copyButton = $('copy');
const clearButton = $('clear');
const txtLink = $('download-txt');
const srtLink = $('download-srt');
const announce = $('announce');

const KEY_STORAGE = 'reswhis.apiKey';
const LANGUAGE_STORAGE = 'reswhis.language';
const TRANSLATE_STORAGE = 'reswhis.translate';
const languageSelect = $('language');
const translateBox = $('translate');
const SAMPLE_RATE = 16000;
const FINISH_TIMEOUT_MS = 120_000; // the server may still have a backlog to transcribe
const MAX_QUEUED_BYTES = 30 * SAMPLE_RATE * 2; // audio kept while the socket opens

let info = null;
let session = null; // the recording in progress, if any
let offsetMs = 0; // where the next recording starts on the transcript's timeline
const paragraphs = []; // one per recording: { element, committed, interim, pieces: [{from,to,text}] }

// ---------------------------------------------------------------- state & status

const BUTTON = {
  idle: ['Start', false],
  done: ['Start', false],
  error: ['Start', false],
  connecting: ['Cancel', false],
  listening: ['Stop', false],
  finishing: ['Finishing…', true],
};

function setState(state, text) {
  app.dataset.state = state;
  statusText.textContent = text;
  const [label, disabled] = BUTTON[state];
  toggleLabel.textContent = label;
  toggle.disabled = disabled;
  toggle.classList.toggle('stop', state === 'listening' || state === 'connecting');
  keyInput.disabled = !(state === 'idle' || state === 'done' || state === 'error');
  updateActions();
}

function showNotice(text, kind = 'error') {
  notice.textContent = text;
  notice.dataset.kind = kind;
  notice.hidden = !text;
}

function say(text) {
  announce.textContent = '';
  setTimeout(() => { announce.textContent = text; }, 50);
}

// ---------------------------------------------------------------- server info & API key

function storedKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ''; } catch { return ''; }
}

function currentKey() {
  return keyInput.value.trim();
}

async function fetchInfo() {
  const key = currentKey();
  const response = await fetch('info', {
    headers: key ? { Authorization: `Bearer ${key}` } : {},
    cache: 'no-store',
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

function modelName(model) {
  return model.split(/[\\/]/).pop().replace(/^ggml-/, '').replace(/\.bin$/, '') || model;
}

async function loadInfo() {
  try {
    info = await fetchInfo();
    const model = String(info.model_size ?? '?');
    // A model given as a path (models/ggml-base.en.bin) reads better as its name.
    $('info-model').textContent = modelName(model);
    $('info-model').title = model;
    $('info-language').textContent = info.language ?? '?';
    $('info-version').textContent = info.version ?? '?';
    $('auth').hidden = !info.auth_required;
    fillLanguages(info);
  } catch {
    $('server-info').textContent = 'Server info unavailable — is the server running?';
  }
}

// ---------------------------------------------------------------- language & translation

function stored(name) {
  try { return localStorage.getItem(name) || ''; } catch { return ''; }
}

function remember(name, value) {
  try {
    if (value) localStorage.setItem(name, value); else localStorage.removeItem(name);
  } catch { /* storage disabled: the choice still holds for this visit */ }
}

// The languages the server's model knows (from /info), "Detect" when it can detect,
// and the translation switch when it can translate.
function fillLanguages(details) {
  const languages = Array.isArray(details.languages) ? details.languages : [];
  const wanted = stored(LANGUAGE_STORAGE);
  languageSelect.replaceChildren();
  const add = (value, label) => {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = label;
    languageSelect.append(option);
  };
  add('', `Server default (${details.language ?? '?'})`);
  if (details.language_detection) add('auto', 'Detect automatically');
  for (const language of languages) {
    const name = language.name ? language.name[0].toUpperCase() + language.name.slice(1) : language.code;
    add(language.code, `${name} (${language.code})`);
  }
  languageSelect.value = [...languageSelect.options].some((o) => o.value === wanted) ? wanted : '';
  languageSelect.disabled = languages.length <= 1 && !details.language_detection;
  $('translate-item').hidden = !details.translation;
  translateBox.checked = Boolean(details.translation) && stored(TRANSLATE_STORAGE) === '1';
}

languageSelect.addEventListener('change', () => remember(LANGUAGE_STORAGE, languageSelect.value));
translateBox.addEventListener('change', () => remember(TRANSLATE_STORAGE, translateBox.checked ? '1' : ''));

// The session's query string: interim guesses, language, task and the API key.
function sessionQuery() {
  const query = new URLSearchParams({ interim: '1' });
  if (languageSelect.value) query.set('language', languageSelect.value);
  if (translateBox.checked && !$('translate-item').hidden) query.set('task', 'translate');
  const key = currentKey();
  if (key) query.set('token', key);
  return query.toString();
}

function showDetected(language, probability) {
  const named = (info?.languages || []).find((l) => l.code === language);
  const name = named?.name ? named.name[0].toUpperCase() + named.name.slice(1) : language;
  $('detected-language').textContent = `${name} (${Math.round(probability * 100)} %)`;
  $('detected').hidden = false;
}

keyInput.value = storedKey();
keyInput.addEventListener('change', () => {
  try {
    if (currentKey()) localStorage.setItem(KEY_STORAGE, currentKey());
    else localStorage.removeItem(KEY_STORAGE);
  } catch { /* storage disabled: the key still works for this visit */ }
  if (app.dataset.state === 'error') { showNotice(''); setState('idle', 'Ready'); }
});
$('api-key-show').addEventListener('click', (event) => {
  const show = keyInput.type === 'password';
  keyInput.type = show ? 'text' : 'password';
  event.currentTarget.setAttribute('aria-pressed', String(show));
  event.currentTarget.textContent = show ? 'Hide' : 'Show';
});

// ---------------------------------------------------------------- starting

function microphoneError(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Microphone permission denied. Allow this site to use the microphone (the icon in the address bar) and press Start again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone found. Connect one and press Start again.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The microphone could not be started — another application may be using it.';
    default:
      return `The microphone could not be opened${error && error.message ? `: ${error.message}` : '.'}`;
  }
}

async function start() {
  showNotice('');
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    fail(null, 'The microphone is only available on secure pages. Open this page over https:// (or on http://localhost).');
    return;
  }
  if (typeof AudioWorkletNode === 'undefined') {
    fail(null, 'This browser cannot process microphone audio here (no AudioWorklet). Try a current Firefox, Chrome or Safari.');
    return;
  }
  if (info?.auth_required && !currentKey()) {
    fail(null, 'This server requires an API key: enter it above, then press Start.');
    $('auth').hidden = false;
    keyInput.focus();
    return;
  }

  const s = {
    ws: null, stream: null, context: null, node: null,
    opened: false, done: false, cancelled: false, ending: false, finished: false,
    queue: [], queuedBytes: 0, bytesSent: 0, lastError: '',
    paragraph: null, startedAt: 0, timer: 0, finishTimer: 0, wakeLock: null,
  };
  session = s;
  setState('connecting', 'Waiting for the microphone…');
  try {
    // Created while the click still counts as a user gesture (Safari needs that), at
    // the device's own rate (Firefox refuses to mix rates): the worklet resamples.
    s.context = new AudioContext({ latencyHint: 'interactive' });
  } catch (error) {
    fail(s, `Audio capture could not start: ${error.message || error}`);
    return;
  }

  try {
    s.stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        channelCount: 1,
        // The raw signal: echo cancellation would remove speech played on this computer,
        // noise suppression leaves artefacts Whisper copes with worse than with noise,
        // and automatic gain control clips loud speech (Whisper normalises levels itself).
        echoCancellation: false,
        noiseSuppression: false,
        autoGainControl: false,
      },
    });
  } catch (error) {
    fail(s, microphoneError(error));
    return;
  }
  if (s.cancelled) { teardownAudio(s); return; }

  try {
    await s.context.audioWorklet.addModule('pcm-worklet.js');
    const source = s.context.createMediaStreamSource(s.stream);
    s.node = new AudioWorkletNode(s.context, 'pcm-capture', {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
    });
    s.node.port.onmessage = (event) => onWorklet(s, event.data);
    source.connect(s.node);
    s.node.connect(s.context.destination); // silent; keeps the graph pulling audio
    await s.context.resume();
  } catch (error) {
    // The worklet comes from the server: a network error here usually means it is gone.
    const reachable = await fetchInfo().then(() => true, () => false);
    fail(s, reachable
      ? `Audio capture could not start: ${error.message || error}`
      : 'Server unreachable. Check that reswhis is running and reachable from this device.');
    return;
  }
  for (const track of s.stream.getAudioTracks()) {
    track.addEventListener('ended', () => {
      if (session === s && !s.ending) {
        showNotice('The microphone was disconnected; finishing what was recorded.', 'warn');
        stop();
      }
    });
  }
  if (s.cancelled) { teardownAudio(s); return; }

  setState('connecting', 'Connecting to the server…');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const base = location.pathname.replace(/[^/]*$/, ''); // works under a proxy's sub-path
  const url = `${scheme}//${location.host}${base}transcribe?${sessionQuery()}`;
  try {
    s.ws = new WebSocket(url);
  } catch (error) {
    fail(s, `Cannot connect: ${error.message || error}`);
    return;
  }
  s.ws.binaryType = 'arraybuffer';
  s.ws.onopen = () => onOpen(s);
  s.ws.onmessage = (event) => onMessage(s, event);
  s.ws.onclose = (event) => onClose(s, event);
}

function onOpen(s) {
  if (s.cancelled) return;
  s.opened = true;
  for (const chunk of s.queue) sendAudio(s, chunk);
  s.queue = [];
  s.paragraph = newParagraph();
  s.startedAt = performance.now();
  tick(s);
  s.timer = setInterval(() => tick(s), 500);
  if (navigator.wakeLock) {
    navigator.wakeLock.request('screen').then((lock) => { s.wakeLock = lock; }, () => {});
  }
  if (!s.ending) setState('listening', 'Listening — speak now');
}

function tick(s) {
  const seconds = Math.floor((performance.now() - s.startedAt) / 1000);
  elapsed.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}

// ---------------------------------------------------------------- audio

let levelShown = 0;
let levelAnnounced = 0;

function onWorklet(s, message) {
  if (message.type === 'pcm') {
    if (message.pcm.byteLength > 0) {
      if (s.opened) sendAudio(s, message.pcm);
      else if (s.queuedBytes < MAX_QUEUED_BYTES) {
        s.queue.push(message.pcm);
        s.queuedBytes += message.pcm.byteLength;
      }
    }
    if (message.final) endOfStream(s);
  } else if (message.type === 'level') {
    showLevel(message.rms, message.peak);
  }
}

function sendAudio(s, pcm) {
  if (s.ws && s.ws.readyState === WebSocket.OPEN) {
    s.ws.send(pcm);
    s.bytesSent += pcm.byteLength;
  }
}

function showLevel(rms, peak) {
  // -60 dBFS .. 0 dBFS onto the bar, with a fast attack and a slower fall.
  const db = 20 * Math.log10(Math.max(rms, 1e-6));
  const target = Math.min(1, Math.max(0, (db + 60) / 60));
  levelShown = target > levelShown ? target : levelShown * 0.85 + target * 0.15;
  levelFill.style.transform = `scaleX(${levelShown.toFixed(3)})`;
  levelMeter.dataset.zone = peak >= 0.99 ? 'clip' : db > -12 ? 'hot' : 'ok';
  const now = performance.now();
  if (now - levelAnnounced > 400) { // the ARIA value need not change 25 times a second
    levelAnnounced = now;
    const value = Math.round(levelShown * 100);
    levelMeter.setAttribute('aria-valuenow', String(value));
    levelMeter.setAttribute('aria-valuetext', value < 5 ? 'silent' : `${value} percent`);
  }
}

function resetLevel() {
  levelShown = 0;
  levelFill.style.transform = 'scaleX(0)';
  levelMeter.setAttribute('aria-valuenow', '0');
  levelMeter.setAttribute('aria-valuetext', 'silent');
  delete levelMeter.dataset.zone;
}

function teardownAudio(s) {
  if (s.stream) for (const track of s.stream.getTracks()) track.stop();
  if (s.node) s.node.port.onmessage = null;
  if (s.context && s.context.state !== 'closed') s.context.close().catch(() => {});
  s.stream = null;
  s.node = null;
  s.context = null;
  if (s.wakeLock) s.wakeLock.release().catch(() => {});
  s.wakeLock = null;
  resetLevel();
}

// ---------------------------------------------------------------- stopping

function stop() {
  const s = session;
  if (!s) return;
  if (!s.opened) { // still waiting for the microphone or the server: just cancel
    s.cancelled = true;
    teardownAudio(s);
    if (s.ws) s.ws.close(1000, 'cancelled');
    session = null;
    setState('idle', 'Cancelled');
    return;
  }
  if (s.ending) return;
  s.ending = true;
  setState('finishing', 'Finishing — transcribing the last words…');
  // The worklet pushes out what is still inside its filter, then says `final`.
  if (s.node) {
    s.node.port.postMessage({ type: 'flush' });
    setTimeout(() => endOfStream(s), 1000); // in case the audio thread is stalled
  } else {
    endOfStream(s);
  }
}

function endOfStream(s) {
  if (s.eosSent) return;
  s.eosSent = true;
  teardownAudio(s);
  clearInterval(s.timer);
  if (s.ws && s.ws.readyState === WebSocket.OPEN) {
    s.ws.send(JSON.stringify({ type: 'eos' }));
  }
  s.finishTimer = setTimeout(() => {
    if (!s.finished) {
      s.lastError = 'the server did not finish in time';
      s.ws.close(1000, 'timeout');
    }
  }, FINISH_TIMEOUT_MS);
}

// ---------------------------------------------------------------- messages from the server

function onMessage(s, event) {
  if (typeof event.data !== 'string') return;
  let message;
  try { message = JSON.parse(event.data); } catch { return; }
  if (message.type === undefined && typeof message.content === 'string') {
    addCommitted(s.paragraph, message.from, message.to, message.content);
  } else if (message.type === 'interim') {
    setInterim(s.paragraph, message.content || '');
  } else if (message.type === 'language') {
    showDetected(message.language, message.probability);
  } else if (message.type === 'error') {
    s.lastError = message.message || 'unknown error';
    showNotice(`Server: ${s.lastError}`, 'warn');
  } else if (message.type === 'done') {
    s.done = true;
  }
}

function closeReason(s, event) {
  if (s.lastError === 'the server did not finish in time') return 'The server did not finish in time.';
  switch (event.code) {
    case 1001: return 'The server is shutting down; what it heard so far is kept.';
    case 1008: return `The server ended the session: ${event.reason || 'policy limit reached'}.`;
    case 1009: return 'The server refused an audio frame as too big.';
    case 1011: return `The server hit an internal error${s.lastError ? `: ${s.lastError}` : ''}.`;
    case 1000:
      if (s.ending && !s.lastError) return 'The server closed the session before it finished transcribing (it may be overloaded); the text so far is kept.';
      return `The server closed the session${s.lastError ? `: ${s.lastError}` : ''}.`;
    default: return `Connection lost${event.code !== 1006 ? ` (code ${event.code}${event.reason ? `: ${event.reason}` : ''})` : ''}.`;
  }
}

// A refused upgrade only shows up as a failed connection (close code 1006): ask the
// server why — the same URL without the upgrade answers with the reason — then /info.
async function explainRefusal() {
  try {
    const response = await fetch(`transcribe?${sessionQuery()}`, { cache: 'no-store' });
    if (response.status === 400) {
      const body = await response.json();
      if (body.error) return `The server refused these settings: ${body.error}`;
    }
  } catch { /* unreachable: /info below says so */ }
  let details;
  try {
    details = await fetchInfo();
  } catch {
    return 'Server unreachable. Check that reswhis is running and reachable from this device.';
  }
  info = details;
  if (details.auth_required) {
    $('auth').hidden = false;
    if (!currentKey()) return 'This server requires an API key: enter it above, then press Start.';
    if (!('workers' in details)) return 'The API key was rejected. Check it and press Start again.';
  }
  const limit = details.limits?.max_sessions;
  if (limit !== undefined && details.active_sessions >= limit) {
    return `Server busy: every session slot (${limit}) is in use. Try again in a moment.`;
  }
  return 'The server refused the connection (it may be busy, or a proxy may not pass WebSockets). Try again in a moment.';
}

async function onClose(s, event) {
  if (session !== s || s.cancelled) return;
  s.finished = true;
  clearTimeout(s.finishTimer);
  clearInterval(s.timer);
  teardownAudio(s);
  offsetMs += Math.round(s.bytesSent / 2 / SAMPLE_RATE * 1000);
  if (s.paragraph) setInterim(s.paragraph, '');
  if (!s.opened) {
    setState('connecting', 'Connection failed — checking why…');
    const reason = await explainRefusal();
    if (session !== s) return; // cancelled meanwhile
    session = null;
    fail(null, reason);
    return;
  }
  session = null;
  if (s.done) {
    const words = s.paragraph ? s.paragraph.pieces.map((p) => p.text).join('').split(/\s+/).filter(Boolean).length : 0;
    setState('done', `Finished — ${words} word${words === 1 ? '' : 's'} transcribed`);
    say('Transcription finished.');
  } else {
    fail(null, closeReason(s, event));
  }
  if (s.paragraph && s.paragraph.pieces.length === 0) {
    s.paragraph.element.remove();
    paragraphs.splice(paragraphs.indexOf(s.paragraph), 1);
    placeholder.hidden = paragraphs.length > 0;
    updateActions();
  }
}

function fail(s, message) {
  if (s) {
    s.cancelled = true;
    teardownAudio(s);
    if (s.ws && s.ws.readyState <= WebSocket.OPEN) s.ws.close(1000);
    if (session === s) session = null;
  }
  setState('error', shortReason(message));
  showNotice(message, 'error');
}

function shortReason(message) {
  if (/permission/i.test(message)) return 'Error: microphone permission denied';
  if (/No microphone/.test(message)) return 'Error: no microphone';
  if (/unreachable/i.test(message)) return 'Error: server unreachable';
  if (/API key/.test(message)) return /rejected/.test(message) ? 'Error: wrong API key' : 'Error: API key required';
  if (/busy/i.test(message)) return 'Error: server busy';
  if (/Connection lost/.test(message)) return 'Error: connection lost';
  return 'Error';
}

// ---------------------------------------------------------------- the transcript

function newParagraph() {
  const element = document.createElement('p');
  element.className = 'segment';
  const committed = document.createElement('span');
  const interim = document.createElement('span');
  interim.className = 'interim';
  interim.setAttribute('aria-hidden', 'true'); // a guess: not worth announcing
  element.append(committed, interim);
  transcriptBox.append(element);
  const paragraph = { element, committed, interim, pieces: [], offset: offsetMs };
  paragraphs.push(paragraph);
  return paragraph;
}

function formatClock(ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}.${String(Math.floor((ms % 1000) / 100))}`;
}

function nearBottom() {
  return transcriptBox.scrollHeight - transcriptBox.scrollTop - transcriptBox.clientHeight < 40;
}

function addCommitted(paragraph, from, to, text) {
  if (!paragraph) return;
  const follow = nearBottom();
  const piece = { from: paragraph.offset + (from || 0), to: paragraph.offset + (to || 0), text };
  paragraph.pieces.push(piece);
  const span = document.createElement('span');
  span.textContent = paragraph.pieces.length === 1 ? text.replace(/^\s+/, '') : text;
  span.title = `${formatClock(piece.from)} – ${formatClock(piece.to)}`;
  paragraph.committed.append(span);
  paragraph.interim.textContent = '';
  placeholder.hidden = true;
  if (follow) transcriptBox.scrollTop = transcriptBox.scrollHeight;
  updateActions();
}

function setInterim(paragraph, text) {
  if (!paragraph) return;
  const follow = nearBottom();
  paragraph.interim.textContent = paragraph.pieces.length === 0 ? text.replace(/^\s+/, '') : text;
  if (text) placeholder.hidden = true;
  if (follow) transcriptBox.scrollTop = transcriptBox.scrollHeight;
}

function transcriptText() {
  return paragraphs
    .map((p) => p.pieces.map((piece) => piece.text).join('').trim())
    .filter(Boolean)
    .join('\n\n');
}

// ---------------------------------------------------------------- SRT

const CUE_MAX_CHARS = 84; // two lines of 42, the usual subtitle limit
const CUE_MAX_MS = 7000;
const CUE_GAP_MS = 1200; // a pause this long starts a new cue
const CUE_PAUSE_MS = 400; // a shorter pause does when the cue already has some text
const CUE_MIN_CHARS = 30;
const CUE_MIN_MS = 1000;

// Pieces may hold several words: spread their time over the words by length, so cues
// can break anywhere.
function wordsOf(pieces) {
  const words = [];
  for (const piece of pieces) {
    const tokens = piece.text.trim().split(/\s+/).filter(Boolean);
    const total = tokens.reduce((n, t) => n + t.length, 0) || 1;
    let t = piece.from;
    for (const token of tokens) {
      const span = ((piece.to - piece.from) * token.length) / total;
      words.push({ from: Math.round(t), to: Math.round(t + span), text: token });
      t += span;
    }
  }
  return words;
}

function buildCues(paragraphList) {
  const cues = [];
  for (const paragraph of paragraphList) {
    let cue = null;
    for (const word of wordsOf(paragraph.pieces)) {
      const breakHere = !cue
        || word.from - cue.to > CUE_GAP_MS
        || (word.from - cue.to >= CUE_PAUSE_MS && cue.text.length >= CUE_MIN_CHARS)
        || cue.text.length + 1 + word.text.length > CUE_MAX_CHARS
        || word.to - cue.from > CUE_MAX_MS
        || (/[.?!…]["')\]]?$/.test(cue.text) && cue.text.length >= CUE_MIN_CHARS - 6)
        || (/[,;:]$/.test(cue.text) && cue.text.length >= 60);
      if (breakHere) {
        cue = { from: word.from, to: word.to, text: word.text };
        cues.push(cue);
      } else {
        cue.to = Math.max(cue.to, word.to);
        cue.text += ` ${word.text}`;
      }
    }
  }
  // Readable durations without overlaps.
  for (let i = 0; i < cues.length; i++) {
    const next = cues[i + 1];
    const limit = next ? next.from : Infinity;
    if (cues[i].to - cues[i].from < CUE_MIN_MS) cues[i].to = Math.min(cues[i].from + CUE_MIN_MS, limit);
    if (cues[i].to > limit) cues[i].to = limit;
    if (cues[i].to <= cues[i].from) cues[i].to = cues[i].from + 1;
  }
  return cues;
}

function srtTime(ms) {
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = Math.floor((ms % 60000) / 1000);
  return `${pad(h)}:${pad(m)}:${pad(s)},${pad(ms % 1000, 3)}`;
}

// At most two lines, broken at the space nearest the middle.
function wrapCue(text) {
  if (text.length <= 42) return text;
  const middle = text.length / 2;
  let best = -1;
  for (let i = text.indexOf(' '); i !== -1; i = text.indexOf(' ', i + 1)) {
    if (best === -1 || Math.abs(i - middle) < Math.abs(best - middle)) best = i;
  }
  return best === -1 ? text : `${text.slice(0, best)}\n${text.slice(best + 1)}`;
}

function buildSrt() {
  return buildCues(paragraphs)
    .map((cue, i) => `${i + 1}\n${srtTime(cue.from)} --> ${srtTime(cue.to)}\n${wrapCue(cue.text)}\n`)
    .join('\n');
}

// ---------------------------------------------------------------- copy, download, clear

let txtUrl = '';
let srtUrl = '';
let actionsPending = false;

function stamp() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}-${pad(d.getHours())}${pad(d.getMinutes())}`;
}

function setLink(link, url, name) {
  if (url) {
    link.href = url;
    link.download = name;
    link.removeAttribute('aria-disabled');
  } else {
    link.removeAttribute('href'); // not focusable, not clickable
    link.setAttribute('aria-disabled', 'true');
  }
}

function updateActions() {
  if (actionsPending) return;
  actionsPending = true;
  queueMicrotask(() => {
    actionsPending = false;
    const text = transcriptText();
    const has = text.length > 0;
    copyButton.disabled = !has;
    const state = app.dataset.state;
    clearButton.disabled = !has || state === 'listening' || state === 'finishing' || state === 'connecting';
    if (txtUrl) URL.revokeObjectURL(txtUrl);
    if (srtUrl) URL.revokeObjectURL(srtUrl);
    txtUrl = has ? URL.createObjectURL(new Blob([`${text}\n`], { type: 'text/plain;charset=utf-8' })) : '';
    srtUrl = has ? URL.createObjectURL(new Blob([buildSrt()], { type: 'application/x-subrip;charset=utf-8' })) : '';
    const name = `transcript-${stamp()}`;
    setLink(txtLink, txtUrl, `${name}.txt`);
    setLink(srtLink, srtUrl, `${name}.srt`);
  });
}

copyButton.addEventListener('click', async () => {
  const text = transcriptText();
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    // Older browsers / insecure pages: copy a selection instead.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'visually-hidden';
    document.body.append(area);
    area.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    area.remove();
    copyButton.focus();
  }
  copyButton.textContent = ok ? 'Copied ✓' : 'Copy failed';
  say(ok ? 'Transcript copied to the clipboard.' : 'Could not copy; select the text and copy it by hand.');
  setTimeout(() => { copyButton.textContent = 'Copy'; }, 2000);
});

clearButton.addEventListener('click', () => {
  for (const p of paragraphs) p.element.remove();
  paragraphs.length = 0;
  offsetMs = 0;
  placeholder.hidden = false;
  elapsed.textContent = '0:00';
  updateActions();
  say('Transcript cleared.');
  toggle.focus();
});

// ---------------------------------------------------------------- wiring

toggle.addEventListener('click', () => {
  const state = app.dataset.state;
  if (state === 'listening' || state === 'connecting') stop();
  else if (state === 'idle' || state === 'done' || state === 'error') start();
});

window.addEventListener('pagehide', () => {
  if (session?.ws && session.ws.readyState === WebSocket.OPEN) session.ws.close(1000, 'page closed');
});

if (!window.isSecureContext) $('secure-hint').hidden = false;
setState('idle', 'Ready');
loadInfo();
