//! Commands that need no cluster: `review` and `policy check`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context as _};
use jiff::Timestamp;

use super::ReviewArgs;
use crate::index::Index;
use crate::policy::{Context, Policy};
use crate::webhook::review::{answer, Webhook};

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("cannot read standard input")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    String::from_utf8(read(path)?).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// Loads and validates a policy file.
pub fn load_policy(path: &Path) -> anyhow::Result<Policy> {
    let text = read_text(path)?;
    Policy::parse(&text).with_context(|| format!("invalid policy {}", path.display()))
}

/// `backup-guard policy check FILE`.
pub fn policy_check(file: &Path) -> anyhow::Result<()> {
    let policy = load_policy(file)?;
    println!(
        "{}: valid (mode {}, {} rule(s), approval {})",
        file.display(),
        policy.mode,
        policy.rules.len(),
        if policy.approval.required {
            "required"
        } else {
            "not required"
        }
    );
    Ok(())
}

/// `backup-guard review`.
pub fn review(args: &ReviewArgs) -> anyhow::Result<()> {
    let policy = match &args.policy {
        Some(p) => load_policy(p)?,
        None => Policy::default(),
    };
    let key = match &args.signing_key {
        Some(p) => read(p)?,
        None => Vec::new(),
    };
    let now = match &args.now {
        Some(t) => t
            .parse::<Timestamp>()
            .with_context(|| format!("--now {t:?} is not an RFC 3339 time"))?,
        None => Timestamp::now(),
    };
    let mut index = Index::new();
    for file in &args.objects {
        index
            .load_text(&read_text(file)?, &key)
            .with_context(|| format!("cannot read objects from {}", file.display()))?;
    }
    let body = read(&args.file)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        bail!("no AdmissionReview given: pass a file, or JSON on standard input");
    }
    let ctx = Context {
        policy: &policy,
        index: &index,
        now: now.as_second(),
        key: &key,
    };
    let webhook = if args.mutate {
        Webhook::Mutate
    } else {
        Webhook::Validate
    };
    let answered = answer(&body, webhook, &ctx)
        .with_context(|| format!("cannot evaluate {}", args.file.display()))?;
    println!("{}", serde_json::to_string_pretty(&answered.review)?);
    Ok(())
}
