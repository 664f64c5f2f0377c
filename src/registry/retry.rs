//! Retries for transient failures: exponential backoff with jitter, a fixed number of attempts,
//! so a registry that stays down fails the command within a bounded time (about 16 s of waiting
//! with the defaults, plus the connect timeouts). `Retry-After` (429, 503) is honoured up to the cap.

use super::RegistryError;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The first delay; each next one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 6, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(8) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (`attempt` counts from 0): half to all of
    /// `base * 2^attempt` ("equal jitter"), or the server's `Retry-After`, capped at `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max_delay);
        }
        let exp = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let half = exp / 2;
        let jitter = random_u64() % (half.as_millis() as u64 + 1);
        half + Duration::from_millis(jitter)
    }
}

/// A random number without a dependency: the std hasher's per-process random keys, fed the time.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

/// Runs `op` (given the attempt number) until it succeeds, fails permanently, or has failed
/// transiently `policy.attempts` times; then the last error is wrapped in [`RegistryError::GaveUp`].
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, registry: &str, what: &str, op: F) -> Result<T, RegistryError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    retry_resumable(policy, registry, what, &|| 0, op).await
}

/// [`retry`] for transfers that resume: `progress()` tells how far the transfer has got (bytes
/// the other side acknowledged); an attempt that moved it forward does not count against the
/// limit, so a long upload through a flaky link finishes while one that makes no progress still
/// gives up after `policy.attempts` tries in a row. `op` gets the number of the attempt
/// (0 first), counting every one.
pub async fn retry_resumable<T, F, Fut>(
    policy: &RetryPolicy,
    registry: &str,
    what: &str,
    progress: &(dyn Fn() -> u64 + Sync),
    mut op: F,
) -> Result<T, RegistryError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, RegistryError>>,
{
    let start = Instant::now();
    let (mut attempt, mut failures) = (0, 0);
    let mut reached = progress();
    loop {
        let result = op(attempt).await;
        attempt += 1;
        match result {
            Ok(v) => return Ok(v),
            Err(e)
                if e.is_transient() && {
                    let now = progress();
                    if now > reached {
                        (reached, failures) = (now, 0);
                    }
                    failures + 1 < policy.attempts
                } =>
            {
                let retry_after = match &e {
                    RegistryError::Transient { retry_after, .. } => *retry_after,
                    _ => None,
                };
                let wait = policy.delay(failures, retry_after);
                tracing::warn!("{e}; retrying in {:.1}s", wait.as_secs_f64());
                tokio::time::sleep(wait).await;
                failures += 1;
            }
            Err(e) if e.is_transient() => {
                return Err(RegistryError::GaveUp {
                    registry: registry.to_string(),
                    what: what.to_string(),
                    attempts: attempt,
                    secs: start.elapsed().as_secs_f64(),
                    last: Box::new(e),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transient() -> RegistryError {
        RegistryError::Transient { registry: "r".into(), what: "w".into(), detail: "503".into(), retry_after: None }
    }

    #[test]
    fn delays_grow_with_jitter_and_stay_capped() {
        let p = RetryPolicy::default();
        for attempt in 0..10 {
            let d = p.delay(attempt, None);
            let exp = (p.base_delay * 2u32.pow(attempt)).min(p.max_delay);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d:?} not in [{:?}, {exp:?}]", exp / 2);
        }
        assert_eq!(p.delay(0, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(p.delay(0, Some(Duration::from_secs(600))), p.max_delay);
    }

    #[tokio::test]
    async fn retries_transient_then_succeeds_and_gives_up_in_bounded_attempts() {
        let fast =
            RetryPolicy { attempts: 4, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        let calls = AtomicU32::new(0);
        let v = retry(&fast, "r", "w", |_| async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(transient()) } else { Ok(7) }
        })
        .await
        .unwrap();
        assert_eq!((v, calls.load(Ordering::SeqCst)), (7, 3));

        calls.store(0, Ordering::SeqCst);
        let err = retry(&fast, "reg:1", "pushing", |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(transient())
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(matches!(err, RegistryError::GaveUp { attempts: 4, .. }), "{err}");
        assert!(err.to_string().contains("reg:1"));
    }

    #[tokio::test]
    async fn progress_resets_the_count_but_no_progress_gives_up() {
        let fast =
            RetryPolicy { attempts: 3, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        let done = AtomicU32::new(0);
        // Every attempt fails but moves 1 unit forward, until 10: finishes after 10 failures.
        let v = retry_resumable(&fast, "r", "w", &|| done.load(Ordering::SeqCst) as u64, |_| async {
            if done.load(Ordering::SeqCst) < 10 {
                done.fetch_add(1, Ordering::SeqCst);
                Err(transient())
            } else {
                Ok("done")
            }
        })
        .await
        .unwrap();
        assert_eq!(v, "done");
        let calls = AtomicU32::new(0);
        let err = retry_resumable(&fast, "r", "w", &|| 5, |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(transient())
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(matches!(err, RegistryError::GaveUp { attempts: 3, .. }));
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let err = retry(&RetryPolicy::default(), "r", "w", |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(RegistryError::Unauthorized {
                registry: "r".into(),
                repository: "x".into(),
                detail: "401".into(),
            })
        })
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(err, RegistryError::Unauthorized { .. }));
    }
}
