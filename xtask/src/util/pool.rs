//! Independent pieces of work on a few threads, results kept in input order (so what is
//! written does not depend on which piece finished first), stopping at the first failure.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use anyhow::Result;

/// Runs `work(index, item)` for every item with at most `jobs` running at once. After the
/// first failure no new item starts and `stop_others` runs once, so running items can be cut
/// short; their errors (caused by the stop) are dropped and the first failure is returned.
pub fn run_ordered<I, T>(
    jobs: usize,
    items: &[I],
    work: impl Fn(usize, &I) -> Result<T> + Sync,
    stop_others: impl Fn() + Sync,
) -> Result<Vec<T>>
where
    I: Sync,
    T: Send,
{
    run(jobs, items, || (), |(), index, item| work(index, item), OnFailure::StopOthers(&stop_others))
}

/// Runs `work(worker, index, item)` for every item with at most `jobs` running at once, each
/// worker thread holding a `W` made by `worker` (a registry connection, say) that it lends
/// to every item it runs. After a failure no new item starts and the running ones finish;
/// the failure of the earliest item is returned, so the error does not depend on timing.
pub fn run_ordered_with<I, T, W>(
    jobs: usize,
    items: &[I],
    worker: impl Fn() -> W + Sync,
    work: impl Fn(&mut W, usize, &I) -> Result<T> + Sync,
) -> Result<Vec<T>>
where
    I: Sync,
    T: Send,
{
    run(jobs, items, worker, work, OnFailure::LetRunningFinish)
}

/// What a failure does to the items running beside it.
enum OnFailure<'a> {
    /// Cut them short with this: their errors are caused by the stop, so the first failure
    /// is the news.
    StopOthers(&'a (dyn Fn() + Sync)),
    /// Let them finish: each failure is real, and the earliest item's is reported.
    LetRunningFinish,
}

fn run<I, T, W>(
    jobs: usize,
    items: &[I],
    worker: impl Fn() -> W + Sync,
    work: impl Fn(&mut W, usize, &I) -> Result<T> + Sync,
    on_failure: OnFailure,
) -> Result<Vec<T>>
where
    I: Sync,
    T: Send,
{
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let reported: Mutex<Option<(usize, anyhow::Error)>> = Mutex::new(None);
    let results: Mutex<Vec<Option<T>>> = Mutex::new(items.iter().map(|_| None).collect());
    let run_worker = || {
        let mut own = worker();
        loop {
            if failed.load(Ordering::SeqCst) {
                return;
            }
            let index = next.fetch_add(1, Ordering::SeqCst);
            let Some(item) = items.get(index) else { return };
            match work(&mut own, index, item) {
                Ok(value) => results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(value),
                Err(err) => {
                    let first = !failed.swap(true, Ordering::SeqCst);
                    let mut reported = reported.lock().unwrap_or_else(PoisonError::into_inner);
                    match on_failure {
                        OnFailure::StopOthers(stop_others) if first => {
                            *reported = Some((index, err));
                            drop(reported);
                            stop_others();
                        }
                        OnFailure::StopOthers(_) => {}
                        OnFailure::LetRunningFinish => {
                            if reported.as_ref().is_none_or(|(earlier, _)| index < *earlier) {
                                *reported = Some((index, err));
                            }
                        }
                    }
                    return;
                }
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(run_worker);
        }
    });
    if let Some((_, err)) = reported.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(err);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn results_come_in_input_order_whatever_finishes_first() {
        let items = [30u64, 0, 20, 10];
        let out = run_ordered(
            4,
            &items,
            |i, ms| {
                std::thread::sleep(Duration::from_millis(*ms));
                Ok(i)
            },
            || {},
        )
        .unwrap();
        assert_eq!(out, vec![0, 1, 2, 3]);
    }

    #[test]
    fn at_most_jobs_items_run_at_once() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        run_ordered(
            2,
            &[(); 6],
            |_, _| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            },
            || {},
        )
        .unwrap();
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_first_failure_stops_the_rest_and_is_returned() {
        let started = AtomicUsize::new(0);
        let stops = AtomicUsize::new(0);
        let err = run_ordered(
            1,
            &[1, 2, 3, 4],
            |_, n| {
                started.fetch_add(1, Ordering::SeqCst);
                if *n == 2 {
                    anyhow::bail!("item {n} failed")
                }
                Ok(())
            },
            || {
                stops.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "item 2 failed");
        assert_eq!(started.load(Ordering::SeqCst), 2, "nothing starts after a failure");
        assert_eq!(stops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn each_worker_keeps_its_own_state_across_items() {
        let made = AtomicUsize::new(0);
        let out = run_ordered_with(
            2,
            &[(); 8],
            || {
                made.fetch_add(1, Ordering::SeqCst);
                0usize
            },
            |seen, _, _| {
                *seen += 1;
                std::thread::sleep(Duration::from_millis(5));
                Ok(*seen)
            },
        )
        .unwrap();
        assert_eq!(made.load(Ordering::SeqCst), 2, "one per worker, not one per item");
        // 8 items on 2 workers: one of them ran at least 4, counting on its own state.
        assert!(out.iter().filter(|&&n| n == 1).count() <= 2, "{out:?}");
        assert!(out.iter().any(|&n| n >= 4), "{out:?}");
    }

    #[test]
    fn letting_running_items_finish_reports_the_earliest_failure() {
        // Item 0 fails after item 1 has: both were running, and item 0's error is returned.
        let started = AtomicUsize::new(0);
        let err = run_ordered_with::<_, (), _>(
            2,
            &[200u64, 0, 0, 0],
            || (),
            |(), index, ms| {
                started.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(*ms));
                anyhow::bail!("item {index} failed")
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "item 0 failed");
        assert_eq!(started.load(Ordering::SeqCst), 2, "nothing starts after a failure");
    }
}
