//! A small word-level vocabulary shared by organisms.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};

/// Words separated by whitespace, each with one id. Special tokens come first, in order, so their
/// ids are stable (`<pad>` = 0 when listed first). An unknown word is an error, never a silent id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocab {
    words: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl Vocab {
    /// Builds a vocabulary; a word listed twice is an error (it would make ids ambiguous).
    pub fn new<S: AsRef<str>>(words: impl IntoIterator<Item = S>) -> Result<Self> {
        let words: Vec<String> = words.into_iter().map(|w| w.as_ref().to_string()).collect();
        let mut index = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            if w.is_empty() || w.chars().any(char::is_whitespace) {
                return Err(NnError::InvalidInput(format!(
                    "vocabulary word {i} `{w}` is empty or contains whitespace"
                )));
            }
            if index.insert(w.clone(), i).is_some() {
                return Err(NnError::InvalidInput(format!(
                    "vocabulary word `{w}` listed twice"
                )));
            }
        }
        Ok(Self { words, index })
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn id(&self, word: &str) -> Result<usize> {
        self.index_map()
            .get(word)
            .copied()
            .ok_or_else(|| NnError::UnknownWord { word: word.into() })
    }

    pub fn contains(&self, word: &str) -> bool {
        self.index_map().contains_key(word)
    }

    pub fn word(&self, id: usize) -> Result<&str> {
        self.words
            .get(id)
            .map(String::as_str)
            .ok_or(NnError::UnknownTokenId {
                id,
                size: self.words.len(),
            })
    }

    /// Splits on whitespace and maps every word to its id.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        text.split_whitespace().map(|w| self.id(w)).collect()
    }

    /// Joins the words of `ids` with single spaces.
    pub fn decode(&self, ids: &[usize]) -> Result<String> {
        let words: Result<Vec<&str>> = ids.iter().map(|&id| self.word(id)).collect();
        Ok(words?.join(" "))
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    // The index is rebuilt lazily after deserialisation (it is not stored).
    fn index_map(&self) -> std::borrow::Cow<'_, HashMap<String, usize>> {
        if self.index.len() == self.words.len() {
            std::borrow::Cow::Borrowed(&self.index)
        } else {
            std::borrow::Cow::Owned(
                self.words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (w.clone(), i))
                    .collect(),
            )
        }
    }
}
