//! Reads the retry hint a gRPC receiver attaches to a refusal: a
//! `google.rpc.RetryInfo` inside the `google.rpc.Status` details (how long to
//! back off after RESOURCE_EXHAUSTED / UNAVAILABLE).
//!
//! The message types come from `tonic-types` (`pb`), and the sink builds its
//! refusals with its `StatusExt::with_error_details`. Reading stays here rather
//! than `StatusExt::get_details_retry_info`, which would change two things:
//! it matches only the exact `type.googleapis.com/` type URL (we accept any
//! prefix, as the `Any` spec allows), and it turns a negative delay into zero
//! (an immediate retry) where we ignore the hint and keep our own backoff.

use prost::Message as _;
use std::time::Duration;
use tonic_types::pb;

/// The longest retry hint honoured; anything longer waits this long.
const MAX_HINT: Duration = Duration::from_secs(86_400);

/// The retry delay in encoded `google.rpc.Status` details, if any (bounded to a day).
pub fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = pb::Status::decode(details).ok()?;
    let info = status
        .details
        .iter()
        .find(|a| a.type_url.ends_with("google.rpc.RetryInfo"))?;
    let d = pb::RetryInfo::decode(info.value.as_slice())
        .ok()?
        .retry_delay?;
    let secs = u64::try_from(d.seconds).ok()?.min(MAX_HINT.as_secs());
    let nanos = u32::try_from(d.nanos).ok()?.min(999_999_999);
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};
    use tonic_types::{ErrorDetails, StatusExt as _};

    fn refusal(delay: Option<Duration>) -> Vec<u8> {
        let details = delay.map_or_else(ErrorDetails::new, |d| {
            ErrorDetails::with_retry_info(Some(d))
        });
        Status::with_error_details(Code::ResourceExhausted, "slow down", details)
            .details()
            .to_vec()
    }

    #[test]
    fn retry_info_round_trips_and_garbage_yields_none() {
        let b = refusal(Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay(&b), Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay(&refusal(None)), None);
        assert_eq!(retry_delay(b"\xff\xff\xff"), None);
        assert_eq!(retry_delay(&[]), None);
    }

    /// An encoded `Status` with one `RetryInfo` of `seconds`, under `type_url`.
    fn hand_built(type_url: &str, seconds: i64) -> Vec<u8> {
        let mut info = pb::RetryInfo {
            retry_delay: Some(Default::default()),
        };
        if let Some(d) = info.retry_delay.as_mut() {
            d.seconds = seconds;
        }
        let mut status = pb::Status::default();
        status.details.push(Default::default());
        status.details[0].type_url = type_url.into();
        status.details[0].value = info.encode_to_vec();
        status.encode_to_vec()
    }

    #[test]
    fn long_hints_are_bounded_negative_ones_ignored_any_prefix_accepted() {
        let b = refusal(Some(Duration::from_secs(10 * 86_400)));
        assert_eq!(retry_delay(&b), Some(MAX_HINT));
        let t = "type.googleapis.com/google.rpc.RetryInfo";
        assert_eq!(retry_delay(&hand_built(t, 3)), Some(Duration::from_secs(3)));
        assert_eq!(retry_delay(&hand_built(t, -3)), None);
        let other = "example.org/google.rpc.RetryInfo";
        assert_eq!(
            retry_delay(&hand_built(other, 3)),
            Some(Duration::from_secs(3))
        );
    }
}
