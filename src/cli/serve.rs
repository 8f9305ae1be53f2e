//! `webhook` and `certs`: flags shared by the serving commands, and starting them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::logging::init_tracing;
use crate::server::{self, PolicySource, ServeConfig};
use crate::tls::certs;

pub use crate::logging::LogFormat;

/// Flags every serving command (`webhook`, `controller`, `run`) shares.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Kubeconfig file (default: in-cluster, then $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Policy file (polled for changes); overrides --policy-configmap.
    #[arg(long, conflicts_with = "policy_configmap")]
    pub policy_file: Option<PathBuf>,
    /// Policy ConfigMap as NAMESPACE/NAME (watched; key policy.yaml).
    #[arg(long, default_value = "backup-guard/backup-guard-policy")]
    pub policy_configmap: String,
    /// Directory holding tls.crt and tls.key (reloaded when they change).
    #[arg(long, default_value = "/etc/backup-guard/tls")]
    pub tls_dir: PathBuf,
    /// HTTPS address for /validate and /mutate.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Plain HTTP address for /metrics, /livez and /readyz.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub metrics_listen: SocketAddr,
    /// Signing key file (the file's bytes are the key, as the Secret mounts it).
    #[arg(long, default_value = "/etc/backup-guard/signing/key")]
    pub signing_key: PathBuf,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds to stay up, unready, after SIGTERM before draining.
    #[arg(long, default_value_t = 2)]
    pub shutdown_delay_seconds: u64,
}

/// Arguments of `certs`.
#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Output directory for ca.crt, tls.crt and tls.key.
    #[arg(long, default_value = "webhook-certs")]
    pub out: PathBuf,
    /// DNS name or IP the serving certificate is for (repeatable).
    #[arg(long = "host", required = true)]
    pub hosts: Vec<String>,
    /// Validity in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

/// A kube client: --kubeconfig, else in-cluster, else $KUBECONFIG / ~/.kube/config.
pub async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => match kube::Config::incluster() {
            Ok(c) => c,
            Err(_) => kube::Config::from_kubeconfig(&Default::default())
                .await
                .context(
                "not in a cluster and no usable kubeconfig: pass --kubeconfig or set KUBECONFIG",
            )?,
        },
    };
    Ok(kube::Client::try_from(config)?)
}

/// `--policy-configmap` as (namespace, name).
pub(crate) fn policy_configmap(args: &ServeArgs) -> anyhow::Result<(String, String)> {
    match args.policy_configmap.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok((ns.into(), name.into())),
        _ => bail!(
            "--policy-configmap must be NAMESPACE/NAME, got {:?}",
            args.policy_configmap
        ),
    }
}

/// Where the policy comes from: `--policy-file`, else `--policy-configmap`.
pub(crate) fn policy_source(args: &ServeArgs) -> anyhow::Result<PolicySource> {
    if let Some(path) = &args.policy_file {
        return Ok(PolicySource::File(path.clone()));
    }
    let (namespace, name) = policy_configmap(args)?;
    Ok(PolicySource::ConfigMap { namespace, name })
}

/// Reads the signing key; an empty or missing key is refused (no stamp could be trusted).
pub fn signing_key(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let key = std::fs::read(path).with_context(|| {
        format!(
            "cannot read the signing key {} (mount Secret backup-guard-signing-key, key `key`)",
            path.display()
        )
    })?;
    if key.len() < 16 {
        bail!(
            "signing key {} is shorter than 16 bytes; generate one with `head -c 32 /dev/urandom`",
            path.display()
        );
    }
    Ok(key)
}

/// `backup-guard webhook`.
pub fn webhook(args: &ServeArgs) -> anyhow::Result<()> {
    let _log = init_tracing(args.log_format);
    let cfg = ServeConfig {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        tls_dir: args.tls_dir.clone(),
        policy: policy_source(args)?,
        signing_key: signing_key(&args.signing_key)?,
        shutdown_delay: Duration::from_secs(args.shutdown_delay_seconds),
        drain_timeout: Duration::from_secs(20),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = client(args.kubeconfig.as_ref()).await?;
        server::serve(client, cfg).await
    })
}

/// `backup-guard certs`.
pub fn certs(args: &CertsArgs) -> anyhow::Result<()> {
    let generated = certs::generate(&args.hosts, args.days)?;
    certs::write(&args.out, &generated)?;
    println!(
        "wrote {0}/ca.crt, {0}/tls.crt and {0}/tls.key for {1}",
        args.out.display(),
        args.hosts.join(", ")
    );
    Ok(())
}
