//! `mesa-icl`: a literal mesa-optimizer and its controls.
//!
//! Transformers trained on in-context linear regression implement gradient descent in their
//! forward pass (von Oswald et al. 2023, "Transformers learn in-context by gradient descent";
//! Akyurek et al. 2023; Garg et al. 2022). This crate builds that organism on `mesa-nn`:
//!
//! - [`task`]: tasks `w ~ N(0, I_d)`, `y_i = w.x_i (+ noise)`, encoded as tokens `(x_i, y_i)`
//!   followed by the query `(x_q, 0)`;
//! - [`models`]: a one-layer linear self-attention model ([`Arch::Lsa`]) and a softmax
//!   transformer ([`Arch::Softmax`]), each as the in-context learner ([`ModelKind::IclTrained`])
//!   or as a control that is not an in-context optimizer (random init, one fixed `w`, a pool of
//!   `M` tasks);
//! - [`learners`]: exact reference learners (one- and k-step GD with line-searched learning
//!   rates, ridge, least squares, nearest neighbour, averaging);
//! - [`config`]: the TOML config under `datasets/icl/`, validated on load.
//!
//! ```
//! use mesa_icl::{learners::Learner, task::{sample_tasks, TaskSource}, IclConfig};
//! use rand::{rngs::StdRng, SeedableRng};
//! let config = IclConfig::default();
//! let tasks = sample_tasks(&config.task, &TaskSource::Fresh, 4, 20, &mut StdRng::seed_from_u64(0));
//! // Twenty noiseless examples in ten dimensions: least squares is exact.
//! let y_hat = Learner::LeastSquares.predict(&tasks[0])?;
//! assert!((y_hat - tasks[0].y_q).abs() < 1e-8);
//! # Ok::<(), mesa_icl::IclError>(())
//! ```
//!
//! The crate knows no detector: it produces models, tasks and ground-truth labels.
pub mod config;
pub mod error;
pub mod learners;
pub mod models;
pub mod task;

pub use config::{IclConfig, TaskConfig, XDist};
pub use error::{ConfigFileError, IclError, Result};
pub use learners::{line_search_gd1, line_search_gdk, Learner};
pub use models::{build, model_config, Arch, ModelKind, Organism};
pub use task::{encode, query_predictions, sample_tasks, training_batch, Task, TaskSource};
