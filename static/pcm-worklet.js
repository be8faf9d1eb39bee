// reswhis capture worklet: microphone audio (any rate, any channel count) in,
// 16 kHz mono s16le frames of 100 ms out, posted to the page as transferable
// ArrayBuffers, plus a level reading for the meter about 25 times a second.
//
// Resampling: a polyphase windowed-sinc FIR (Kaiser window, beta 8), i.e. the
// textbook band-limited resampler. Whisper hears 0-8 kHz; a 44.1/48 kHz microphone
// carries energy up to 22-24 kHz which, decimated naively (or by linear
// interpolation alone), folds back into the speech band as audible aliasing. The
// filter passes up to ~7 kHz, is -6 dB at 7.5 kHz and reaches ~-75 dB at the new
// Nyquist (8 kHz), with ~2.5 ms of group delay. The conversion is exact for rational
// rate ratios: 48000 -> 16000 is 1 phase, 44100 -> 16000 is 160 phases of ~222
// taps (35k coefficients, a few million multiply-adds a second: negligible). Rates
// with an unwieldy ratio use 2048 phases (error < 0.02 % in rate, inaudible).

const OUT_RATE = 16000;
const FRAME_SAMPLES = 1600; // 100 ms at 16 kHz = 3200 bytes
const CUTOFF_HZ = 7500;
const HALF_WIDTH_SEC = 0.0025;
const KAISER_BETA = 8;
const MAX_PHASES = 2048;

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

// Modified Bessel function of the first kind, order 0 (power series).
function besselI0(x) {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

export class Resampler {
  constructor(inRate, outRate = OUT_RATE) {
    const g = gcd(Math.round(inRate), outRate);
    let up = outRate / g; // L: phases per input sample
    let down = Math.round(inRate) / g; // M: input step per output, in 1/L units
    if (up > MAX_PHASES) {
      up = MAX_PHASES;
      down = Math.round((inRate * MAX_PHASES) / outRate);
    }
    this.up = up;
    this.down = down;
    // When upsampling (e.g. an 8 kHz Bluetooth headset) the input Nyquist is the limit.
    const cutoff = Math.min(CUTOFF_HZ, 0.47 * inRate);
    const fc = cutoff / inRate; // cycles per input sample
    const half = Math.max(2, Math.ceil(HALF_WIDTH_SEC * inRate));
    this.half = half;
    this.taps = 2 * half;
    this.table = new Float32Array(up * this.taps);
    const i0Beta = besselI0(KAISER_BETA);
    for (let p = 0; p < up; p++) {
      const frac = p / up;
      let sum = 0;
      for (let j = 0; j < this.taps; j++) {
        // Distance in input samples from tap j to the output instant.
        const d = frac + half - 1 - j;
        const x = 2 * fc * d;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        const r = d / half;
        const w = Math.abs(r) >= 1 ? 0 : besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0Beta;
        const h = 2 * fc * sinc * w;
        this.table[p * this.taps + j] = h;
        sum += h;
      }
      // Unity gain at DC for every phase (no ripple from the truncated kernel).
      for (let j = 0; j < this.taps; j++) this.table[p * this.taps + j] /= sum;
    }
    // Input history; `pos` is the input index of the next output instant, `phase` its
    // fractional part in 1/up units. Start with half-1 zeros of history.
    this.buffer = new Float32Array(8192 + this.taps);
    this.length = half - 1;
    this.pos = half - 1;
    this.phase = 0;
  }

  // Feeds input samples; calls emit(sample) for every output sample now computable.
  push(input, emit) {
    if (this.length + input.length > this.buffer.length) {
      const bigger = new Float32Array((this.length + input.length) * 2);
      bigger.set(this.buffer.subarray(0, this.length));
      this.buffer = bigger;
    }
    this.buffer.set(input, this.length);
    this.length += input.length;
    const { buffer, table, taps, half, up, down } = this;
    let pos = this.pos;
    let phase = this.phase;
    while (pos + half < this.length) {
      const start = pos - half + 1;
      const offset = phase * taps;
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += buffer[start + j] * table[offset + j];
      emit(acc);
      phase += down;
      pos += Math.floor(phase / up);
      phase %= up;
    }
    // Drop history nobody needs any more.
    const keep = pos - half + 1;
    if (keep > 0) {
      buffer.copyWithin(0, keep, this.length);
      this.length -= keep;
      pos -= keep;
    }
    this.pos = pos;
    this.phase = phase;
  }

  // Pushes enough silence to bring out the samples still inside the filter.
  flush(emit) {
    this.push(new Float32Array(this.half + 1), emit);
  }
}

// Lets the resampler be loaded (and checked) outside an AudioWorkletGlobalScope.
const Processor = typeof AudioWorkletProcessor === 'function' ? AudioWorkletProcessor : class {};

class PcmCapture extends Processor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate);
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.mono = new Float32Array(128);
    this.levelEvery = Math.round(sampleRate / 25);
    this.levelCount = 0;
    this.levelSquares = 0;
    this.levelPeak = 0;
    this.stopped = false;
    this.emit = (s) => {
      const v = s > 1 ? 1 : s < -1 ? -1 : s;
      this.frame[this.filled++] = v < 0 ? Math.round(v * 32768) : Math.round(v * 32767);
      if (this.filled === FRAME_SAMPLES) this.post(false);
    };
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === 'flush' && !this.stopped) {
        this.stopped = true;
        this.resampler.flush(this.emit);
        this.post(true);
      }
    };
    this.port.postMessage({ type: 'ready', inputRate: sampleRate, phases: this.resampler.up, taps: this.resampler.taps });
  }

  post(final) {
    const pcm = this.frame.slice(0, this.filled).buffer;
    this.filled = 0;
    this.port.postMessage({ type: 'pcm', pcm, final }, [pcm]);
  }

  process(inputs) {
    if (this.stopped) return false;
    const input = inputs[0];
    if (!input || input.length === 0 || !input[0]) return true;
    const n = input[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    const mono = this.mono;
    const channels = input.length;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < channels; c++) s += input[c][i];
      mono[i] = s / channels;
    }
    for (let i = 0; i < n; i++) {
      const v = mono[i];
      this.levelSquares += v * v;
      const a = v < 0 ? -v : v;
      if (a > this.levelPeak) this.levelPeak = a;
    }
    this.levelCount += n;
    if (this.levelCount >= this.levelEvery) {
      this.port.postMessage({
        type: 'level',
        rms: Math.sqrt(this.levelSquares / this.levelCount),
        peak: this.levelPeak,
      });
      this.levelCount = 0;
      this.levelSquares = 0;
      this.levelPeak = 0;
    }
    this.resampler.push(mono, this.emit);
    return true;
  }
}

if (typeof registerProcessor === 'function') {
  registerProcessor('pcm-capture', PcmCapture);
}
