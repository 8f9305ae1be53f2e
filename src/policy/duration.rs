//! Go-style durations (`720h0m0s`, `24h`, `90m`), as Velero and our policy write them.

use thiserror::Error;

/// A duration string that is not in Go's `time.ParseDuration` format.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid duration {0:?}: expected Go duration syntax such as 24h, 90m or 720h0m0s")]
pub struct DurationError(pub String);

/// Parses a Go duration into whole seconds (sub-second parts are truncated).
pub fn parse_go_duration(text: &str) -> Result<i64, DurationError> {
    let err = || DurationError(text.to_owned());
    let s = text.trim();
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut nanos: i128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit: i128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        nanos += (value * unit as f64) as i128;
    }
    let secs = i64::try_from(nanos / 1_000_000_000).map_err(|_| err())?;
    Ok(if negative { -secs } else { secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velero_ttl_forms_parse() {
        assert_eq!(parse_go_duration("720h0m0s"), Ok(720 * 3600));
        assert_eq!(parse_go_duration("24h"), Ok(86_400));
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("90s"), Ok(90));
        assert_eq!(parse_go_duration("-1h"), Ok(-3600));
    }

    #[test]
    fn malformed_durations_are_errors() {
        for bad in ["", "h", "24", "1d", "1h-", "abc", "1.2.3h", "5 m"] {
            assert!(parse_go_duration(bad).is_err(), "{bad} should not parse");
        }
    }
}
