//! Whisper's notes on sounds that are not speech (`[BLANK_AUDIO]`, `(music)`, `*cough*`),
//! and words of punctuation alone, which are never committed as text.

use super::Word;

/// Removes what Whisper writes for sounds that are not speech — `[BLANK_AUDIO]`,
/// `[ Silence ]`, `(upbeat music)`, `*cough*`, `♪` — so that they are never committed as
/// text. Such an annotation is enclosed in brackets, parentheses or asterisks, and may
/// span several words; one left open at the end of the hypothesis runs to its end (the
/// token limit cut it). A word is kept when it has letters or digits outside any
/// annotation ("word(s)" is rare; "music)" after "(upbeat" is not speech), so words of
/// music notes or punctuation alone (" ...", " -", which Whisper writes for noise) go too.
pub fn drop_annotations(words: &mut Vec<Word>) {
    let mut closer: Option<char> = None;
    words.retain(|word| {
        let mut speech = false;
        for c in word.text.chars() {
            match closer {
                Some(close) if c == close => closer = None,
                Some(_) => {}
                None => match c {
                    '[' => closer = Some(']'),
                    '(' => closer = Some(')'),
                    '*' => closer = Some('*'),
                    c if c.is_alphanumeric() => speech = true,
                    _ => {}
                },
            }
        }
        speech
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(texts: &[&str]) -> Vec<Word> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Word {
                start: i as f64,
                end: i as f64 + 0.5,
                text: t.to_string(),
            })
            .collect()
    }

    fn kept(texts: &[&str]) -> String {
        let mut w = words(texts);
        drop_annotations(&mut w);
        w.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn non_speech_annotations_are_dropped() {
        assert_eq!(kept(&[" [BLANK_AUDIO]"]), "");
        assert_eq!(kept(&[" [", " Silence", " ]"]), "");
        assert_eq!(kept(&[" (music)", " Hello", " there."]), " Hello there.");
        assert_eq!(kept(&[" [MUSIC]"]), "");
        assert_eq!(kept(&[" *cough*", " so"]), " so");
        assert_eq!(kept(&[" (upbeat", " music)"]), "");
        assert_eq!(kept(&[" ♪", " ♪"]), "");
        assert_eq!(kept(&[" And", " so", " [", "inaud"]), " And so");
        assert_eq!(
            kept(&[" I", " said", " *", "sigh", "*", " yes"]),
            " I said yes"
        );
    }

    #[test]
    fn punctuation_alone_is_not_speech() {
        assert_eq!(kept(&[" ...", " -", " ?"]), "");
        assert_eq!(kept(&[" Well", " -", " yes."]), " Well yes.");
    }

    #[test]
    fn speech_with_punctuation_is_kept() {
        let speech = [" Ask", " not,", " what's", " 1-2-3", " done."];
        assert_eq!(kept(&speech), speech.concat());
    }
}
