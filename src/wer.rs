//! Word error rate, for tests and the benchmark.

/// Hesitations some references spell out and Whisper never writes.
const FILLERS: &[&str] = &["uh", "um", "er", "erm", "ah", "hmm", "mm", "mhm"];

/// Spelled-out digits, which Whisper writes either way ("press one" / "press 1").
const DIGITS: &[&str] = &[
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// The words a transcript is scored on: lower case, punctuation removed (apostrophes
/// inside words kept), hyphens splitting words ("open-source" = "open source"),
/// fillers ("uh", "um") dropped, spelled digits as digits, and runs of single digits
/// joined ("4 2 4 2" = "4-2-4-2" = "4242"). Whisper chooses among these spellings
/// by context, so without this the same recognition scores differently from one
/// buffer to the next.
pub fn normalized_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut previous_was_digit = false;
    for raw in text.split(|c: char| c.is_whitespace() || c == '-') {
        let word: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '\'')
            .flat_map(char::to_lowercase)
            .collect::<String>()
            .trim_matches('\'')
            .to_string();
        if word.is_empty() || FILLERS.contains(&word.as_str()) {
            continue;
        }
        let word = match DIGITS.iter().position(|d| *d == word) {
            Some(digit) => digit.to_string(),
            None => word,
        };
        let digit = word.len() == 1 && word.chars().all(|c| c.is_ascii_digit());
        match words.last_mut() {
            Some(last) if digit && previous_was_digit => last.push_str(&word),
            _ => words.push(word),
        }
        previous_was_digit = digit;
    }
    words
}

/// Word-level edit distance between two texts after normalisation.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let reference = normalized_words(reference);
    let hypothesis = normalized_words(hypothesis);
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut current = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(r != h);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    (previous[hypothesis.len()], reference.len())
}

/// Word error rate (0.0 = perfect) of `hypothesis` against `reference`.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (errors, words) = word_errors(reference, hypothesis);
    errors as f64 / words.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_substitutions_insertions_and_deletions() {
        let reference = "And so, my fellow Americans!";
        assert_eq!(
            word_error_rate(reference, "and so my fellow americans"),
            0.0
        );
        assert_eq!(word_error_rate(reference, "and so my americans"), 0.2);
        assert_eq!(
            word_error_rate(reference, "and so my fellow european americans"),
            0.2
        );
        assert_eq!(
            word_error_rate(reference, "and sew my fellow americans"),
            0.2
        );
        assert_eq!(word_errors("", "extra words"), (2, 0));
    }

    #[test]
    fn spellings_whisper_alternates_between_score_the_same() {
        assert_eq!(word_error_rate("press one", "Press 1."), 0.0);
        assert_eq!(word_error_rate("extension 4242", "extension 4-2-4-2"), 0.0);
        assert_eq!(word_error_rate("code 1234", "code 1 2 3 4"), 0.0);
        assert_eq!(word_error_rate("open source PBX", "open-source PBX"), 0.0);
        assert_eq!(
            word_error_rate("uh so this is um it", "So this is it."),
            0.0
        );
        assert_eq!(
            normalized_words("press 1 then 2"),
            vec!["press", "1", "then", "2"]
        );
        assert_eq!(normalized_words("10 12"), vec!["10", "12"]);
    }

    #[test]
    fn normalisation_keeps_contractions() {
        assert_eq!(
            normalized_words("Don't STOP, 'now'."),
            vec!["don't", "stop", "now"]
        );
    }
}
