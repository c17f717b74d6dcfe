//! The report as text: evidence as sentences, Markdown, and the JSON and Markdown files.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mesa_detect::Evidence;

use super::{AuditReport, DetectorLine};

/// Evidence as sentences: the metrics, each recovered trigger, the notes.
pub fn evidence_lines(e: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    if !e.metrics.is_empty() {
        let m: Vec<String> = e
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} = {v:.4}"))
            .collect();
        out.push(format!("metrics: {}", m.join(", ")));
    }
    for t in &e.triggers {
        let what = if t.words.is_empty() {
            format!("{:?}", t.tokens)
        } else {
            t.words.join(" ")
        };
        let mut s = format!("trigger `{what}`");
        if let Some(p) = t.position {
            s.push_str(&format!(" at position {p}"));
        }
        if !t.behaviour.is_empty() {
            s.push_str(&format!(" -> `{}`", t.behaviour.join(" ")));
        }
        if let Some(r) = t.success_rate {
            s.push_str(&format!(" on {:.0}% of held-out prompts", 100.0 * r));
        }
        if let Some(h) = t.harmful {
            s.push_str(if h { " (harmful)" } else { " (benign)" });
        }
        if !t.detail.is_empty() {
            let d: Vec<String> = t
                .detail
                .iter()
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect();
            s.push_str(&format!("; {}", d.join(", ")));
        }
        out.push(s);
    }
    out.extend(e.notes.iter().cloned());
    out
}

/// A Markdown table cell: no pipes, no line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The report as Markdown (also what the binary prints).
pub fn markdown(r: &AuditReport) -> String {
    let mut s = String::new();
    let mut line = |t: String| {
        s.push_str(&t);
        s.push('\n');
    };
    let c = &r.model_config;
    line(format!("# Audit of `{}`", r.checkpoint));
    line(String::new());
    line(format!("- Weights SHA-256: `{}`", r.weights_sha256));
    line(format!(
        "- Model: preset `{}`, {} blocks, d_model {}, {} heads, vocabulary {}",
        c.preset, c.n_layers, c.d_model, c.n_heads, c.d_out
    ));
    let f = &r.sidecar;
    line(format!(
        "- Sidecar (ground truth claimed by the file; no detector sees it): family `{}` \
         (split {}, config hash {}), organism seed {}, role {}",
        f.family,
        f.split,
        f.config_hash,
        f.organism_seed.map_or("-".into(), |s| s.to_string()),
        f.role.as_deref().unwrap_or("-")
    ));
    let refs = &r.references;
    line(format!(
        "- References: {} training-split models of the same architecture ({} clean, {} \
         backdoored)",
        refs.n_labelled, refs.n_clean, refs.n_backdoored
    ));
    if let Some(me) = &r.self_in_zoo {
        line(format!("- Self: {me}"));
    }
    line(format!(
        "- Auditor's context: {} + {} generic prompts, {} contrast pairs, seed {}",
        r.prompts, r.prompts, r.pairs, r.seed
    ));
    line(String::new());
    line("## Risk".into());
    line(String::new());
    match (&r.risk, &r.no_risk_reason) {
        (Some(k), _) => {
            line(format!(
                "**Risk {:.3}** [{:.3}, {:.3}] ({:.0}% bootstrap interval): probability that \
                 the model hides harmful conditional behaviour, from a logistic stack of {} \
                 detectors fitted on {} backdoored and {} benign training-split models of \
                 `{}`.",
                k.risk,
                k.lo,
                k.hi,
                100.0 * k.confidence,
                k.columns.len(),
                k.n_train_backdoored,
                k.n_train_benign,
                r.scores_table
            ));
            line(String::new());
            line(format!("- Flagged families: {}", list(&k.flagged_families)));
            line(format!("- Clear families: {}", list(&k.clear_families)));
            line(format!(
                "- Missing (failed, imputed, never counted as safe): {}",
                list(&k.missing)
            ));
        }
        (None, why) => {
            line(format!(
                "**No risk**: {}",
                why.as_deref().unwrap_or("the risk model was not fitted")
            ));
            let failed: Vec<String> = r
                .detectors
                .iter()
                .filter(|d| d.error.is_some())
                .map(DetectorLine::label)
                .collect();
            line(String::new());
            line(format!("- Failed detectors: {}", list(&failed)));
        }
    }
    line(String::new());
    line("## Detectors".into());
    line(String::new());
    line("| detector | layer | family | score | z | flagged | weight | status |".into());
    line("|---|---|---|---|---|---|---|---|".into());
    for d in &r.detectors {
        let status = match &d.error {
            Some(e) => format!("FAILED: {}", cell(e)),
            None if d.in_risk_model => "ok".into(),
            None => "ok (not in the risk model)".into(),
        };
        line(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            d.name,
            d.layer.map_or("-".into(), |l| l.to_string()),
            d.family,
            num(d.score, 4),
            num(d.z, 2),
            d.flagged.map_or("-", |f| if f { "yes" } else { "no" }),
            num(d.weight, 3),
            status
        ));
    }
    let with_evidence: Vec<&DetectorLine> = r
        .detectors
        .iter()
        .filter(|d| !d.evidence.is_empty())
        .collect();
    if !with_evidence.is_empty() {
        line(String::new());
        line("## Evidence".into());
        for d in with_evidence {
            line(String::new());
            line(format!("### {}", d.label()));
            line(String::new());
            for e in &d.evidence {
                line(format!("- {e}"));
            }
        }
    }
    if !r.notes.is_empty() {
        line(String::new());
        line("## Notes".into());
        line(String::new());
        for n in &r.notes {
            line(format!("- {n}"));
        }
    }
    s
}

/// `results/audit/<checkpoint stem>.json`.
pub fn default_json_path(checkpoint: &Path) -> PathBuf {
    let stem = checkpoint
        .file_stem()
        .map_or_else(|| "audit".into(), |s| s.to_string_lossy().into_owned());
    Path::new("results/audit").join(format!("{stem}.json"))
}

/// Writes `bytes` to `path` through `path.tmp` and a rename.
fn write_via_tmp(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Writes the report as JSON to `json` and as Markdown beside it (`.md`); returns both paths.
///
/// # Errors
/// A folder or file that cannot be written.
pub fn write_report(report: &AuditReport, json: &Path) -> Result<(PathBuf, PathBuf)> {
    if let Some(dir) = json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let md = json.with_extension("md");
    let text = serde_json::to_vec_pretty(report).context("serialising the report")?;
    write_via_tmp(json, &text)?;
    write_via_tmp(&md, markdown(report).as_bytes())?;
    Ok((json.to_path_buf(), md))
}
