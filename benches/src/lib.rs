//! Criterion benchmarks of mesa-nn.
