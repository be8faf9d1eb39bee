//! CTranslate2 Whisper model → whisper.cpp ggml converter.
