//! Calls per principal: a person or system that calls faster than any person works (a runaway
//! script, a stolen token being used to harvest cases) is slowed down with RESOURCE_EXHAUSTED,
//! told how long to wait, while everyone else is served as before.

use crate::Principal;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt};

/// At most `per_minute` calls a minute for each principal (subject and organ), in bursts of as
/// many, replenished evenly.
#[derive(Debug)]
pub struct CallLimit {
    limiter: DefaultKeyedRateLimiter<String>,
    per_minute: NonZeroU32,
    /// calls counted since the map of principals was last pruned
    counted: std::sync::atomic::AtomicU64,
}

/// Principals not seen for a while are dropped from the map every so many calls.
const PRUNE_EVERY: u64 = 10_000;

impl CallLimit {
    /// `None` for 0: no limit. Bursts of a tenth of the minute's calls (at least one): a
    /// stolen token cannot take a minute's worth of cases at once.
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        let burst = NonZeroU32::new((per_minute.get() / 10).max(1)).expect("at least one");
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(
                Quota::per_minute(per_minute).allow_burst(burst),
            ),
            per_minute,
            counted: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Counts a call of `p`; RESOURCE_EXHAUSTED with the time to wait (RetryInfo) when over.
    pub fn check(&self, p: &Principal) -> Result<(), Status> {
        let key = format!("{}@{}", p.subject, p.org);
        if self
            .counted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY)
        {
            // keep the map from growing with principals long gone
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        match self.limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                Err(Status::with_error_details(
                    tonic::Code::ResourceExhausted,
                    format!(
                        "rate limit: {} may make {} calls a minute; retry in {} ms",
                        p.subject.chars().take(60).collect::<String>(),
                        self.per_minute,
                        wait.as_millis().max(1)
                    ),
                    ErrorDetails::with_retry_info(Some(wait)),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    fn who(subject: &str) -> Principal {
        Principal {
            subject: subject.into(),
            org: "pingcheng.bureau".into(),
            role: Role::Clerk,
            scopes: vec![],
        }
    }

    #[test]
    fn a_principal_over_its_limit_is_told_to_wait_and_others_are_not() {
        // 30 a minute: bursts of 3, one more every 2 s
        let limit = CallLimit::per_minute(30).unwrap();
        for _ in 0..3 {
            limit.check(&who("a")).unwrap();
        }
        let err = limit.check(&who("a")).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(
            err.message().contains("30 calls a minute"),
            "{}",
            err.message()
        );
        let wait = err
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .unwrap();
        assert!(
            wait > std::time::Duration::from_secs(1) && wait <= std::time::Duration::from_secs(2),
            "{wait:?}"
        );
        limit.check(&who("b")).unwrap();
        assert!(CallLimit::per_minute(0).is_none());
    }
}
