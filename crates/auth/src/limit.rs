//! Calls per principal: a person or system that calls faster than any person works (a runaway
//! script, a stolen token being used to harvest cases) is slowed down with RESOURCE_EXHAUSTED,
//! told how long to wait, while everyone else is served as before.

use crate::Principal;
use governor::clock::{Clock, DefaultClock};
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
}

impl CallLimit {
    /// `None` for 0: no limit.
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            per_minute,
        })
    }

    /// Counts a call of `p`; RESOURCE_EXHAUSTED with the time to wait (RetryInfo) when over.
    pub fn check(&self, p: &Principal) -> Result<(), Status> {
        let key = format!("{}@{}", p.subject, p.org);
        match self.limiter.check_key(&key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                // keep the map from growing with principals long gone
                if self.limiter.len() > 10_000 {
                    self.limiter.retain_recent();
                }
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
        let limit = CallLimit::per_minute(3).unwrap();
        for _ in 0..3 {
            limit.check(&who("a")).unwrap();
        }
        let err = limit.check(&who("a")).unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(
            err.message().contains("3 calls a minute"),
            "{}",
            err.message()
        );
        let wait = err
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .unwrap();
        assert!(
            wait > std::time::Duration::from_secs(5) && wait <= std::time::Duration::from_secs(20),
            "{wait:?}"
        );
        limit.check(&who("b")).unwrap();
        assert!(CallLimit::per_minute(0).is_none());
    }
}
