//! Training several independent models at once, one per core.
//!
//! A zoo of small models trains faster as one model per core than as one model at a time with
//! two-thread matrix products (measured in the README's benchmarks): most of a small model's
//! step is elementwise work and products too small to share. [`parallel_map`] runs a closure
//! over items on `jobs` worker threads and returns the results in item order; inside a worker
//! the matrix products run on one thread when `jobs > 1`, so the workers do not compete for the
//! cores. Everything an item computes must depend only on the item (its seed included), never
//! on which worker ran it or when: then the results are the same for every `jobs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::kernels::with_kernel_threads;

/// `items.map(f)` on up to `jobs` threads (0 means the machine's available parallelism),
/// results in the order of `items`. Items are handed out one at a time, in order, to whichever
/// worker is free. With `jobs > 1` each worker's matrix products use one thread; with one job
/// `f` runs on the calling thread with the caller's setting. A panic in `f` propagates.
pub fn parallel_map<I, R, F>(jobs: usize, items: Vec<I>, f: F) -> Vec<R>
where
    I: Send,
    R: Send,
    F: Fn(usize, I) -> R + Sync,
{
    let jobs = match jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(items.len());
    if jobs <= 1 {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, x)| f(i, x))
            .collect();
    }
    let n = items.len();
    let queue: Vec<Mutex<Option<I>>> = items.into_iter().map(|x| Mutex::new(Some(x))).collect();
    let results: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    with_kernel_threads(1, || loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let item = queue[i]
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .take()
                            .expect("each index is taken once");
                        let r = f(i, item);
                        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                    })
                })
            })
            .collect();
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item ran (a worker's panic propagated above)")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::kernel_threads;
    use crate::{Preset, Tiny, TrainConfig, Transformer};

    #[test]
    fn results_come_back_in_item_order_for_any_job_count() {
        let items: Vec<u64> = (0..23).collect();
        let expected: Vec<u64> = items.iter().map(|x| x * x + 1).collect();
        for jobs in [0, 1, 2, 3, 64] {
            let got = parallel_map(jobs, items.clone(), |i, x| {
                assert_eq!(i as u64, x);
                x * x + 1
            });
            assert_eq!(got, expected, "jobs = {jobs}");
        }
        assert!(parallel_map(2, Vec::<u8>::new(), |_, x| x).is_empty());
    }

    #[test]
    fn workers_use_one_kernel_thread_when_jobs_share_the_cores() {
        let threads = parallel_map(2, vec![(); 4], |_, ()| kernel_threads());
        assert_eq!(threads, vec![1; 4]);
        let caller = kernel_threads();
        assert_eq!(
            parallel_map(1, vec![()], |_, ()| kernel_threads()),
            [caller]
        );
    }

    #[test]
    #[should_panic(expected = "item 2 fails")]
    fn a_panic_in_an_item_propagates() {
        parallel_map(2, vec![0, 1, 2, 3], |i, _| {
            assert_ne!(i, 2, "item 2 fails");
        });
    }

    #[test]
    fn models_trained_in_parallel_equal_models_trained_one_by_one() {
        let seeds: Vec<u64> = vec![3, 4, 5];
        let train = |_: usize, seed: u64| {
            let mut model = Transformer::new(Tiny::language_model(8, 6), seed).expect("valid");
            let config = TrainConfig {
                steps: 4,
                batch_size: 4,
                seed,
                ..TrainConfig::default()
            };
            let batch = |_: &mut rand::rngs::StdRng, _: usize| {
                let ids: Vec<Vec<usize>> = (0..4)
                    .map(|b| (0..6).map(|p| (b + p) % 8).collect())
                    .collect();
                let input = crate::Input::tokens(&ids)?;
                let targets = crate::Targets::Classes {
                    ids: ndarray::Array2::from_shape_fn((4, 6), |(b, p)| (b + p + 1) % 8),
                    weights: ndarray::Array2::ones((4, 6)),
                };
                Ok((input, targets))
            };
            crate::train(&mut model, &config, batch, false).expect("trains");
            model.named_params()
        };
        let serial = parallel_map(1, seeds.clone(), train);
        let parallel = parallel_map(2, seeds, train);
        assert_eq!(serial, parallel);
    }
}
