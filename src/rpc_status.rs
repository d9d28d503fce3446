//! The few `google.rpc` messages OTLP uses on errors: `Status` (gRPC status
//! details and OTLP/HTTP error bodies) and `RetryInfo` (how long to back off
//! after RESOURCE_EXHAUSTED / UNAVAILABLE). Field numbers are the public
//! googleapis definitions.

use prost::Message as _;
use std::time::Duration;

pub const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// Encoded `google.rpc.Status` carrying a `RetryInfo` with `delay`.
pub fn status_with_retry(code: i32, message: &str, delay: Option<Duration>) -> Vec<u8> {
    let details = delay
        .map(|d| Any {
            type_url: RETRY_INFO_TYPE.into(),
            value: RetryInfo {
                retry_delay: Some(ProtoDuration {
                    seconds: d.as_secs() as i64,
                    nanos: d.subsec_nanos() as i32,
                }),
            }
            .encode_to_vec(),
        })
        .into_iter()
        .collect();
    RpcStatus {
        code,
        message: message.into(),
        details,
    }
    .encode_to_vec()
}

/// The retry delay in encoded `google.rpc.Status` details, if any (bounded to a day).
pub fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    let info = status
        .details
        .iter()
        .find(|a| a.type_url.ends_with("google.rpc.RetryInfo"))?;
    let d = RetryInfo::decode(info.value.as_slice()).ok()?.retry_delay?;
    let secs = u64::try_from(d.seconds).ok()?.min(86_400);
    let nanos = u32::try_from(d.nanos).ok()?.min(999_999_999);
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips_and_garbage_yields_none() {
        let b = status_with_retry(8, "slow down", Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay(&b), Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay(&status_with_retry(14, "x", None)), None);
        assert_eq!(retry_delay(b"\xff\xff\xff"), None);
        assert_eq!(retry_delay(&[]), None);
    }
}
