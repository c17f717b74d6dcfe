//! Matrix products for the fused ops, and how many threads they may use.
//!
//! Every product is one call to the `gemm` crate (0.19, built with its `x86-v4` feature: it
//! picks AVX-512 kernels at run time where the CPU has them, AVX2/FMA otherwise) on strided
//! row-major views, so transposes and column slices cost no copy. dfdx's own matmul calls
//! `gemm` 0.15, whose AVX-512 kernels need a nightly compiler, once per batch element.
//!
//! Threads: a product large enough to share runs on up to [`kernel_threads`] threads of
//! rayon's global pool. `gemm` splits the output between threads and sums every output
//! element over the inner dimension in the same order whatever the thread count, so results
//! do not depend on it (tested below). Code that trains several models at once, one per core,
//! sets 1 for its worker threads ([`with_kernel_threads`]; [`crate::parallel_map`] does it).

use std::cell::Cell;

thread_local! {
    /// 0: not set on this thread, use the machine's parallelism.
    static KERNEL_THREADS: Cell<usize> = const { Cell::new(0) };
}

/// Products with fewer multiply-adds than this run on one thread: below it, waking a second
/// thread costs more than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// The number of threads a matrix product started on this thread may use: the value set by
/// [`with_kernel_threads`], else the machine's available parallelism.
pub fn kernel_threads() -> usize {
    match KERNEL_THREADS.with(Cell::get) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Runs `f` with matrix products on this thread limited to `threads` threads (at least 1), and
/// restores the previous setting afterwards, also if `f` panics.
pub fn with_kernel_threads<R>(threads: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            KERNEL_THREADS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(KERNEL_THREADS.with(|c| c.replace(threads.max(1))));
    f()
}

/// A read-only strided matrix view: element `(i, j)` is `data[offset + i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A dense row-major `rows x cols` matrix.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            offset: 0,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose, without moving data.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = self.offset + (self.rows - 1) * self.rs + (self.cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst = (accumulate ? dst : 0) + a * b`, where `dst` is the `a.rows x b.cols` matrix at
/// `dst[offset + i * rs + j * cs]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    dst: &mut [f32],
    offset: usize,
    rs: usize,
    cs: usize,
    a: View<'_>,
    b: View<'_>,
    accumulate: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions of a matrix product");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return;
    }
    let last = offset + (m - 1) * rs + (n - 1) * cs;
    assert!(last < dst.len(), "destination view out of bounds");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[offset + i * rs + j * cs] = 0.0;
                }
            }
        }
        return;
    }
    let threads = kernel_threads();
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the three views were checked to lie inside their slices (strides are unsigned,
    // so the checked corner is the furthest element); `dst` is borrowed mutably, so it aliases
    // neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(offset),
            cs as isize,
            rs as isize,
            accumulate,
            a.data.as_ptr().add(a.offset),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr().add(b.offset),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 250.0 - 2.0)
            .collect()
    }

    fn naive(a: View<'_>, b: View<'_>) -> Vec<f32> {
        let mut out = vec![0.0f32; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0.0f64;
                for p in 0..a.cols {
                    s += a.data[a.offset + i * a.rs + p * a.cs] as f64
                        * b.data[b.offset + p * b.rs + j * b.cs] as f64;
                }
                out[i * b.cols + j] = s as f32;
            }
        }
        out
    }

    #[test]
    fn strided_products_match_a_naive_product() {
        let (m, k, n) = (37, 19, 23);
        let a = values(m * k, 1);
        let b_t = values(n * k, 2); // stored transposed: b = b_t^T
        let a = View::dense(&a, m, k);
        let b = View::dense(&b_t, n, k).t();
        let expected = naive(a, b);
        // Write into columns 5..5+n of a wider destination that starts with ones.
        let width = n + 7;
        let mut dst = vec![1.0f32; m * width];
        matmul(&mut dst, 5, width, 1, a, b, true);
        for i in 0..m {
            for j in 0..n {
                let got = dst[5 + i * width + j];
                assert!((got - 1.0 - expected[i * n + j]).abs() < 1e-4);
            }
            assert_eq!(dst[i * width], 1.0, "columns outside the view untouched");
        }
        matmul(&mut dst, 5, width, 1, a, b, false);
        assert!(
            (dst[5] - expected[0]).abs() < 1e-4,
            "overwrite, not accumulate"
        );
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // Large enough to run threaded, with a long inner dimension as in a weight gradient.
        let (m, k, n) = (64, 2048, 96);
        let a = values(m * k, 3);
        let b = values(k * n, 4);
        let run = |threads| {
            with_kernel_threads(threads, || {
                let mut dst = vec![0.0f32; m * n];
                matmul(
                    &mut dst,
                    0,
                    n,
                    1,
                    View::dense(&a, m, k),
                    View::dense(&b, k, n),
                    false,
                );
                dst
            })
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(4));
        assert_eq!(one, run(1));
    }

    #[test]
    fn with_kernel_threads_is_scoped() {
        let outer = kernel_threads();
        let inner = with_kernel_threads(1, || {
            assert_eq!(kernel_threads(), 1);
            with_kernel_threads(3, kernel_threads)
        });
        assert_eq!(inner, 3);
        assert_eq!(kernel_threads(), outer);
    }
}
