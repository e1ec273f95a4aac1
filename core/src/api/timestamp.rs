//! Writing the status types' timestamps as k8s-openapi writes a `metav1.Time` — `%Y-%m-%dT%H:%M:%SZ`, whole
//! seconds in UTC (`k8s-openapi` `src/v1_33/apimachinery/pkg/apis/meta/v1/time.rs`) — byte for byte, without
//! jiff's general-purpose `strtime` formatter: the simulator encodes every status write, and formatting the
//! plan's, the rollout's and the conditions' timestamps through `strtime` cost 1.8% of a 100-replica rollout.
//! Years outside 0000–9999 (never seen in practice) are handed to k8s-openapi's own serializer.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::Condition;

/// `time` as `%Y-%m-%dT%H:%M:%SZ` when its year has four digits, else `None`.
fn rfc3339_seconds(time: &Time) -> Option<[u8; 20]> {
    let timestamp = time.0;
    // Whole seconds, rounded toward the past as a civil time is (jiff's `as_second` rounds toward zero).
    let seconds = timestamp.as_second() - i64::from(timestamp.subsec_nanosecond() < 0);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut out = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, value: i64, width: usize| {
        let mut value = value;
        for index in (at..at + width).rev() {
            // A digit: `value` is non-negative and below 10^width.
            out[index] = b'0' + u8::try_from(value % 10).unwrap_or(0);
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, of_day / 3600, 2);
    put(14, of_day % 3600 / 60, 2);
    put(17, of_day % 60, 2);
    Some(out)
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (the civil-from-days algorithm
/// of Howard Hinnant's "chrono-compatible low-level date algorithms").
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Serializes a `Time` as k8s-openapi does (a newtype struct `Time` around the string).
pub fn time<S: Serializer>(time: &Time, serializer: S) -> Result<S::Ok, S::Error> {
    match rfc3339_seconds(time) {
        // Only ASCII digits and separators were written.
        Some(bytes) => serializer.serialize_newtype_struct("Time", std::str::from_utf8(&bytes).unwrap_or_default()),
        None => time.serialize(serializer),
    }
}

/// [`time`] for an optional field (serde calls it only for `Some` under `skip_serializing_if`).
pub fn optional_time<S: Serializer>(value: &Option<Time>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.serialize_some(&Fast(value)),
        None => serializer.serialize_none(),
    }
}

/// Conditions as k8s-openapi serializes `metav1.Condition` (the same fields, in its order), their
/// `lastTransitionTime` through [`time`].
pub fn conditions<S: Serializer>(conditions: &[Condition], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(conditions.len()))?;
    for condition in conditions {
        seq.serialize_element(&FastCondition(condition))?;
    }
    seq.end()
}

struct Fast<'a>(&'a Time);

impl Serialize for Fast<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        time(self.0, serializer)
    }
}

struct FastCondition<'a>(&'a Condition);

impl Serialize for FastCondition<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let condition = self.0;
        let mut state =
            serializer.serialize_struct("Condition", 5 + usize::from(condition.observed_generation.is_some()))?;
        state.serialize_field("lastTransitionTime", &Fast(&condition.last_transition_time))?;
        state.serialize_field("message", &condition.message)?;
        if let Some(generation) = &condition.observed_generation {
            state.serialize_field("observedGeneration", generation)?;
        }
        state.serialize_field("reason", &condition.reason)?;
        state.serialize_field("status", &condition.status)?;
        state.serialize_field("type", &condition.type_)?;
        state.end()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn fast(value: &Time) -> serde_json::Value {
        time(value, serde_json::value::Serializer).unwrap()
    }

    #[test]
    fn writes_what_k8s_openapi_writes() {
        let mut seconds: Vec<i64> = vec![
            0,
            -1,
            1,
            86_399,
            86_400,
            951_782_400,     // 2000-02-29
            951_868_799,     // 2000-02-29T23:59:59
            -2_203_891_200,  // 1900-03-01
            -62_167_219_200, // 0000-01-01
            -62_167_219_201, // -0001-12-31T23:59:59: k8s-openapi's own path
            253_402_300_799, // 9999-12-31T23:59:59
            Timestamp::MIN.as_second(),
            Timestamp::MAX.as_second(),
        ];
        // A fixed walk over the whole range (an LCG: no randomness, the same values every run).
        let mut state: u64 = 0x5eed;
        for _ in 0..20_000 {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let span = Timestamp::MAX.as_second() - Timestamp::MIN.as_second();
            let offset = i64::try_from(state >> 1).unwrap() % span;
            seconds.push(Timestamp::MIN.as_second() + offset);
        }
        for second in seconds {
            for nanos in [0, 1, 500_000_000, 999_999_999, -1, -500_000_000, -999_999_999] {
                let Ok(timestamp) = Timestamp::new(second, nanos) else { continue };
                let value = Time(timestamp);
                assert_eq!(fast(&value), serde_json::to_value(&value).unwrap(), "{timestamp:?}");
            }
        }
    }

    #[test]
    fn conditions_are_written_as_k8s_openapi_writes_them() {
        let at = Time(Timestamp::new(1_764_000_000, 250_000_000).unwrap());
        let written = vec![
            Condition {
                last_transition_time: at.clone(),
                message: "all nodes ready".into(),
                observed_generation: Some(4),
                reason: "Ready".into(),
                status: "True".into(),
                type_: "Ready".into(),
            },
            Condition {
                last_transition_time: at,
                message: String::new(),
                observed_generation: None,
                reason: "Progressing".into(),
                status: "False".into(),
                type_: "Stalled".into(),
            },
        ];
        let ours = conditions(&written, serde_json::value::Serializer).unwrap();
        assert_eq!(ours, serde_json::to_value(&written).unwrap());
        // And as JSON text, field order included (what production sends).
        let mut text = Vec::new();
        conditions(&written, &mut serde_json::Serializer::new(&mut text)).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), serde_json::to_string(&written).unwrap());
    }

    #[test]
    fn optional_times_are_written_as_k8s_openapi_writes_them() {
        let at = Some(Time(Timestamp::new(1_764_000_123, 0).unwrap()));
        assert_eq!(optional_time(&at, serde_json::value::Serializer).unwrap(), serde_json::to_value(&at).unwrap());
        assert_eq!(optional_time(&None, serde_json::value::Serializer).unwrap(), serde_json::Value::Null);
    }
}
