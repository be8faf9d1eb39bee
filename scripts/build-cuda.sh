#!/usr/bin/env bash
# Build reswhis with CUDA (`cargo build --release --features cuda`) on a machine that has no
# CUDA toolkit installed: the toolkit is put together, without root, from NVIDIA's own PyPI
# wheels, pinned below (CUDA 13.0 Update 2, the set that PyPI's `cuda-toolkit==13.0.2`
# names). No GPU or driver is needed to build; one is needed to run on the GPU.
#
#   scripts/build-cuda.sh [--arch CC] [--clean]   set up the toolkit, then build
#   scripts/build-cuda.sh --check [--arch CC]     set up the toolkit, then only prove it works:
#                                                 a CMake configure of whisper.cpp's CUDA
#                                                 backend and a link probe (no compile)
#   eval "$(scripts/build-cuda.sh --env)"         set up the toolkit, print the exports
#   scripts/build-cuda.sh --system ...            use an installed toolkit instead of wheels
#
# Why CUDA 13 and not 12: no nvidia-cuda-nvcc-cu12 wheel (12.0 … 12.9) contains `nvcc`
# itself, only ptxas and libnvvm. The CUDA 13 wheels (nvidia-cuda-nvcc, nvidia-nvvm,
# nvidia-cuda-crt, …) install a complete toolkit tree under nvidia/cu13/. A CUDA 13 build
# needs an NVIDIA driver of the R580 series or newer (`nvidia-smi` shows "CUDA Version: 13.x").
# For an older driver, build with a system CUDA 12 toolkit: --system.
#
# --arch CC: the GPU's compute capability, one per build (default 90). CUDA 13 supports 75+:
#    75 T4, RTX 20xx          80 A100, A30            86 RTX 30xx, A10, A40, A2
#    89 L4, L40S, RTX 40xx    90 H100, H200, GH200    100 B200, GB200
#    120 RTX 50xx, RTX PRO 6000 Blackwell
# It is compiled to machine code for CC plus PTX, so newer GPUs can JIT it (slow first start).
#
# Environment:
#   RESWHIS_CUDA_DIR        where the wheels go (default ~/.cache/reswhis/cuda-13.0.2);
#                           the toolkit is then $RESWHIS_CUDA_DIR/toolkit (528 MB download,
#                           841 MB on disk)
#   RESWHIS_PYTHON          the Python whose pip installs the wheels (default python3)
#   CARGO_TARGET_DIR        build directory (default target/cuda-smCC, apart from the CPU build)
#   RESWHIS_CUDA_CHECK_DIR  --check: keep the CMake build directory here (default: a temp dir)
#   CUDA_PATH               --system: the toolkit root (default: from `nvcc` on PATH, else
#                           /usr/local/cuda)
#
# whisper-rs-sys passes every WHISPER_*, GGML_* and CMAKE_* variable to whisper.cpp's CMake,
# which is how CMAKE_CUDA_COMPILER, CMAKE_CUDA_ARCHITECTURES and GGML_NATIVE reach it. It
# does not rebuild when they change: after changing the toolkit, use --clean.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CUDA_RELEASE=13.0.2
# package==version sha256 (of the manylinux x86_64 wheel)
PINS=(
    "nvidia-cuda-nvcc==13.0.88 56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03"
    "nvidia-nvvm==13.0.88 c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0"
    "nvidia-cuda-crt==13.0.88 2c8043c7c9e02492716426e9919fc78d2c5b3b2a7a768a88e952676b08aa55a4"
    "nvidia-cuda-runtime==13.0.96 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548"
    "nvidia-cublas==13.1.0.3 ee8722c1f0145ab246bccb9e452153b5e0515fd094c3678df50b2a0888b8b171"
    "nvidia-cuda-cccl==13.0.85 e0da7ad981f3a8aff08241b5bfc1af868742a63e2762f53a5171c492ef242649"
    "nvidia-cuda-culibos==13.0.85 5c178858405f485367175e14f8a7536af6c86c5c428d25301f2218406c316ba0"
)

log() { echo "build-cuda: $*" >&2; }
die() { echo "build-cuda: error: $*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

MODE=build
ARCH=90
CLEAN=0
SYSTEM=0
while [ $# -gt 0 ]; do
    case $1 in
        --check) MODE="check" ;;
        --env) MODE="env" ;;
        --clean) CLEAN=1 ;;
        --system) SYSTEM=1 ;;
        --arch) [ $# -ge 2 ] || usage; ARCH=$2; shift ;;
        --arch=*) ARCH=${1#--arch=} ;;
        -h | --help) usage ;;
        *) log "unknown argument '$1'"; usage ;;
    esac
    shift
done
[[ $ARCH =~ ^[0-9]{2,3}[af]?$ ]] ||
    die "--arch takes one compute capability such as 90 (H100) or 86 (RTX 30xx), not '$ARCH'"

if [ "$SYSTEM" = 0 ] && [ "${ARCH%%[af]}" -lt 75 ]; then
    die "CUDA 13 (the wheels) builds for 75 (T4) and newer only; for sm_$ARCH use a CUDA 12 toolkit: --system"
fi

CUDA_DIR=${RESWHIS_CUDA_DIR:-$HOME/.cache/reswhis/cuda-$CUDA_RELEASE}
PY=${RESWHIS_PYTHON:-python3}
TMPS=()
cleanup() { [ ${#TMPS[@]} -eq 0 ] || rm -rf "${TMPS[@]}"; }
trap cleanup EXIT

# --- 1. the wheels ---------------------------------------------------------------------
install_wheels() {
    local want stamp="$CUDA_DIR/.installed" tmp req line
    want=$(printf '%s\n' "${PINS[@]}")
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$CUDA_DIR/site/nvidia/cu13/bin/nvcc" ]; then
        log "CUDA $CUDA_RELEASE wheels already in $CUDA_DIR"
        return
    fi
    command -v "$PY" >/dev/null ||
        die "no '$PY': install Python 3 with pip (Debian: apt-get install python3-pip) or set RESWHIS_PYTHON"
    "$PY" -m pip --version >/dev/null 2>&1 ||
        die "'$PY -m pip' does not work: install pip (Debian: apt-get install python3-pip) or set RESWHIS_PYTHON"
    mkdir -p "$CUDA_DIR"
    tmp=$(mktemp -d "$CUDA_DIR/.site.XXXXXX")
    TMPS+=("$tmp")
    req="$tmp.txt"
    TMPS+=("$req")
    if [ "$(uname -s)/$(uname -m)" = Linux/x86_64 ]; then
        for line in "${PINS[@]}"; do echo "${line% *} --hash=sha256:${line#* }"; done >"$req"
    else
        # The hashes are those of the x86_64 wheels; elsewhere (aarch64) only the versions pin.
        log "$(uname -s)/$(uname -m): installing the pinned versions without sha256 checks"
        for line in "${PINS[@]}"; do echo "${line% *}"; done >"$req"
    fi
    log "installing the CUDA $CUDA_RELEASE wheels into $CUDA_DIR (528 MB to download, 841 MB unpacked)"
    PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install --disable-pip-version-check --no-input --no-deps --only-binary=:all: \
        --no-compile --progress-bar off --target "$tmp" -r "$req" >&2 ||
        die "pip could not install the wheels (network? disk space in $CUDA_DIR?); run again to retry"
    chmod 755 "$tmp"
    rm -rf "$CUDA_DIR/site"
    mv "$tmp" "$CUDA_DIR/site"
    echo "$want" >"$stamp"
}

# --- 2. lay them out as a toolkit ------------------------------------------------------
# The wheels already form nvidia/cu13/{bin,nvvm,include,lib}; what a toolkit has beyond that
# and the build needs: unversioned .so links (the linker and FindCUDAToolkit look for
# libcudart.so …), lib64 (the usual name), and lib/stubs/libcuda.so, the driver stub that
# the link needs on a machine with no driver. No wheel ships that stub, so it is generated:
# every function cuda.h declares, each returning CUDA_ERROR_STUB_LIBRARY (34) as NVIDIA's stub
# does, with the real driver's soname libcuda.so.1, so the program loads the real driver.
make_driver_stub() {
    local tk=$1 work n
    work=$(mktemp -d "${TMPDIR:-/tmp}/reswhis-cuda-stub.XXXXXX")
    TMPS+=("$work")
    echo '#include <cuda.h>' >"$work/names.c"
    cc -E -P -I"$tk/include" "$work/names.c" |
        grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' \t(' | sort -u >"$work/names"
    n=$(wc -l <"$work/names")
    [ "$n" -gt 300 ] || die "found only $n driver functions in $tk/include/cuda.h; is the toolkit complete?"
    sed 's/.*/int &(void) { return 34; }/' "$work/names" >"$work/stub.c"
    mkdir -p "$tk/lib/stubs"
    cc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$work/libcuda.so" "$work/stub.c"
    mv "$work/libcuda.so" "$tk/lib/stubs/libcuda.so"
    log "generated the driver stub lib/stubs/libcuda.so ($n functions)"
}

layout_toolkit() {
    local tk="$CUDA_DIR/site/nvidia/cu13" lib so f
    [ -x "$tk/bin/nvcc" ] || die "$tk/bin/nvcc is missing: delete $CUDA_DIR and run again"
    command -v cc >/dev/null || die "no C compiler 'cc' (Debian: apt-get install build-essential)"
    for lib in cudart cublas cublasLt; do
        so=
        for f in "$tk/lib/lib$lib.so".[0-9]*; do [ -e "$f" ] && so=$f && break; done
        [ -n "$so" ] || die "$tk/lib/lib$lib.so.* is missing: delete $CUDA_DIR and run again"
        ln -sfn "$(basename "$so")" "$tk/lib/lib$lib.so"
    done
    [ -e "$tk/lib/libculibos.a" ] || die "$tk/lib/libculibos.a is missing: delete $CUDA_DIR and run again"
    [ -e "$tk/lib64" ] || ln -s lib "$tk/lib64"
    [ -f "$tk/lib/stubs/libcuda.so" ] || make_driver_stub "$tk"
    ln -sfn site/nvidia/cu13 "$CUDA_DIR/toolkit"
    # For starting a CUDA build on a machine with NO NVIDIA driver (to test it on the CPU):
    # LD_LIBRARY_PATH=$CUDA_DIR/no-driver. Never on a GPU machine: it hides the real driver.
    mkdir -p "$CUDA_DIR/no-driver"
    ln -sfn ../toolkit/lib/stubs/libcuda.so "$CUDA_DIR/no-driver/libcuda.so.1"
    TK="$CUDA_DIR/toolkit"
    TK_LIB="$TK/lib"
    TK_STUBS="$TK/lib/stubs"
}

find_system_toolkit() {
    local nvcc
    if [ -n "${CUDA_PATH:-}" ]; then
        TK=$CUDA_PATH
    elif nvcc=$(command -v nvcc); then
        TK=$(cd "$(dirname "$(readlink -f "$nvcc")")/.." && pwd)
    else
        TK=/usr/local/cuda
    fi
    [ -x "$TK/bin/nvcc" ] || die "no CUDA toolkit at $TK (no bin/nvcc): set CUDA_PATH, or drop --system to use the wheels"
    TK_LIB=$TK/lib64
    [ -d "$TK_LIB" ] || TK_LIB=$TK/lib
    TK_STUBS=$TK_LIB/stubs
    log "using the system toolkit at $TK"
}

# --- 3. the environment whisper-rs-sys's build needs -----------------------------------
setup_env() {
    case $TK in *[[:space:]]*) die "the toolkit path '$TK' has a space; set RESWHIS_CUDA_DIR to one without" ;; esac
    export PATH="$TK/bin:$PATH"
    export CUDAToolkit_ROOT="$TK"           # find_package(CUDAToolkit), read from the environment
    export CMAKE_CUDA_COMPILER="$TK/bin/nvcc" # forwarded to CMake as -D (CMAKE_ prefix)
    export CMAKE_CUDA_ARCHITECTURES="$ARCH"   # else `native`, which fails on a machine with no GPU
    export GGML_NATIVE=OFF                    # portable CPU code, not -march=native
    # build.rs searches only /usr/local/cuda/lib64 and /opt/cuda/lib64 for cudart, cublas,
    # cublasLt, cuda (the stub) and culibos.
    export LIBRARY_PATH="$TK_LIB:$TK_STUBS${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-L native=$TK_LIB -L native=$TK_STUBS"
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/cuda-sm$ARCH}"
    export WHISPER_DONT_GENERATE_BINDINGS=1
}

print_env() {
    local v
    for v in PATH CUDAToolkit_ROOT CMAKE_CUDA_COMPILER CMAKE_CUDA_ARCHITECTURES GGML_NATIVE \
        LIBRARY_PATH RUSTFLAGS CARGO_TARGET_DIR WHISPER_DONT_GENERATE_BINDINGS; do
        printf 'export %s=%q\n' "$v" "${!v}"
    done
    [ "$SYSTEM" = 1 ] || printf '# to run it: export LD_LIBRARY_PATH=%q\n' "$TK_LIB"
}

# --- 5. --check: CMake configure of whisper.cpp's CUDA backend + a link probe ----------
whisper_src() {
    local ver dir
    ver=$(awk '$0 == "name = \"whisper-rs-sys\"" { getline; gsub(/[^0-9.]/, ""); print; exit }' "$ROOT/Cargo.lock")
    [ -n "$ver" ] || die "whisper-rs-sys is not in Cargo.lock"
    for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"whisper-rs-sys-$ver"/whisper.cpp; do
        [ -f "$dir/CMakeLists.txt" ] && { echo "$dir"; return; }
    done
    die "whisper-rs-sys $ver's source is not in ${CARGO_HOME:-$HOME/.cargo}/registry: run 'cargo fetch' first"
}

check() {
    local src build log_file v line ok=1 probe
    command -v cmake >/dev/null || die "no cmake (Debian: apt-get install cmake)"
    src=$(whisper_src)
    if [ -n "${RESWHIS_CUDA_CHECK_DIR:-}" ]; then
        build=$RESWHIS_CUDA_CHECK_DIR
        rm -rf "$build"
        mkdir -p "$build"
    else
        build=$(mktemp -d "${TMPDIR:-/tmp}/reswhis-cuda-check.XXXXXX")
        TMPS+=("$build")
    fi
    log_file=$build/configure.log
    log "configuring $src with GGML_CUDA=ON in $build (no compile)"
    # The same definitions as whisper-rs-sys's build.rs, plus the environment set above.
    if ! cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_EXAMPLES=OFF -DGGML_OPENMP=OFF -DGGML_METAL=OFF \
        -DGGML_CUDA=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_CUDA_FLAGS=-Xcompiler=-fPIC \
        -DCMAKE_CUDA_COMPILER="$CMAKE_CUDA_COMPILER" -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
        -DGGML_NATIVE=OFF >"$log_file" 2>&1; then
        tail -n 30 "$log_file" >&2
        die "the CMake configure failed; the whole log is $log_file (set RESWHIS_CUDA_CHECK_DIR to keep it)"
    fi
    grep -E 'The CUDA compiler identification|Found CUDAToolkit|CUDA Toolkit found|CUDA_ARCHITECTURES|Including CUDA backend' \
        "$log_file" | sed 's/^/build-cuda:   /' >&2
    for v in CUDAToolkit_NVCC_EXECUTABLE CUDA_cudart_LIBRARY CUDA_cublas_LIBRARY CUDA_cublasLt_LIBRARY \
        CUDA_cuda_driver_LIBRARY CUDA_culibos_LIBRARY; do
        line=$(grep -E "^$v:" "$build/CMakeCache.txt" || true)
        log "  ${line:-$v: (not in the CMake cache)}"
        case $line in *NOTFOUND* | '') ok=0 ;; esac
    done
    [ "$ok" = 1 ] || die "CMake did not find every CUDA library (above); see $log_file"

    # The link step of `cargo build`: the libraries that whisper-rs-sys names, found through
    # the same -L directories, then loaded (the driver stub stands in for the driver here).
    probe=$(mktemp -d "${TMPDIR:-/tmp}/reswhis-cuda-probe.XXXXXX")
    TMPS+=("$probe")
    cat >"$probe/probe.c" <<'EOF'
int cublasCreate_v2(void **); int cublasLtCreate(void **); int cudaGetDeviceCount(int *);
int cuMemCreate(void *, unsigned long, const void *, unsigned long long); int cuDeviceGet(int *, int);
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 99) { cublasCreate_v2(0); cublasLtCreate(0); cudaGetDeviceCount(0); cuMemCreate(0, 0, 0, 0); cuDeviceGet(0, 0); }
    return 0;
}
EOF
    cc -o "$probe/probe" "$probe/probe.c" -L"$TK_LIB" -L"$TK_STUBS" \
        -lcublas -lcudart -lcublasLt -lcuda -lculibos >&2 ||
        die "the link probe failed: the libraries in $TK_LIB are not usable"
    log "  link probe needs: $(readelf -d "$probe/probe" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
    if [ "$SYSTEM" = 0 ]; then
        LD_LIBRARY_PATH="$TK_LIB:$CUDA_DIR/no-driver" "$probe/probe" ||
            die "the link probe did not start: the wheel libraries do not load on this system"
        log "  link probe starts with LD_LIBRARY_PATH=$TK_LIB (+ the stub in place of a driver)"
    fi
    log "check passed: the toolkit at $TK is accepted; build with: scripts/build-cuda.sh --arch $ARCH"
}

# --- 4. the build -----------------------------------------------------------------------
build() {
    local start secs bin
    cd "$ROOT"
    command -v cargo >/dev/null || die "no cargo on PATH (https://rustup.rs)"
    if [ "$CLEAN" = 1 ]; then
        log "cargo clean -p whisper-rs-sys (in $CARGO_TARGET_DIR)"
        cargo clean -p whisper-rs-sys
    fi
    log "cargo build --release --features cuda (sm_$ARCH, into $CARGO_TARGET_DIR); the CUDA kernels take long"
    start=$(date +%s)
    cargo build --release --features cuda ||
        die "the build failed; if the toolkit or --arch changed since the last build in $CARGO_TARGET_DIR, run again with --clean"
    secs=$(($(date +%s) - start))
    bin=$CARGO_TARGET_DIR/release/reswhis
    log "built $bin in $((secs / 60)) min $((secs % 60)) s; size $(du -h "$bin" | cut -f1)"
    log "run-time libraries (ldd, with LD_LIBRARY_PATH=$TK_LIB):"
    LD_LIBRARY_PATH="$TK_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$bin" |
        grep -E 'cuda|cublas|not found' | sed 's/^[[:space:]]*/build-cuda:   /' >&2 || true
    log "libcuda.so.1 comes from the NVIDIA driver (R580+ for CUDA 13); the others from $TK_LIB"
    [ "$SYSTEM" = 1 ] || log "run it with: LD_LIBRARY_PATH=$TK_LIB $bin --model ..."
}

if [ "$SYSTEM" = 1 ]; then
    find_system_toolkit
else
    install_wheels
    layout_toolkit
fi
setup_env
case $MODE in
    env) print_env ;;
    check) check ;;
    build) build ;;
esac
