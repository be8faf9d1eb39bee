"""Shared by the verification steps of bench/fetch-audio.sh and bench/fetch-lang-audio.sh."""
import array
import math
import wave


def check_wav(path, label, text):
    """(seconds, RMS in dBFS, problems) of a fetched WAV and its reference `text`."""
    with wave.open(path) as w:
        ok = (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        frames = w.readframes(w.getnframes())
        seconds = w.getnframes() / 16000
    samples = array.array("h", frames)
    rms = math.sqrt(sum(x * x for x in samples) / max(len(samples), 1)) / 32768
    db = 20 * math.log10(rms) if rms > 0 else -999
    problems = []
    if not ok:
        problems.append(f"{label}: not 16 kHz mono s16")
    if db < -45:
        problems.append(f"{label}: near-silent (RMS {db:.1f} dBFS)")
    if not text.strip() or "\n" in text.strip() or "\t" in text:
        problems.append(f"{label}: transcript empty or multi-line")
    return seconds, db, problems
