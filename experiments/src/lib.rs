//! Shared helpers of the experiment binaries.

pub mod csv;
