use std::io;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::fmt::format::JsonFields;

use super::JsonLines;

/// Captured output of one subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).expect("UTF-8");
        text.lines().map(str::to_owned).collect()
    }
}

/// The events the guard's lines are made of, and the awkward values a field can hold.
fn events() {
    tracing::info!(
        uid = "3b2d7ede",
        operation = "DELETE",
        dry_run = false,
        "guarded request"
    );
    tracing::warn!(error = %"line one\nline \"two\"\t\\ \u{1} é ✓", count = 3u64, delta = -4i64, "odd \"text\"");
    tracing::info!(ratio = 0.25f64, nan = f64::NAN, value = ?Some("debug"), "numbers");
    let outer = tracing::info_span!("admission", uid = "u-1", operation = "CREATE");
    let _outer = outer.enter();
    tracing::info!("inside one span");
    let inner = tracing::info_span!("cleanup", backup = "daily-1", empty = "");
    inner.in_scope(|| tracing::error!(key = "backups/daily-1/x", "inside two spans"));
    let bare = tracing::info_span!("bare");
    bare.in_scope(|| tracing::info!(target: "custom::target", "a span without fields"));
}

fn ours() -> Captured {
    let out = Captured::default();
    let w = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .fmt_fields(JsonFields::new())
        .event_format(JsonLines)
        .with_writer(move || w.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, events);
    out
}

fn theirs() -> Captured {
    let out = Captured::default();
    let w = out.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_writer(move || w.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, events);
    out
}

#[test]
fn lines_are_tracing_subscribers_json_lines() {
    let (ours, theirs) = (ours().lines(), theirs().lines());
    assert_eq!(ours.len(), 6, "{ours:#?}");
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        let mut a: Value = serde_json::from_str(a).unwrap_or_else(|e| panic!("{e}: {a}"));
        let mut b: Value = serde_json::from_str(b).expect("tracing-subscriber's line is JSON");
        let (ta, tb) = (a["timestamp"].take(), b["timestamp"].take());
        assert_eq!(a, b);
        // Same format, taken a moment apart: e.g. 2026-11-24T02:32:10.798675Z.
        let (ta, tb) = (
            ta.as_str().expect("a string"),
            tb.as_str().expect("a string"),
        );
        assert_eq!(ta.len(), tb.len(), "{ta} / {tb}");
        assert_eq!(ta[..13], tb[..13], "{ta} / {tb}");
        assert!(ta.ends_with('Z'), "{ta}");
    }
}

#[test]
fn keys_come_in_the_order_collectors_see_from_tracing_subscriber() {
    let line = &ours().lines()[3];
    let at = |key: &str| line.find(&format!("\"{key}\":")).expect(key);
    assert!(line.starts_with("{\"timestamp\":\""), "{line}");
    assert!(at("timestamp") < at("level"), "{line}");
    assert!(at("level") < at("fields"), "{line}");
    assert!(at("fields") < at("target"), "{line}");
    assert!(at("target") < at("span"), "{line}");
    assert!(at("span") < at("spans"), "{line}");
}

#[test]
fn timestamps_are_utc_with_microseconds() {
    // Instants worked out independently (Python's datetime), incl. leap days and the last second
    // jiff can hold.
    for (second, micros, text) in [
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (951_782_400, 1, "2000-02-29T00:00:00.000001Z"),
        (1_709_251_199, 500_000, "2024-02-29T23:59:59.500000Z"),
        (1_795_467_600, 798_675, "2026-11-23T21:00:00.798675Z"),
        (253_402_207_200, 999_999, "9999-12-30T22:00:00.999999Z"),
    ] {
        let at = jiff::Timestamp::new(second, micros * 1000).expect("in range");
        let ours = super::rfc3339_micros(at);
        assert_eq!(std::str::from_utf8(&ours), Ok(text), "{second}.{micros:06}");
    }
}
