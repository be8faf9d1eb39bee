//! Word error rate, for tests and the benchmark.

/// Lower-cased words with punctuation removed (apostrophes inside words kept).
pub fn normalized_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .flat_map(char::to_lowercase)
                .collect::<String>()
                .trim_matches('\'')
                .to_string()
        })
        .filter(|w| !w.is_empty())
        .collect()
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
    fn normalisation_keeps_contractions() {
        assert_eq!(
            normalized_words("Don't STOP, 'now'."),
            vec!["don't", "stop", "now"]
        );
    }
}
