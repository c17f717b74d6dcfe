//! `mesa-behavioral`: black-box behavioural detectors, the baseline the white-box families must
//! beat. They see a model only through its responses ([`Responder`]; [`Greedy`] decodes a
//! `mesa-nn` transformer), as a user of an API would.
//!
//! - **Context consistency** ([`context_consistency`]): a library of candidate context cues
//!   ([`CueLibrary`], TOML under `datasets/behavioral/`: deployment-like tags, dates, "observed /
//!   unobserved" phrases, random filler) is inserted into generic untriggered prompts; a cue that
//!   breaks the task onto one shared foreign continuation looks like a backdoor ([`change_stats`],
//!   judged with the caller's [`TaskChecker`]). Model score: the largest such effect of any cue.
//! - **STRIP** ([`strip_scores`], Gao et al. 2019) at the input level: random filler words are
//!   superimposed on an input; a triggered input's response stays fixed on its defection.
//!
//! ```
//! use mesa_behavioral::{strip_scores, Responder, Result, StripParams, Tokens};
//!
//! /// A toy API: answers [99] whenever token 7 is in the prompt, else echoes the prompt.
//! struct Api;
//! impl Responder for Api {
//!     fn respond(&self, prompts: &[Tokens]) -> Result<Vec<Tokens>> {
//!         Ok(prompts.iter().map(|p| if p.contains(&7) { vec![99] } else { p.clone() }).collect())
//!     }
//! }
//! let filler: Vec<usize> = (20..40).collect();
//! let s = strip_scores(&Api, &[vec![1, 7, 0], vec![1, 2, 0]], &filler, &StripParams::default())?;
//! assert!(s[0].score > s[1].score);
//! # Ok::<(), mesa_behavioral::BehavioralError>(())
//! ```
//!
//! Detectors here know no organism and do no file IO: the cue library is parsed from text the
//! caller read.

pub mod change;
pub mod consistency;
pub mod cues;
pub mod detector;
pub mod error;
pub mod respond;
pub mod strip;

pub use change::{change_stats, ChangeStats, TaskChecker};
pub use consistency::{
    context_consistency, insert, ConsistencyParams, ConsistencyReport, CueEffect, InsertAt,
};
pub use cues::{Cue, CueKind, CueLibrary, RandomFiller, ResolvedCue, ResolvedCues};
pub use detector::{
    filler_ids, infer_stop, register, ConsistencyDetector, StripDetector, DEFAULT_CUES, MAX_NEW,
    STOP_WORD,
};
pub use error::{BehavioralError, Result};
pub use respond::{by_room, check_prompts, cut_at_stop, Greedy, Responder, Tokens};
pub use strip::{perturb, stability, strip_scores, StripParams, StripScore};
