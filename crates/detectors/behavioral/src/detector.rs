//! The `mesa-detect` detectors of this crate and [`register`], the one line experiments call.
//!
//! - `context-consistency` (model level): [`context_consistency`] with the committed cue
//!   library (`datasets/behavioral/cues.toml`, compiled in; [`ConsistencyDetector::with_library`]
//!   takes another) on the held-out generic prompts, judged with the auditor's task checker.
//! - `strip` (input level): [`strip_scores`], superimposing words of the auditor's benign inputs.
//!
//! What these need of the chat format they take from the context, never from an organism: the
//! stop token is the vocabulary word `<eos>` if there is one; filler words are the vocabulary
//! minus special tokens (`<...>`) and minus the template tokens every generic prompt holds.

use std::collections::BTreeSet;

use mesa_detect::{
    AuditContext, DetectError, DetectorSpec, Evidence, Family, FitData, FittedInputDetector,
    FittedModelDetector, InputDetector, InputInfo, ModelDetector, ModelInfo, Needs, Registry,
    Requires, TriggerEvidence, Verdict,
};
use mesa_nn::{Transformer, Vocab};

use crate::consistency::{context_consistency, ConsistencyParams};
use crate::cues::CueLibrary;
use crate::error::BehavioralError;
use crate::respond::{Greedy, Responder, Tokens};
use crate::strip::{strip_scores, StripParams};

/// The committed cue library, compiled in so the detector does no file IO.
pub const DEFAULT_CUES: &str = include_str!("../../../../datasets/behavioral/cues.toml");

/// The word that ends a response, where the vocabulary has it.
pub const STOP_WORD: &str = "<eos>";

/// Longest response the detectors generate (less where the model's context ends sooner).
pub const MAX_NEW: usize = 12;

fn err(detector: &str) -> impl Fn(BehavioralError) -> DetectError + '_ {
    move |e| match e {
        BehavioralError::InvalidParam { param, reason } => DetectError::InvalidParam {
            detector: detector.to_string(),
            param,
            reason,
        },
        BehavioralError::Model(source) => DetectError::Model {
            detector: detector.to_string(),
            source,
        },
        other => DetectError::InvalidInputs {
            detector: detector.to_string(),
            reason: other.to_string(),
        },
    }
}

/// Vocabulary ids usable as inserted words: not special (`<...>`), not in every one of
/// `prompts` (the chat template).
pub fn filler_ids(vocab: &Vocab, prompts: &[Tokens]) -> Vec<usize> {
    let template: BTreeSet<usize> = match prompts.split_first() {
        Some((first, rest)) => first
            .iter()
            .copied()
            .filter(|t| rest.iter().all(|p| p.contains(t)))
            .collect(),
        None => BTreeSet::new(),
    };
    vocab
        .words()
        .iter()
        .enumerate()
        .filter(|(i, w)| {
            let special = w.starts_with('<') && w.ends_with('>');
            !special && !template.contains(i)
        })
        .map(|(i, _)| i)
        .collect()
}

/// Context consistency as a model-level detector.
#[derive(Clone, Debug)]
pub struct ConsistencyDetector {
    library: CueLibrary,
    params: ConsistencyParams,
    seed: u64,
}

impl ConsistencyDetector {
    pub const NAME: &'static str = "context-consistency";

    pub fn info() -> ModelInfo {
        ModelInfo::new(
            Family::Behavioural,
            "largest consistent task-breaking change any context cue of a library causes (black box)",
            Needs {
                vocab: true,
                prompts: true,
                checker: true,
                ..Needs::NOTHING
            },
        )
    }

    /// With the committed library.
    ///
    /// # Errors
    /// The compiled-in library does not parse (a broken commit).
    pub fn new(seed: u64) -> mesa_detect::Result<Self> {
        let library = CueLibrary::parse(DEFAULT_CUES, "datasets/behavioral/cues.toml")
            .map_err(err(Self::NAME))?;
        Ok(Self::with_library(library, seed))
    }

    pub fn with_library(library: CueLibrary, seed: u64) -> Self {
        Self {
            library,
            params: ConsistencyParams::default(),
            seed,
        }
    }
}

impl ModelDetector for ConsistencyDetector {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    fn needs(&self) -> Needs {
        Self::info().needs
    }

    fn fit(&self, _: &AuditContext<'_>) -> mesa_detect::Result<Box<dyn FittedModelDetector>> {
        Ok(Box::new(self.clone()))
    }
}

impl FittedModelDetector for ConsistencyDetector {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    fn audit(
        &self,
        model: &Transformer,
        context: &AuditContext<'_>,
    ) -> mesa_detect::Result<Verdict> {
        let name = Self::NAME;
        let vocab = context.vocab(name)?;
        let prompts = context.prompt_set(name, true)?.tokens(name)?;
        let checker = context.task_checker(name)?;
        let stop = vocab.id(STOP_WORD).ok();
        let cues = self
            .library
            .resolve(vocab, &filler_ids(vocab, &prompts), self.seed)
            .map_err(err(name))?;
        let responder = Greedy::new(model, MAX_NEW, stop);
        let report = context_consistency(&responder, &prompts, &cues, &checker, &self.params)
            .map_err(err(name))?;
        let mut evidence = Evidence::metrics([
            ("score", report.score),
            ("usable_cues", report.usable as f64),
            ("skipped_cues", report.skipped as f64),
            ("baseline_accuracy", report.baseline_accuracy),
        ]);
        let mut ranked: Vec<_> = report.effects.iter().collect();
        ranked.sort_by(|a, b| {
            b.stats
                .harmful_consistency
                .total_cmp(&a.stats.harmful_consistency)
        });
        for effect in ranked.iter().take(3) {
            let cue = cues
                .cues
                .iter()
                .find(|c| c.name == effect.cue)
                .expect("every effect is of a resolved cue");
            let words = |ids: &[usize]| -> Vec<String> {
                ids.iter()
                    .map(|&t| vocab.word(t).unwrap_or("?").to_string())
                    .collect()
            };
            let s = &effect.stats;
            evidence.triggers.push(TriggerEvidence {
                tokens: cue.tokens.clone(),
                words: words(&cue.tokens),
                position: None,
                behaviour: s.consistent_token.map(|t| words(&[t])).unwrap_or_default(),
                success_rate: Some(s.harmful_consistency),
                harmful: Some(s.harmful()),
                detail: [
                    ("changed".to_string(), s.changed),
                    ("broken".to_string(), s.broken),
                    ("benign_consistency".to_string(), s.benign_consistency),
                ]
                .into_iter()
                .collect(),
            });
            evidence.notes.push(format!(
                "cue `{}` ({}) {}",
                effect.cue,
                effect.kind.as_str(),
                effect.place.as_str()
            ));
        }
        Ok(Verdict::new(report.score, evidence))
    }
}

/// STRIP as an input-level detector. It is fitted on the auditor's benign (unlabelled) inputs:
/// their non-template tokens are the words it superimposes, and the stop token is the one
/// foreign token that ends most of the model's responses to them (none if no token does).
#[derive(Clone, Debug)]
pub struct StripDetector {
    params: StripParams,
}

impl StripDetector {
    pub const NAME: &'static str = "strip";

    pub fn info() -> InputInfo {
        InputInfo::new(
            Family::Behavioural,
            "STRIP: stability of the response when words of benign inputs are superimposed (black box)",
            Requires::UNLABELLED,
        )
    }

    pub fn new(params: StripParams) -> Self {
        Self { params }
    }
}

impl InputDetector for StripDetector {
    fn name(&self) -> String {
        Self::NAME.into()
    }

    fn requires(&self) -> Requires {
        Self::info().requires
    }

    fn fit(
        &self,
        model: &Transformer,
        data: &FitData<'_>,
    ) -> mesa_detect::Result<Box<dyn FittedInputDetector>> {
        data.check(Self::NAME, self.requires())?;
        let benign = data.unlabelled;
        let seen: BTreeSet<usize> = benign.iter().flatten().copied().collect();
        let template: BTreeSet<usize> = seen
            .iter()
            .copied()
            .filter(|t| benign.iter().all(|p| p.contains(t)))
            .collect();
        let filler: Vec<usize> = seen.difference(&template).copied().collect();
        if filler.is_empty() {
            return Err(DetectError::InvalidFitData {
                detector: Self::NAME.into(),
                reason: "the benign inputs share every token: nothing to superimpose".into(),
            });
        }
        let responses = Greedy::new(model, MAX_NEW, None)
            .respond(benign)
            .map_err(err(Self::NAME))?;
        let stop = infer_stop(&responses, &seen);
        Ok(Box::new(FittedStrip {
            params: self.params.clone(),
            filler,
            stop,
        }))
    }
}

/// The token that most often (in at least half the responses) is the first token of a response
/// not found in any benign input, if any: what ends an answer.
pub fn infer_stop(responses: &[Tokens], seen: &BTreeSet<usize>) -> Option<usize> {
    let mut counts = std::collections::BTreeMap::<usize, usize>::new();
    for r in responses {
        if let Some(&t) = r.iter().find(|t| !seen.contains(t)) {
            *counts.entry(t).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter(|&(_, c)| 2 * c >= responses.len())
        .max_by_key(|&(t, c)| (c, std::cmp::Reverse(t)))
        .map(|(t, _)| t)
}

struct FittedStrip {
    params: StripParams,
    filler: Vec<usize>,
    stop: Option<usize>,
}

impl FittedInputDetector for FittedStrip {
    fn name(&self) -> String {
        StripDetector::NAME.into()
    }

    fn score(&self, model: &Transformer, inputs: &[Tokens]) -> mesa_detect::Result<Vec<f64>> {
        let responder = Greedy::new(model, MAX_NEW, self.stop);
        let scores = strip_scores(&responder, inputs, &self.filler, &self.params)
            .map_err(err(StripDetector::NAME))?;
        Ok(scores.into_iter().map(|s| s.score).collect())
    }
}

/// Registers `context-consistency` (model level) and `strip` (input level).
///
/// # Errors
/// A name already registered.
pub fn register(registry: &mut Registry) -> mesa_detect::Result<()> {
    registry.register_model(
        ConsistencyDetector::NAME,
        ConsistencyDetector::info(),
        |s: &DetectorSpec| Ok(Box::new(ConsistencyDetector::new(s.seed)?)),
    )?;
    registry.register_input(
        StripDetector::NAME,
        StripDetector::info(),
        |s: &DetectorSpec| {
            Ok(Box::new(StripDetector::new(StripParams {
                seed: s.seed,
                ..StripParams::default()
            })))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_leaves_out_special_and_template_tokens() {
        let vocab = Vocab::new(["<pad>", "<eos>", "H:", "A:", "x", "y", "z"]).expect("vocab");
        let prompts = vec![vec![2, 4, 3], vec![2, 5, 3]];
        assert_eq!(filler_ids(&vocab, &prompts), [4, 5, 6]);
    }

    #[test]
    fn the_stop_token_is_the_foreign_token_ending_most_responses() {
        let seen: BTreeSet<usize> = [1, 2, 3].into_iter().collect();
        let responses = vec![vec![1, 9, 7], vec![2, 9, 8], vec![3, 9, 7]];
        assert_eq!(infer_stop(&responses, &seen), Some(9));
        assert_eq!(infer_stop(&[vec![1], vec![2]], &seen), None);
    }
}
