//! `backup-guard certs`: a CA and a serving certificate for the given DNS names and IPs.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use thiserror::Error;

/// Why certificates could not be made or written.
#[derive(Debug, Error)]
pub enum CertsError {
    #[error(
        "give at least one --host (a DNS name such as backup-guard.backup-guard.svc, or an IP)"
    )]
    NoHosts,
    #[error("invalid host {0:?}: {1}")]
    Host(String, String),
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// PEM texts of a fresh CA and a serving pair it signed.
pub struct Generated {
    pub ca_crt: String,
    pub tls_crt: String,
    pub tls_key: String,
}

/// Makes a CA and a serving certificate valid for `days`, with every host as a subjectAltName.
pub fn generate(hosts: &[String], days: u32) -> Result<Generated, CertsError> {
    if hosts.is_empty() {
        return Err(CertsError::NoHosts);
    }
    let now = time_now();
    let until = now + time::Duration::days(i64::from(days));
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "backup-guard CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (ca.not_before, ca.not_after) = (now, until);
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name
        .push(DnType::CommonName, hosts[0].as_str());
    for host in hosts {
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.clone()
                    .try_into()
                    .map_err(|e: rcgen::Error| CertsError::Host(host.clone(), e.to_string()))?,
            ),
        };
        leaf.subject_alt_names.push(san);
    }
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    (leaf.not_before, leaf.not_after) = (now, until);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Generated {
        ca_crt: ca_cert.pem(),
        tls_crt: leaf_cert.pem(),
        tls_key: leaf_key.serialize_pem(),
    })
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Writes `ca.crt`, `tls.crt` and `tls.key` into `out` (created if needed; the key is 0600).
pub fn write(out: &Path, generated: &Generated) -> Result<(), CertsError> {
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| CertsError::Write { path, source }
    };
    std::fs::create_dir_all(out).map_err(err(out))?;
    for (name, text) in [
        ("ca.crt", &generated.ca_crt),
        ("tls.crt", &generated.tls_crt),
        ("tls.key", &generated.tls_key),
    ] {
        let path = out.join(name);
        // Write beside and rename, so a watcher never sees half a file.
        let tmp = out.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).map_err(err(&tmp))?;
        if name == "tls.key" {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .map_err(err(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(err(&path))?;
    }
    Ok(())
}
