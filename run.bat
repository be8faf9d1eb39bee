@echo off
rem Start reswhis on Windows: fetch the model if missing, build a release binary, run it.
rem Edit the settings below. Other settings (WORKERS, THREADS, BEAM_SIZE, API_KEY, ...)
rem are environment variables read by reswhis itself; see README.md, "Configuration".
setlocal

rem ---- settings -----------------------------------------------------------------
if not defined MODEL set "MODEL=tiny.en"
if not defined LANGUAGE set "LANGUAGE=en"
rem MINIMUM_CHUNK_SIZE: seconds of new audio per update; left unset, reswhis uses 0.75 with
rem a tiny model and 1.0 with a larger one. To choose: set "MINIMUM_CHUNK_SIZE=0.75"
if not defined HOST set "HOST=127.0.0.1"
if not defined PORT set "PORT=8000"
rem USE_GPU: auto builds with CUDA when nvcc is on PATH; true or false to force.
if not defined USE_GPU set "USE_GPU=auto"
rem Silero voice activity controller (VAC) and filter (VAD); see README.md.
if not defined USE_VOICE_ACTIVITY_CONTROLLER set "USE_VOICE_ACTIVITY_CONTROLLER=true"
if not defined USE_VOICE_ACTIVITY_DETECTION set "USE_VOICE_ACTIVITY_DETECTION=false"
rem -----------------------------------------------------------------------------

cd /d "%~dp0"

where cargo >nul 2>nul
if errorlevel 1 (
    echo run.bat: cargo not found; install Rust from https://rustup.rs
    exit /b 1
)
where cmake >nul 2>nul
if errorlevel 1 (
    echo run.bat: cmake not found; it is needed to build whisper.cpp: winget install Kitware.CMake
    exit /b 1
)

rem A model name is fetched when missing; a path to a .bin file is used as is.
set "MODEL_FILE=models\ggml-%MODEL%.bin"
if /i "%MODEL:~-4%"==".bin" goto build
if exist "%MODEL_FILE%" goto build
call "%~dp0models\fetch.bat" %MODEL%
if errorlevel 1 exit /b 1

:build
rem The Silero model, when voice activity is on and no VAD_MODEL is given.
set "NEED_VAD="
for %%V in (true 1 yes on) do (
    if /i "%USE_VOICE_ACTIVITY_CONTROLLER%"=="%%V" set "NEED_VAD=1"
    if /i "%USE_VOICE_ACTIVITY_DETECTION%"=="%%V" set "NEED_VAD=1"
)
if defined VAD_MODEL set "NEED_VAD="
if defined NEED_VAD if not exist "models\ggml-silero-v6.2.0.bin" (
    call "%~dp0models\fetch.bat" silero-vad
    if errorlevel 1 exit /b 1
)

set "FEATURES="
if /i "%USE_GPU%"=="true" (
    where nvcc >nul 2>nul
    if errorlevel 1 (
        echo run.bat: USE_GPU=true needs the CUDA Toolkit 12 or 13 from NVIDIA ^(nvcc on PATH^); or set USE_GPU=false 1>&2
        exit /b 1
    )
    set "FEATURES=--features cuda"
)
if /i "%USE_GPU%"=="auto" (
    where nvcc >nul 2>nul
    if not errorlevel 1 set "FEATURES=--features cuda"
)
if /i "%USE_GPU%"=="auto" set "USE_GPU=true"

echo run.bat: building (cargo build --release %FEATURES%)
cargo build --release %FEATURES%
if errorlevel 1 exit /b 1

target\release\reswhis.exe %*
exit /b %errorlevel%
