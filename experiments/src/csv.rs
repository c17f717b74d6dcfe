//! Result tables as CSV, written atomically, with a JSON sidecar of provenance.
//!
//! Superseded by [`crate::write_table`] (Parquet + CSV + sidecar through `mesa-eval`); only
//! `goal_misgen` still uses this. Every table is a header and rows of already formatted cells;
//! `NAME.csv` and `NAME.meta.json` are each written through a temporary file and a rename, so a
//! failed run leaves no half-written table.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Writes `header` and `rows` to `path` (`.csv`) and `meta` (plus the git revision) beside it.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>], meta: Value) -> Result<()> {
    let mut text = header.join(",");
    text.push('\n');
    for row in rows {
        anyhow::ensure!(
            row.len() == header.len(),
            "row of {} cells for {} columns",
            row.len(),
            header.len()
        );
        let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    mesa_nn::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    let meta = serde_json::json!({
        "table": path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "git_revision": mesa_nn::git_revision(),
        "meta": meta,
    });
    let meta_path = path.with_extension("meta.json");
    mesa_nn::write_atomic(&meta_path, &serde_json::to_vec_pretty(&meta)?)
        .with_context(|| format!("writing {}", meta_path.display()))
}

fn escape(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// A rate with four decimals (`NaN` when undefined).
pub fn rate(x: f64) -> String {
    format!("{x:.4}")
}
