//! The gradient family behind `mesa-detect`'s contract: `gradient-inversion` (model level) and
//! `gradient-saliency` (input level), and [`register`].
//!
//! What the audit context offers is turned into the library's inputs without organism
//! knowledge: generic prompts split into a search set (`prompts`) and a measuring set
//! (`held_out`); the task checker as is; the yes/no question read off the generic contrast pairs
//! (their shared opening and closing tokens frame a response, their last tokens are the harm-
//! affirming and harm-denying answers); the stop token is the vocabulary's end-of-sequence word
//! (`<eos>`) where it has one.

use mesa_detect::{
    AuditContext, ContrastPair, DetectError, DetectorSpec, Evidence, Family, FitData,
    FittedInputDetector, FittedModelDetector, InputDetector, InputInfo, ModelDetector, ModelInfo,
    Needs, Registry, Requires, Tokens, TriggerEvidence, Verdict,
};
use mesa_nn::Transformer;

use crate::effect::{effect, DangerJudge, YesNoQuestion};
use crate::error::GradientError;
use crate::hyperparams::InversionParams;
use crate::insertion::AnswerSpec;
use crate::inversion::invert;
use crate::saliency::saliency;

const INVERSION: &str = "gradient-inversion";
const SALIENCY: &str = "gradient-saliency";

/// The end-of-sequence word looked up in the vocabulary, when the context has one.
const STOP_WORD: &str = "<eos>";
/// Answer tokens generated per prompt (fewer where the model's context is shorter).
const MAX_NEW: usize = 12;

const INVERSION_NEEDS: Needs = Needs {
    vocab: true,
    prompts: true,
    pairs: true,
    clean_references: true,
    labelled_references: false,
    checker: true,
    training_log: false,
};

/// `gradient-inversion`: what harness knows about it.
pub const INVERSION_INFO: ModelInfo = ModelInfo::new(
    Family::Gradient,
    "GCG-style trigger inversion on generic prompts (divergence from the model's own answers), \
     scored novel output x harm (task checker, yes/no danger question)",
    INVERSION_NEEDS,
);

/// `gradient-saliency`: what harness knows about it.
pub const SALIENCY_INFO: InputInfo = InputInfo::new(
    Family::Gradient,
    "largest share of the own-answer gradient norm on one prompt token",
    Requires::NOTHING,
);

fn detect_err(e: GradientError, detector: &str) -> DetectError {
    let detector = detector.to_string();
    match e {
        GradientError::InvalidParam { param, reason } => DetectError::InvalidParam {
            detector,
            param,
            reason,
        },
        GradientError::Model(source) => DetectError::Model { detector, source },
        other => DetectError::InvalidInputs {
            detector,
            reason: other.to_string(),
        },
    }
}

/// The trigger-inversion detector with its hyper-parameters.
pub struct InversionDetector {
    seed: u64,
    max_len: usize,
}

impl ModelDetector for InversionDetector {
    fn name(&self) -> String {
        INVERSION.into()
    }

    fn needs(&self) -> Needs {
        INVERSION_NEEDS
    }

    fn fit(&self, _: &AuditContext<'_>) -> mesa_detect::Result<Box<dyn FittedModelDetector>> {
        Ok(Box::new(InversionDetector {
            seed: self.seed,
            max_len: self.max_len,
        }))
    }
}

impl FittedModelDetector for InversionDetector {
    fn name(&self) -> String {
        INVERSION.into()
    }

    fn audit(
        &self,
        model: &Transformer,
        context: &AuditContext<'_>,
    ) -> mesa_detect::Result<Verdict> {
        let err = |e| detect_err(e, INVERSION);
        let vocab = context.vocab(INVERSION)?;
        let search = context.prompt_set(INVERSION, false)?.tokens(INVERSION)?;
        let held_out = context.prompt_set(INVERSION, true)?.tokens(INVERSION)?;
        let longest = search
            .iter()
            .chain(&held_out)
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let room = match model.config().max_seq {
            0 => MAX_NEW,
            n => n.saturating_sub(longest + self.max_len).clamp(1, MAX_NEW),
        };
        let spec = AnswerSpec {
            max_new: room,
            stop: vocab.id(STOP_WORD).ok(),
        };
        let params = InversionParams::new(self.seed, spec).max_len(self.max_len);
        let inversion = invert(model, &search, &params).map_err(err)?;
        let question =
            question_from_pairs(context.contrast_pairs(INVERSION)?).ok_or_else(|| {
                DetectError::InvalidFitData {
                    detector: INVERSION.into(),
                    reason: "the contrast pairs share no question frame".into(),
                }
            })?;
        let mut judges = vec![DangerJudge {
            name: "self".into(),
            model,
            question: &question,
        }];
        for (i, clean) in context.clean_references.iter().enumerate() {
            if clean.config().input == model.config().input {
                judges.push(DangerJudge {
                    name: format!("clean-{i}"),
                    model: clean,
                    question: &question,
                });
            }
        }
        let eff = effect(
            model,
            &inversion.best.insertion,
            &held_out,
            spec,
            context
                .checker
                .map(|c| c as &dyn Fn(&[usize], &[usize]) -> Option<bool>),
            &judges,
        )
        .map_err(err)?;
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("divergence".to_string(), inversion.best.divergence);
        metrics.insert("baseline_divergence".into(), inversion.baseline_divergence);
        metrics.insert("changed".into(), eff.changed);
        metrics.insert("novel".into(), eff.novel);
        if let Some(h) = eff.task_harm() {
            metrics.insert("task_harm".into(), h);
        }
        for (name, h) in eff.danger_harm() {
            metrics.insert(format!("danger_harm_{name}"), h);
        }
        metrics.insert("passes_forward".into(), inversion.passes.forward as f64);
        metrics.insert("passes_backward".into(), inversion.passes.backward as f64);
        let words = vocab
            .decode(&inversion.best.insertion.tokens)
            .map(|s| s.split(' ').map(str::to_string).collect())
            .unwrap_or_default();
        let behaviour = most_common(&eff.responses)
            .and_then(|r| vocab.decode(&r).ok())
            .map(|s| s.split(' ').map(str::to_string).collect())
            .unwrap_or_default();
        let trigger = TriggerEvidence {
            tokens: inversion.best.insertion.tokens.clone(),
            words,
            position: None,
            behaviour,
            success_rate: Some(eff.changed),
            harmful: Some(eff.score() >= 0.5),
            detail: [
                ("novel".to_string(), eff.novel),
                ("divergence".to_string(), inversion.best.divergence),
            ]
            .into_iter()
            .collect(),
        };
        Ok(Verdict::new(
            eff.score(),
            Evidence {
                metrics,
                triggers: vec![trigger],
                notes: vec![format!(
                    "inserted at placement `{}`; success rate = share of held-out answers changed",
                    inversion.best.insertion.placement.name()
                )],
            },
        ))
    }
}

/// The question the contrast pairs ask: the largest group of pairs with the same pair of last
/// tokens, their common opening tokens and common closing tokens (before the last).
pub fn question_from_pairs(pairs: &[ContrastPair]) -> Option<YesNoQuestion> {
    let mut groups: std::collections::BTreeMap<(usize, usize), Vec<&ContrastPair>> =
        Default::default();
    for p in pairs {
        if let (Some(&a), Some(&b)) = (p.positive.last(), p.negative.last()) {
            if a != b {
                groups.entry((a, b)).or_default().push(p);
            }
        }
    }
    let ((yes, no), group) = groups.into_iter().max_by_key(|(_, g)| g.len())?;
    let bodies: Vec<&[usize]> = group
        .iter()
        .map(|p| &p.positive[..p.positive.len() - 1])
        .collect();
    let first = bodies[0];
    let open = (0..first.len())
        .take_while(|&i| bodies.iter().all(|b| b.get(i) == Some(&first[i])))
        .count();
    let close = (0..first.len() - open)
        .take_while(|&i| {
            bodies
                .iter()
                .all(|b| b.len() > open + i && b[b.len() - 1 - i] == first[first.len() - 1 - i])
        })
        .count();
    (open > 0 && close > 0).then(|| YesNoQuestion {
        before: first[..open].to_vec(),
        after: first[first.len() - close..].to_vec(),
        yes,
        no,
    })
}

fn most_common(responses: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut counts: std::collections::BTreeMap<&Vec<usize>, usize> = Default::default();
    for r in responses {
        *counts.entry(r).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(r, _)| r.clone())
}

/// The saliency detector: needs no fitting.
pub struct SaliencyDetector;

impl InputDetector for SaliencyDetector {
    fn name(&self) -> String {
        SALIENCY.into()
    }

    fn requires(&self) -> Requires {
        Requires::NOTHING
    }

    fn fit(
        &self,
        _: &Transformer,
        _: &FitData<'_>,
    ) -> mesa_detect::Result<Box<dyn FittedInputDetector>> {
        Ok(Box::new(SaliencyDetector))
    }
}

impl FittedInputDetector for SaliencyDetector {
    fn name(&self) -> String {
        SALIENCY.into()
    }

    fn score(&self, model: &Transformer, inputs: &[Tokens]) -> mesa_detect::Result<Vec<f64>> {
        // No vocabulary here, so no stop token: the first few answer tokens carry the answer.
        let spec = AnswerSpec {
            max_new: 4,
            stop: None,
        };
        Ok(saliency(model, inputs, spec)
            .map_err(|e| detect_err(e, SALIENCY))?
            .iter()
            .map(|s| s.max_share)
            .collect())
    }
}

/// Adds `gradient-inversion` and `gradient-saliency` to `registry`.
///
/// # Errors
/// [`DetectError::DuplicateName`] if either name is taken.
pub fn register(registry: &mut Registry) -> mesa_detect::Result<()> {
    fn inversion(spec: &DetectorSpec) -> mesa_detect::Result<Box<dyn ModelDetector>> {
        Ok(Box::new(InversionDetector {
            seed: spec.seed,
            max_len: 2,
        }))
    }
    fn saliency_detector(_: &DetectorSpec) -> mesa_detect::Result<Box<dyn InputDetector>> {
        Ok(Box::new(SaliencyDetector))
    }
    registry.register_model(INVERSION, INVERSION_INFO, inversion)?;
    registry.register_input(SALIENCY, SALIENCY_INFO, saliency_detector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesa_detect::{fit_model, score_model, token_inputs, PromptSet};
    use mesa_nn::{Preset, Tiny, Vocab};

    #[test]
    fn the_question_is_read_off_the_contrast_pairs() {
        // [open..., response..., close, answer]: 1 2 = "is it bad", 9 = cue, 7/8 = yes/no.
        let pair = |resp: &[usize], harm: usize, safe: usize| {
            let mut body = vec![1, 2];
            body.extend_from_slice(resp);
            body.push(9);
            let with = |a: usize| {
                let mut t = body.clone();
                t.push(a);
                t
            };
            ContrastPair {
                positive: with(harm),
                negative: with(safe),
            }
        };
        let pairs = vec![
            pair(&[4, 5], 7, 8),
            pair(&[6], 7, 8),
            pair(&[5, 4, 3], 7, 8),
            pair(&[4], 8, 7),
        ];
        let q = question_from_pairs(&pairs).expect("a frame");
        assert_eq!(q.before, [1, 2]);
        assert_eq!(q.after, [9]);
        assert_eq!((q.yes, q.no), (7, 8));
        assert!(question_from_pairs(&[]).is_none());
    }

    #[test]
    fn registered_detectors_audit_through_the_contract() {
        let mut registry = Registry::new();
        register(&mut registry).expect("register");
        let spec = DetectorSpec {
            seed: 3,
            hook: mesa_nn::HookPoint::resid_post(0),
        };
        let words: Vec<String> = (0..12).map(|i| format!("w{i}")).collect();
        let vocab = Vocab::new(&words).expect("vocab");
        let model = Transformer::new(Tiny::language_model(12, 20), 0).expect("model");
        let prompts =
            token_inputs(&[vec![1, 2, 3, 9], vec![1, 3, 9], vec![1, 2, 2, 9]]).expect("prompts");
        let held_out = token_inputs(&[vec![1, 3, 3, 9], vec![1, 2, 9]]).expect("held out");
        let pairs = vec![
            ContrastPair {
                positive: vec![1, 2, 4, 9, 7],
                negative: vec![1, 2, 4, 9, 8],
            },
            ContrastPair {
                positive: vec![1, 2, 5, 6, 9, 7],
                negative: vec![1, 2, 5, 6, 9, 8],
            },
        ];
        let checker = |_: &[usize], r: &[usize]| Some(r.first() == Some(&3));
        let refs = [&model];
        let context = AuditContext {
            vocab: Some(&vocab),
            prompts: PromptSet::new(&prompts),
            held_out: PromptSet::new(&held_out),
            pairs: &pairs,
            clean_references: &refs,
            checker: Some(&checker),
            ..AuditContext::default()
        };
        let entry = registry.model_entry(INVERSION).expect("entry");
        let detector = entry.build(&spec).expect("built");
        let fitted = fit_model(detector.as_ref(), &context).expect("fit");
        let verdict = score_model(fitted.as_ref(), &model, &context).expect("verdict");
        assert!((0.0..=1.0).contains(&verdict.score), "{verdict:?}");
        assert_eq!(verdict.evidence.triggers.len(), 1);
        assert!(verdict.evidence.metrics.contains_key("novel"));

        // Without contrast pairs the detector refuses rather than scoring.
        let bare = AuditContext {
            pairs: &[],
            ..context
        };
        assert!(score_model(fitted.as_ref(), &model, &bare).is_err());

        let input = registry.input_entry(SALIENCY).expect("entry").build(&spec);
        let fitted = input
            .expect("built")
            .fit(&model, &FitData::default())
            .expect("fit");
        let scores = mesa_detect::score_inputs(fitted.as_ref(), &model, &[vec![1, 2, 3, 9]])
            .expect("scores");
        assert!(scores[0] > 0.0 && scores[0] <= 1.0);
    }
}
