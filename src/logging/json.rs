//! `--log-format json`: the same lines as tracing-subscriber's `json()` formatter (timestamp,
//! level, fields, target, the current span and the span list), written straight into the line.
//!
//! tracing-subscriber serializes through serde into a `fmt::Write` adapter that checks every
//! piece as UTF-8 again; that was one seventh of a guarded request's CPU (docs/performance.md).
//! Here every piece is already a `&str`: strings are escaped run by run and appended.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// One JSON object per event and line.
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The line is built in a String of our own and handed over in one write: every piece
        // goes through `Writer`'s `dyn fmt::Write` otherwise, seven calls per field.
        let mut line = String::with_capacity(512);
        let meta = event.metadata();
        line.push_str("{\"timestamp\":\"");
        let now = rfc3339_micros(jiff::Timestamp::now());
        line.push_str(std::str::from_utf8(&now).map_err(|_| fmt::Error)?);
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push_str("\",\"fields\":{");
        let mut fields = Fields {
            w: &mut line,
            first: true,
            log_target: None,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        // An event from the `log` crate carries its real target as a field.
        let target = fields.log_target.take();
        line.push_str("},\"target\":");
        string(&mut line, target.as_deref().unwrap_or(meta.target()))?;
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = current {
            line.push_str(",\"span\":");
            span_object(&mut line, &span)?;
            line.push_str(",\"spans\":[");
            for (i, s) in span.scope().from_root().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                span_object(&mut line, &s)?;
            }
            line.push(']');
        }
        line.push_str("}\n");
        w.write_str(&line)
    }
}

/// `2026-11-24T02:32:10.798675Z`: UTC, microseconds, as tracing-subscriber's `SystemTime` writes
/// it. Its `fmt` of seven padded numbers was a quarter of the line's cost; here jiff does the
/// calendar and the digits go straight into a fixed buffer.
fn rfc3339_micros(at: jiff::Timestamp) -> [u8; 27] {
    let t = jiff::tz::Offset::UTC.to_datetime(at);
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    let fields = [
        (0, 4, i64::from(t.year())),
        (5, 2, i64::from(t.month())),
        (8, 2, i64::from(t.day())),
        (11, 2, i64::from(t.hour())),
        (14, 2, i64::from(t.minute())),
        (17, 2, i64::from(t.second())),
        (20, 6, i64::from(t.subsec_nanosecond() / 1000)),
    ];
    for (at, width, value) in fields {
        let mut v = value.unsigned_abs();
        for d in b[at..at + width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    b
}

/// `{<the span's fields>,"name":"…"}`: its fields are kept as JSON text by [`JsonFields`].
fn span_object<S>(w: &mut String, span: &SpanRef<'_, S>) -> fmt::Result
where
    S: for<'a> LookupSpan<'a>,
{
    let ext = span.extensions();
    let fields = ext
        .get::<FormattedFields<JsonFields>>()
        .map(|f| f.fields.as_str())
        .unwrap_or("");
    let inner = fields
        .strip_prefix('{')
        .and_then(|f| f.strip_suffix('}'))
        .unwrap_or("");
    w.write_char('{')?;
    if !inner.is_empty() {
        w.write_str(inner)?;
        w.write_char(',')?;
    }
    w.write_str("\"name\":")?;
    string(w, span.name())?;
    w.write_char('}')
}

/// An event's fields as `"name":value` pairs.
struct Fields<'a> {
    w: &'a mut String,
    first: bool,
    log_target: Option<String>,
    result: fmt::Result,
}

impl Fields<'_> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.w.write_char(',')?;
        }
        string(self.w, field.name())?;
        self.w.write_char(':')
    }

    fn entry(&mut self, field: &Field, value: impl FnOnce(&mut String) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.w));
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.log_target = Some(value.to_owned());
        }
        self.entry(field, |w| string(w, value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entry(field, |w| {
            w.push_str(if value { "true" } else { "false" });
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entry(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // serde_json writes what JSON cannot hold as null.
        self.entry(field, |w| {
            if value.is_finite() {
                write!(w, "{value:?}")
            } else {
                w.write_str("null")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.entry(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// A JSON string.
fn string(w: &mut String, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Writes what it is given as the inside of a JSON string (RFC 8259 §7).
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Most strings need no escape: one pass that the compiler vectorises, one append.
        if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            return self.0.write_str(s);
        }
        let mut run = 0;
        for (i, b) in s.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1f => "",
                _ => continue,
            };
            // Escapes are ASCII: `i` is a char boundary.
            self.0.write_str(&s[run..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            run = i + 1;
        }
        self.0.write_str(&s[run..])
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
