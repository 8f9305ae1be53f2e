//! `request-delete`, `approve`, `hold`, `release` and `status`: the user's words, set exactly as
//! `kubectl annotate`/`kubectl label` would (the mutating webhook stamps them), and a table of
//! what the guard makes of every backup.

use std::path::PathBuf;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{json, Value};

use super::serve::client;
use crate::controller::kinds::{view, Kind};
use crate::controller::status::{row, table, Row};
use crate::policy::stamps::{
    DELETE_APPROVAL, DELETE_REQUEST, HOLD, REQUESTED_AT, REQUESTED_BY, SIGNATURE,
};
use crate::policy::Policy;
use crate::server::policy_source::POLICY_KEY;
use crate::server::state::now;

/// Which backup, where.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The Backup's name.
    pub name: String,
    /// Namespace of the Backup.
    #[arg(short = 'n', long, default_value = "velero")]
    pub namespace: String,
    /// Kubeconfig file (default: in-cluster, then $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// Arguments of `request-delete`.
#[derive(Debug, clap::Args)]
pub struct RequestDeleteArgs {
    #[command(flatten)]
    pub target: Target,
    /// Why the backup should go (recorded on it and in the cleanup's Event).
    #[arg(long)]
    pub reason: String,
}

/// Arguments of `approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub target: Target,
    /// Approval note.
    #[arg(long, default_value = "approved")]
    pub note: String,
}

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Namespace to list.
    #[arg(short = 'n', long, default_value = "velero")]
    pub namespace: String,
    /// List backups in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Kubeconfig file (default: in-cluster, then $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Signing key file; without it stamps are shown but not verified (marked `*`).
    #[arg(long)]
    pub signing_key: Option<PathBuf>,
    /// Policy file (default: read --policy-configmap).
    #[arg(long, conflicts_with = "policy_configmap")]
    pub policy_file: Option<PathBuf>,
    /// Policy ConfigMap as NAMESPACE/NAME.
    #[arg(long, default_value = "backup-guard/backup-guard-policy")]
    pub policy_configmap: String,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Merge-patches the Backup's metadata and prints what the guard stamped.
fn patch(target: &Target, metadata: Value, done: &str) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let client = client(target.kubeconfig.as_ref()).await?;
        let api = Kind::Backup.api(&client, Some(&target.namespace));
        // The webhook stamps a request or approval when its value changes: writing the same
        // value again renews nothing, so say so rather than print the old stamps as new.
        let word = metadata["annotations"].as_object().and_then(|a| {
            [DELETE_REQUEST, DELETE_APPROVAL]
                .into_iter()
                .find_map(|k| a.get(k).and_then(Value::as_str).map(|v| (k, v)))
        });
        if let Some((key, value)) = word {
            let current = api
                .get_opt(&target.name)
                .await
                .map_err(|e| anyhow::anyhow!(crate::controller::error::api_message(&e)))
                .with_context(|| format!("backup {}/{}", target.namespace, target.name))?;
            let current = current.map(|b| view(&b));
            if current.as_ref().and_then(|b| b.annotation(key)) == Some(value) {
                println!(
                    "backup {}/{}: unchanged, {key} is already {value:?}; a stale or unverified \
                     one is renewed only by a different value (another --reason or --note)",
                    target.namespace, target.name
                );
                return Ok(());
            }
        }
        let patched: DynamicObject = api
            .patch(
                &target.name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": metadata })),
            )
            .await
            .map_err(|e| anyhow::anyhow!(crate::controller::error::api_message(&e)))
            .with_context(|| format!("backup {}/{}", target.namespace, target.name))?;
        let b = view(&patched);
        println!("backup {}/{}: {done}", target.namespace, target.name);
        for key in [REQUESTED_BY, REQUESTED_AT, DELETE_APPROVAL] {
            if let Some(v) = b.annotation(key) {
                println!("  {key}: {v}");
            }
        }
        if b.annotation(DELETE_REQUEST).is_some() && b.annotation(SIGNATURE).is_none() {
            println!(
                "  not stamped: is the backup-guard mutating webhook registered? An unstamped \
                 request sanctions nothing"
            );
        }
        Ok(())
    })
}

/// `request-delete NAME --reason TEXT`.
pub fn request_delete(args: &RequestDeleteArgs) -> anyhow::Result<()> {
    if args.reason.trim().is_empty() {
        anyhow::bail!("--reason must say why the backup should go");
    }
    let meta = json!({ "annotations": { DELETE_REQUEST: args.reason } });
    patch(&args.target, meta, "delete requested")
}

/// `approve NAME [--note TEXT]`.
pub fn approve(args: &ApproveArgs) -> anyhow::Result<()> {
    if args.note.trim().is_empty() {
        anyhow::bail!("--note must not be empty");
    }
    let meta = json!({ "annotations": { DELETE_APPROVAL: args.note } });
    patch(&args.target, meta, "deletion approved")
}

/// `hold NAME`.
pub fn hold(target: &Target) -> anyhow::Result<()> {
    patch(
        target,
        json!({ "labels": { HOLD: "true" } }),
        "on legal hold",
    )
}

/// `release NAME`.
pub fn release(target: &Target) -> anyhow::Result<()> {
    patch(target, json!({ "labels": { HOLD: null } }), "hold released")
}

async fn load_policy(client: &kube::Client, args: &StatusArgs) -> anyhow::Result<Policy> {
    if let Some(path) = &args.policy_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read policy file {}", path.display()))?;
        return Policy::parse(&text).with_context(|| format!("policy file {}", path.display()));
    }
    let (ns, name) = args
        .policy_configmap
        .split_once('/')
        .context("--policy-configmap must be NAMESPACE/NAME")?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let text = match cms.get_opt(name).await {
        Ok(cm) => cm
            .and_then(|c| c.data)
            .and_then(|d| d.get(POLICY_KEY).cloned())
            .unwrap_or_default(),
        Err(e) => {
            eprintln!("warning: cannot read the policy ConfigMap {ns}/{name} ({e}); using the default policy");
            String::new()
        }
    };
    Policy::parse(&text).with_context(|| format!("policy in ConfigMap {ns}/{name}"))
}

/// `status [-n NS | -A]`.
pub fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let key = match &args.signing_key {
        Some(path) => Some(super::serve::signing_key(path)?),
        None => None,
    };
    runtime()?.block_on(async {
        let client = client(args.kubeconfig.as_ref()).await?;
        let policy = load_policy(&client, args).await?;
        let ns = (!args.all_namespaces).then_some(args.namespace.as_str());
        let backups = Kind::Backup
            .api(&client, ns)
            .list(&ListParams::default())
            .await
            .map_err(|e| anyhow::anyhow!(crate::controller::error::api_message(&e)))
            .context("listing Backups")?;
        let now = now();
        let rows: Vec<Row> = backups
            .items
            .iter()
            .map(|b| row(&view(b), &policy, key.as_deref(), now))
            .collect();
        print!("{}", table(&rows, args.all_namespaces));
        if key.is_none() && rows.iter().any(|r| r.requested_by.ends_with('*')) {
            println!("* stamps not verified: pass --signing-key to check their signatures");
        }
        Ok(())
    })
}
