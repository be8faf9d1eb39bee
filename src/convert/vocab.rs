//! Vocabulary: CTranslate2's `vocabulary.txt` holds one token per line in GPT-2's
//! byte-level unicode form (every byte mapped to a printable character, e.g. a space is
//! `Ġ`). whisper.cpp wants the raw bytes of the regular (BPE) tokens only; it derives the
//! special tokens (`<|endoftext|>`, languages, timestamps, ...) from `n_vocab` itself.

use std::collections::HashMap;

use super::ConvertError;

/// The first special token; everything before it is a regular token.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// GPT-2's `bytes_to_unicode` table, inverted: printable character -> byte.
///
/// Bytes that are printable Latin-1 (`!`..=`~`, `¡`..=`¬`, `®`..=`ÿ`) map to themselves;
/// the remaining 68 bytes map, in increasing order, to U+0100, U+0101, ...
pub fn byte_decoder() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut next = 0u32;
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            next += 1;
            char::from_u32(255 + next).expect("U+0100..U+0144 are valid chars")
        };
        map.insert(c, b);
    }
    map
}

/// Decode one byte-level token to its bytes; `None` if it contains a character outside
/// the byte alphabet.
pub fn decode_token(decoder: &HashMap<char, u8>, token: &str) -> Option<Vec<u8>> {
    token.chars().map(|c| decoder.get(&c).copied()).collect()
}

/// The raw bytes of the regular tokens of `vocabulary.txt` (those before `<|endoftext|>`).
pub fn regular_tokens(text: &str) -> Result<Vec<Vec<u8>>, ConvertError> {
    let decoder = byte_decoder();
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line == END_OF_TEXT {
            return Ok(tokens);
        }
        let bytes = decode_token(&decoder, line).ok_or_else(|| {
            ConvertError::Vocabulary(format!(
                "line {}: token {line:?} is not GPT-2 byte-level text",
                i + 1
            ))
        })?;
        tokens.push(bytes);
    }
    Err(ConvertError::Vocabulary(format!(
        "no {END_OF_TEXT} token found after {} lines",
        tokens.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_alphabet_is_a_bijection() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        let mut bytes: Vec<u8> = d.values().copied().collect();
        bytes.sort_unstable();
        assert_eq!(bytes, (0..=255).collect::<Vec<u8>>());
        assert_eq!(d[&'Ġ'], b' ');
        assert_eq!(d[&'Ċ'], b'\n');
        assert_eq!(d[&'A'], b'A');
        assert_eq!(d[&'\u{100}'], 0);
    }

    #[test]
    fn decodes_tokens_to_bytes() {
        let d = byte_decoder();
        assert_eq!(decode_token(&d, "Ġhello").unwrap(), b" hello");
        // "é" in UTF-8 is C3 A9, which byte-level encodes as "Ã©".
        assert_eq!(decode_token(&d, "Ã©").unwrap(), "é".as_bytes());
        assert!(decode_token(&d, "☃").is_none());
    }

    #[test]
    fn keeps_only_regular_tokens() {
        let text = "!\nĠthe\n\n<|endoftext|>\n<|startoftranscript|>\n";
        let t = regular_tokens(text).unwrap();
        assert_eq!(t, vec![b"!".to_vec(), b" the".to_vec(), Vec::new()]);
        assert!(regular_tokens("a\nb\n").is_err());
        let err = regular_tokens("a\n☃\n<|endoftext|>").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
