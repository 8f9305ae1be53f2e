//! Logging for the serving commands: tracing's formatter, written to stderr through one buffer.
//!
//! Every guarded request logs a line, so the write must not cost a system call and a wake-up
//! per request. Lines are appended to a 64 KiB buffer under a lock (whole lines, never
//! interleaved), written out when it fills, and flushed by a thread of its own at least every
//! [`FLUSH_EVERY`] and when the command returns ([`LogGuard`]). A process killed outright loses at
//! most that much of its log; the metrics and Events of the same requests are not affected.

use std::io::{BufWriter, Stderr, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::fmt::writer::{MakeWriter, MutexGuardWriter};

mod json;
pub use json::JsonLines;

/// How logs are written.
#[derive(Debug, Clone, Copy, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
const BUFFER: usize = 64 * 1024;

/// Stderr behind one buffer, shared by every thread that logs.
#[derive(Clone)]
struct BufferedStderr(Arc<Mutex<BufWriter<Stderr>>>);

impl BufferedStderr {
    fn flush(&self) {
        let mut out = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Nothing better to do with a failing stderr than to go on serving.
        let _ = out.flush();
    }
}

impl<'a> MakeWriter<'a> for BufferedStderr {
    type Writer = MutexGuardWriter<'a, BufWriter<Stderr>>;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }
}

/// The buffer of the installed subscriber, for [`flush`].
static INSTALLED: OnceLock<BufferedStderr> = OnceLock::new();

/// Writes out every buffered line now: before `std::process::exit`, which runs no destructors.
pub fn flush() {
    if let Some(out) = INSTALLED.get() {
        out.flush();
    }
}

/// Flushes the log every [`FLUSH_EVERY`] while held, and once more when dropped.
pub struct LogGuard {
    stop: Option<mpsc::Sender<()>>,
    flusher: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
        flush();
    }
}

/// Sets up logging once for a serving command; hold the guard until the command returns.
pub fn init_tracing(format: LogFormat) -> LogGuard {
    let out = BufferedStderr(Arc::new(Mutex::new(BufWriter::with_capacity(
        BUFFER,
        std::io::stderr(),
    ))));
    let (stop, stopped) = mpsc::channel::<()>();
    let flusher = {
        let out = out.clone();
        std::thread::Builder::new()
            .name("backup-guard-log".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(FLUSH_EVERY) {
                    out.flush();
                }
            })
            .ok()
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(out.clone());
    match format {
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .init(),
        LogFormat::Text => builder.init(),
    }
    // `init` above panics if a subscriber is already set, so this is the first and only buffer.
    let _ = INSTALLED.set(out);
    LogGuard {
        stop: Some(stop),
        flusher,
    }
}
