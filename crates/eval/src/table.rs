//! Result tables: rows of any flat `#[derive(Serialize)]` struct become a Polars [`DataFrame`],
//! written as Parquet and CSV with a JSON sidecar, all or nothing.
//!
//! Every table records where its numbers came from ([`TableMeta`]: seed, config, git revision,
//! UTC time). The record goes into the Parquet file's key-value metadata (keys `mesa.seed`,
//! `mesa.config`, `mesa.git_revision`, `mesa.created_utc`, and `mesa.<key>` for extras) and into
//! `NAME.meta.json` beside the table, which CSV readers can use too.
//!
//! A cell is a number, a string, a bool, a unit enum variant (written as its serde name) or an
//! `Option` of one (`None` is a null). A NaN or infinity is an error, never a cell.
//!
//! ```
//! use mesa_eval::table::{write_table, TableMeta};
//!
//! #[derive(serde::Serialize)]
//! struct Row { probe: &'static str, layer: u32, auroc: f64 }
//!
//! let dir = tempfile::tempdir()?;
//! let rows = [Row { probe: "logistic", layer: 1, auroc: 0.98 }];
//! let meta = TableMeta::new(7, &serde_json::json!({ "layers": [1] }))?
//!     .with_git_revision(Some("abc123".into()));
//! let written = write_table(dir.path(), "table", &rows, &meta)?;
//! assert!(written.csv.exists() && written.parquet.exists() && written.meta.exists());
//! assert_eq!(written.frame.height(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use polars::prelude::*;
use serde::Serialize;

use crate::error::WriteError;
use crate::row::{row_cells, Cell};

use crate::staged::Staged;
/// Polars types a reader of [`read_csv`] / [`read_parquet`] needs, so callers need no direct
/// Polars dependency.
pub use polars::prelude::{DataFrame, DataType};

/// Where a table's numbers came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableMeta {
    /// The one seed every random choice of the run flowed from.
    pub seed: u64,
    /// The run's full configuration (CLI arguments, organism config, ...).
    pub config: serde_json::Value,
    /// `git rev-parse HEAD` of the code that produced the table (`-dirty` if modified), if known.
    pub git_revision: Option<String>,
    /// When the table was made, RFC 3339 in UTC (`2026-01-31T12:00:00Z`).
    pub created_utc: String,
    /// Anything else worth recording, as strings.
    pub extra: BTreeMap<String, String>,
}

impl TableMeta {
    /// Metadata stamped with the current time; add the git revision with
    /// [`TableMeta::with_git_revision`] (this crate runs no `git`).
    ///
    /// # Errors
    /// [`WriteError::Metadata`] if `config` does not serialise to JSON.
    pub fn new<C: Serialize + ?Sized>(seed: u64, config: &C) -> Result<Self, WriteError> {
        Ok(Self {
            seed,
            config: serde_json::to_value(config)
                .map_err(|e| WriteError::Metadata(e.to_string()))?,
            git_revision: None,
            created_utc: utc_now_rfc3339(),
            extra: BTreeMap::new(),
        })
    }

    pub fn with_git_revision(mut self, revision: Option<String>) -> Self {
        self.git_revision = revision;
        self
    }

    /// Adds one extra key-value pair.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    fn key_values(&self) -> Vec<(String, String)> {
        let mut kv = vec![
            ("mesa.seed".to_string(), self.seed.to_string()),
            ("mesa.config".to_string(), self.config.to_string()),
            (
                "mesa.git_revision".to_string(),
                self.git_revision
                    .clone()
                    .unwrap_or_else(|| "unknown".into()),
            ),
            ("mesa.created_utc".to_string(), self.created_utc.clone()),
        ];
        kv.extend(
            self.extra
                .iter()
                .map(|(k, v)| (format!("mesa.{k}"), v.clone())),
        );
        kv
    }
}

/// The files a table was written to, and the frame that was written.
#[derive(Debug, Clone)]
pub struct WrittenTable {
    pub csv: PathBuf,
    pub parquet: PathBuf,
    pub meta: PathBuf,
    pub frame: DataFrame,
}

/// The rows as a DataFrame: one column per struct field, in declaration order.
///
/// Column types: strings and unit enum variants -> `String`; bools -> `Boolean`; unsigned
/// integers -> `UInt64`; signed (or mixed) integers -> `Int64`; floats, or floats mixed with
/// integers -> `Float64`. `None` is a null of the column's type.
///
/// # Errors
/// [`WriteError::EmptyTable`] with no rows; [`WriteError::InvalidRow`] for a row that is not a
/// flat struct, a non-finite float, a field whose type differs from the rows before it, or rows
/// whose fields differ.
pub fn to_dataframe<R: Serialize>(table: &str, rows: &[R]) -> Result<DataFrame, WriteError> {
    let invalid = |row: usize, field: &str, reason: String| WriteError::InvalidRow {
        table: table.to_string(),
        row,
        field: field.to_string(),
        reason,
    };
    let first = rows.first().ok_or_else(|| WriteError::EmptyTable {
        table: table.to_string(),
    })?;
    let first = row_cells(first).map_err(|(field, reason)| invalid(0, &field, reason))?;
    let names: Vec<String> = first.iter().map(|(name, _)| name.clone()).collect();
    let mut columns: Vec<Vec<Cell>> = first.into_iter().map(|(_, c)| vec![c]).collect();
    for (r, row) in rows.iter().enumerate().skip(1) {
        let cells = row_cells(row).map_err(|(field, reason)| invalid(r, &field, reason))?;
        if cells.len() != names.len() || cells.iter().zip(&names).any(|((n, _), m)| n != m) {
            let found: Vec<&str> = cells.iter().map(|(n, _)| n.as_str()).collect();
            return Err(invalid(
                r,
                "",
                format!("fields {found:?} differ from row 0's {names:?}"),
            ));
        }
        for (column, (_, cell)) in columns.iter_mut().zip(cells) {
            column.push(cell);
        }
    }
    let series = names
        .iter()
        .zip(&columns)
        .map(|(name, cells)| {
            to_column(name, cells).map_err(|(row, reason)| invalid(row, name, reason))
        })
        .collect::<Result<Vec<Column>, WriteError>>()?;
    DataFrame::new(rows.len(), series).map_err(|e| WriteError::Polars {
        path: PathBuf::from(table),
        message: e.to_string(),
    })
}

/// Writes `rows` to `dir/NAME.csv`, `dir/NAME.parquet` and `dir/NAME.meta.json` (creating
/// `dir`), all or nothing: on any error none of the three is left behind (an older version of
/// a file may be gone, but no file is ever half-written).
///
/// # Errors
/// As [`to_dataframe`], plus [`WriteError::Io`] / [`WriteError::Polars`] naming the file.
pub fn write_table<R: Serialize>(
    dir: &Path,
    name: &str,
    rows: &[R],
    meta: &TableMeta,
) -> Result<WrittenTable, WriteError> {
    let frame = to_dataframe(name, rows)?;
    write_dataframe(dir, name, frame, meta)
}

/// Writes an existing frame as [`write_table`] does.
///
/// # Errors
/// [`WriteError::Io`] / [`WriteError::Polars`] naming the file.
pub fn write_dataframe(
    dir: &Path,
    name: &str,
    mut frame: DataFrame,
    meta: &TableMeta,
) -> Result<WrittenTable, WriteError> {
    let csv = dir.join(format!("{name}.csv"));
    let parquet = dir.join(format!("{name}.parquet"));
    let meta_path = dir.join(format!("{name}.meta.json"));
    let mut staged = Staged::new();

    let sidecar = serde_json::json!({
        "table": name,
        "rows": frame.height(),
        "columns": frame
            .columns()
            .iter()
            .map(|c| serde_json::json!({ "name": c.name().as_str(), "dtype": c.dtype().to_string() }))
            .collect::<Vec<_>>(),
        "seed": meta.seed,
        "config": meta.config,
        "git_revision": meta.git_revision,
        "created_utc": meta.created_utc,
        "extra": meta.extra,
    });
    let text =
        serde_json::to_string_pretty(&sidecar).map_err(|e| WriteError::Metadata(e.to_string()))?;
    let tmp = staged.stage(&meta_path)?;
    std::fs::write(&tmp, text + "\n").map_err(|source| WriteError::Io {
        path: meta_path.clone(),
        source,
    })?;

    let tmp = staged.stage(&csv)?;
    let mut file = create(&tmp, &csv)?;
    CsvWriter::new(&mut file)
        .include_header(true)
        .finish(&mut frame)
        .map_err(|e| polars_error(&csv, e))?;
    sync(file, &csv)?;

    let tmp = staged.stage(&parquet)?;
    let mut file = create(&tmp, &parquet)?;
    ParquetWriter::new(&mut file)
        .with_key_value_metadata(Some(KeyValueMetadata::from_static(meta.key_values())))
        .finish(&mut frame)
        .map_err(|e| polars_error(&parquet, e))?;
    sync(file, &parquet)?;

    staged.commit()?;
    Ok(WrittenTable {
        csv,
        parquet,
        meta: meta_path,
        frame,
    })
}

/// Reads a CSV table written by [`write_table`] back into a frame.
///
/// # Errors
/// [`WriteError::Polars`] naming the file if it is missing or malformed.
pub fn read_csv(path: &Path) -> Result<DataFrame, WriteError> {
    CsvReadOptions::default()
        .with_has_header(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|e| polars_error(path, e))
}

/// Reads a CSV table written by [`write_table`] as records: one map per row from column name
/// to the cell as text (`""` for a missing value), for readers that want no Polars types.
///
/// # Errors
/// [`WriteError::Polars`] naming the file if it is missing or malformed.
pub fn read_records(path: &Path) -> Result<Vec<BTreeMap<String, String>>, WriteError> {
    let frame = read_csv(path)?;
    let columns = frame.columns();
    (0..frame.height())
        .map(|i| {
            columns
                .iter()
                .map(|c| {
                    let cell = c.get(i).map_err(|e| polars_error(path, e))?;
                    let text = match cell {
                        AnyValue::Null => String::new(),
                        AnyValue::String(s) => s.to_string(),
                        AnyValue::StringOwned(s) => s.to_string(),
                        other => other.to_string(),
                    };
                    Ok((c.name().to_string(), text))
                })
                .collect()
        })
        .collect()
}

/// Reads a Parquet table written by [`write_table`], with its key-value metadata.
///
/// # Errors
/// [`WriteError::Io`] / [`WriteError::Polars`] naming the file.
pub fn read_parquet(path: &Path) -> Result<(DataFrame, BTreeMap<String, String>), WriteError> {
    let file = File::open(path).map_err(|source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = ParquetReader::new(file);
    let key_values = reader
        .get_metadata()
        .map_err(|e| polars_error(path, e))?
        .key_value_metadata()
        .iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect();
    let frame = reader.finish().map_err(|e| polars_error(path, e))?;
    Ok((frame, key_values))
}

fn create(tmp: &Path, target: &Path) -> Result<File, WriteError> {
    File::create(tmp).map_err(|source| WriteError::Io {
        path: target.to_path_buf(),
        source,
    })
}

fn sync(file: File, target: &Path) -> Result<(), WriteError> {
    file.sync_all().map_err(|source| WriteError::Io {
        path: target.to_path_buf(),
        source,
    })
}

fn polars_error(path: &Path, e: PolarsError) -> WriteError {
    WriteError::Polars {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One column from its cells; on a type clash, the row and the reason.
fn to_column(name: &str, cells: &[Cell]) -> Result<Column, (usize, String)> {
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Kind {
        Str,
        Bool,
        Unsigned,
        Signed,
        Float,
    }
    let kind_of = |c: &Cell| match c {
        Cell::Str(_) => Some(Kind::Str),
        Cell::Bool(_) => Some(Kind::Bool),
        Cell::U64(_) => Some(Kind::Unsigned),
        Cell::I64(_) => Some(Kind::Signed),
        Cell::F64(_) => Some(Kind::Float),
        Cell::Null => None,
    };
    let numeric = |k: Kind| matches!(k, Kind::Unsigned | Kind::Signed | Kind::Float);
    let mut kind: Option<Kind> = None;
    for (row, cell) in cells.iter().enumerate() {
        let Some(k) = kind_of(cell) else { continue };
        kind = Some(match kind {
            None => k,
            Some(prev) if prev == k => k,
            Some(prev) if numeric(prev) && numeric(k) => {
                if prev == Kind::Float || k == Kind::Float {
                    Kind::Float
                } else {
                    Kind::Signed
                }
            }
            Some(prev) => {
                return Err((row, format!("{k:?} value in a {prev:?} column")));
            }
        });
    }
    let name = PlSmallStr::from(name);
    Ok(match kind.unwrap_or(Kind::Str) {
        Kind::Str => Column::new(
            name,
            cells
                .iter()
                .map(|c| match c {
                    Cell::Str(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Bool => Column::new(
            name,
            cells
                .iter()
                .map(|c| match c {
                    Cell::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Unsigned => Column::new(
            name,
            cells
                .iter()
                .map(|c| match c {
                    Cell::U64(v) => Some(*v),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
        Kind::Signed => {
            let mut values = Vec::with_capacity(cells.len());
            for (row, c) in cells.iter().enumerate() {
                values.push(match c {
                    Cell::I64(v) => Some(*v),
                    Cell::U64(v) => {
                        Some(i64::try_from(*v).map_err(|_| {
                            (row, format!("{v} does not fit a signed 64-bit column"))
                        })?)
                    }
                    _ => None,
                });
            }
            Column::new(name, values)
        }
        Kind::Float => Column::new(
            name,
            cells
                .iter()
                .map(|c| match c {
                    Cell::F64(v) => Some(*v),
                    Cell::I64(v) => Some(*v as f64),
                    Cell::U64(v) => Some(*v as f64),
                    _ => None,
                })
                .collect::<Vec<_>>(),
        ),
    })
}

/// The current time as RFC 3339 UTC, to the second.
fn utc_now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "lowercase")]
    enum Model {
        Backdoored,
        Clean,
    }

    #[derive(Serialize)]
    struct Row {
        model: Model,
        probe: String,
        layer: usize,
        auroc: f64,
        delta: i32,
        best: bool,
        note: Option<String>,
    }

    fn rows() -> Vec<Row> {
        vec![
            Row {
                model: Model::Backdoored,
                probe: "logistic".into(),
                layer: 0,
                auroc: 0.987_654_321_012_345_6,
                delta: -3,
                best: false,
                note: None,
            },
            Row {
                model: Model::Clean,
                probe: "mean, \"diff\"".into(),
                layer: 2,
                auroc: 0.5,
                delta: 4,
                best: true,
                note: Some("ok".into()),
            },
        ]
    }

    fn meta() -> TableMeta {
        TableMeta::new(42, &serde_json::json!({ "layers": [0, 2] }))
            .expect("json config")
            .with_git_revision(Some("deadbeef".into()))
            .with("variant", "word")
    }

    #[test]
    fn table_round_trips_through_csv_and_parquet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = write_table(dir.path(), "t", &rows(), &meta()).expect("written");

        let back = read_csv(&written.csv).expect("csv");
        assert_eq!(back.height(), 2);
        let names: Vec<&str> = back.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            ["model", "probe", "layer", "auroc", "delta", "best", "note"]
        );
        let col = |n: &str| back.column(n).expect("column").as_materialized_series();
        let model: Vec<Option<&str>> = values(col("model").str().expect("str"));
        assert_eq!(model, [Some("backdoored"), Some("clean")]);
        let probe: Vec<Option<&str>> = values(col("probe").str().expect("str"));
        assert_eq!(probe, [Some("logistic"), Some("mean, \"diff\"")]);
        let auroc: Vec<Option<f64>> = values(col("auroc").f64().expect("f64"));
        assert_eq!(auroc, [Some(0.987_654_321_012_345_6), Some(0.5)]);
        let layer: Vec<Option<i64>> = values(col("layer").i64().expect("i64"));
        assert_eq!(layer, [Some(0), Some(2)]);
        let delta: Vec<Option<i64>> = values(col("delta").i64().expect("i64"));
        assert_eq!(delta, [Some(-3), Some(4)]);
        let best: Vec<Option<bool>> = values(col("best").bool().expect("bool"));
        assert_eq!(best, [Some(false), Some(true)]);

        let records = read_records(&written.csv).expect("records");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["model"], "backdoored");
        assert_eq!(records[1]["probe"], "mean, \"diff\"");
        assert_eq!(records[0]["layer"], "0");
        assert_eq!(records[0]["note"], "");
        assert_eq!(records[1]["best"], "true");
        assert_eq!(records[1]["auroc"].parse::<f64>().ok(), Some(0.5));

        let (parquet, kv) = read_parquet(&written.parquet).expect("parquet");
        assert!(parquet.equals_missing(&written.frame));
        assert_eq!(kv.get("mesa.seed").map(String::as_str), Some("42"));
        assert_eq!(
            kv.get("mesa.git_revision").map(String::as_str),
            Some("deadbeef")
        );
        assert_eq!(kv.get("mesa.variant").map(String::as_str), Some("word"));

        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&written.meta).expect("sidecar"))
                .expect("json");
        assert_eq!(sidecar["seed"], 42);
        assert_eq!(sidecar["rows"], 2);
        assert_eq!(sidecar["config"]["layers"][1], 2);
    }

    /// Every value of a column, nulls as `None`.
    fn values<T: PolarsDataType>(ca: &ChunkedArray<T>) -> Vec<Option<T::Physical<'_>>> {
        (0..ca.len()).map(|i| ca.get(i)).collect()
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A directory where the Parquet file should go makes the last rename fail, after the
        // sidecar and the CSV were already renamed into place.
        std::fs::create_dir(dir.path().join("t.parquet")).expect("blocker");
        let err = write_table(dir.path(), "t", &rows(), &meta()).expect_err("must fail");
        assert!(matches!(err, WriteError::Io { .. }), "{err}");
        assert_eq!(files_in(dir.path()), ["t.parquet"]);
    }

    #[test]
    fn non_finite_cell_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bad = rows();
        bad[1].auroc = f64::NAN;
        let err = write_table(dir.path(), "t", &bad, &meta()).expect_err("NaN refused");
        match err {
            WriteError::InvalidRow { row, field, .. } => {
                assert_eq!((row, field.as_str()), (1, "auroc"))
            }
            other => panic!("unexpected {other}"),
        }
        assert!(files_in(dir.path()).is_empty());
    }

    #[test]
    fn empty_table_and_type_clash_are_errors() {
        let none: [Row; 0] = [];
        assert!(matches!(
            to_dataframe("t", &none),
            Err(WriteError::EmptyTable { .. })
        ));
        #[derive(Serialize)]
        struct Either {
            x: serde_json::Value,
        }
        let clash = [Either { x: 1.into() }, Either { x: "one".into() }];
        // serde_json::Value serialises numbers and strings through the same cell serializer.
        assert!(matches!(
            to_dataframe("t", &clash),
            Err(WriteError::InvalidRow { row: 1, .. })
        ));
    }

    #[test]
    fn civil_from_days_matches_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }
}
