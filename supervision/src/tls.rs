//! Optional mutual TLS between nodes.
//!
//! The cookie keeps strangers out of the cluster but travels, like every
//! frame, in clear; across hosts that is not enough. With TLS on, each node
//! holds a certificate and key signed by the cluster's CA: its listener
//! accepts only TLS sessions whose client presents a certificate chaining to
//! that CA, and it dials seeds presenting its own certificate and checking
//! theirs against the same CA, under the seed's host as server name (so a
//! node's certificate must name the host peers dial it at, IP addresses
//! included). A node without such a certificate cannot even start the
//! cookie handshake.
//!
//! Everything runs on aws-lc-rs, the provider ractor_cluster and sqlx are
//! built with: [`install_crypto_provider`] makes it the process default
//! before any config is built, and the configs here name it explicitly, so
//! no code path depends on which crate asked rustls first.

use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The three PEM files of a node, as named in `cluster.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate chain (leaf first).
    pub cert: PathBuf,
    /// The private key of that certificate.
    pub key: PathBuf,
    /// The CA certificate(s) every peer's certificate must chain to.
    pub ca: PathBuf,
}

/// Which of the three files an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsFile {
    Cert,
    Key,
    Ca,
}

impl TlsFile {
    /// The `cluster.toml` key naming this file, so errors point at the line to fix.
    pub fn key(self) -> &'static str {
        match self {
            TlsFile::Cert => "cluster.tls_cert",
            TlsFile::Key => "cluster.tls_key",
            TlsFile::Ca => "cluster.tls_ca",
        }
    }
}

/// A TLS file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}: {problem}", .file.key(), .path.display())]
pub struct TlsError {
    pub file: TlsFile,
    pub path: PathBuf,
    pub problem: String,
}

/// Makes aws-lc-rs rustls' process-wide default provider. Idempotent: a
/// second call (or another crate having installed it first) is fine.
pub fn install_crypto_provider() {
    // Err only means a default is already installed; with aws-lc-rs the
    // only provider compiled in, that is this same one.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The server and client sides of a node's TLS, built once from its files.
#[derive(Clone)]
pub struct ClusterTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls").finish_non_exhaustive()
    }
}

impl ClusterTls {
    /// Reads and checks the three files and builds both sides: the listener
    /// requires a client certificate signed by the CA, the dialer presents
    /// this node's certificate and trusts only the CA.
    pub fn load(files: &TlsFiles) -> Result<ClusterTls, TlsError> {
        install_crypto_provider();
        let err = |file: TlsFile, path: &Path, problem: String| TlsError {
            file,
            path: path.to_path_buf(),
            problem,
        };
        let chain = certificates(TlsFile::Cert, &files.cert)?;
        let key_pem = read(TlsFile::Key, &files.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
            err(
                TlsFile::Key,
                &files.key,
                format!("no usable private key in it (expected a PEM PRIVATE KEY block): {e}"),
            )
        })?;
        let mut roots = RootCertStore::empty();
        for ca in certificates(TlsFile::Ca, &files.ca)? {
            roots.add(ca).map_err(|e| {
                err(
                    TlsFile::Ca,
                    &files.ca,
                    format!("not a usable CA certificate: {e}"),
                )
            })?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| err(TlsFile::Ca, &files.ca, format!("unusable as a CA: {e}")))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| err(TlsFile::Cert, &files.cert, e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| key_problem(&files.key, e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err(TlsFile::Cert, &files.cert, e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| key_problem(&files.key, e))?;
        Ok(ClusterTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// What the node server accepts connections with.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// What seeds are dialed with.
    pub fn connector(&self) -> TlsConnector {
        self.connector.clone()
    }
}

/// The server name to check a seed's certificate against: its host
/// (`host:port`, `[v6]:port`), an IP address or a DNS name.
pub fn seed_server_name(seed: &str) -> Option<ServerName<'static>> {
    let host = seed.rsplit_once(':').map(|(h, _)| h).unwrap_or(seed);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).ok()
}

fn key_problem(path: &Path, e: rustls::Error) -> TlsError {
    TlsError {
        file: TlsFile::Key,
        path: path.to_path_buf(),
        problem: format!("unusable with the certificate in cluster.tls_cert: {e}"),
    }
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError {
        file,
        path: path.to_path_buf(),
        problem: format!("cannot read it: {e}"),
    })
}

/// Every certificate in a PEM file; at least one.
fn certificates(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |problem: String| TlsError {
        file,
        path: path.to_path_buf(),
        problem,
    };
    let pem = read(file, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            "no certificate in it (expected a PEM CERTIFICATE block)".into(),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_hosts_become_server_names() {
        assert!(matches!(
            seed_server_name("127.0.0.1:7000"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            seed_server_name("[::1]:7000"),
            Some(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            seed_server_name("node-a.internal:7000"),
            Some(ServerName::DnsName(_))
        ));
        assert!(seed_server_name("bad name:7000").is_none());
    }

    #[test]
    fn bad_files_name_the_key_and_the_problem() {
        let dir = std::env::temp_dir().join(format!("wani-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let files = TlsFiles {
            cert: dir.join("missing.pem"),
            key: empty.clone(),
            ca: empty.clone(),
        };
        let e = ClusterTls::load(&files).unwrap_err().to_string();
        assert!(
            e.starts_with("cluster.tls_cert:") && e.contains("cannot read"),
            "{e}"
        );
        let files = TlsFiles {
            cert: empty.clone(),
            ..files
        };
        let e = ClusterTls::load(&files).unwrap_err().to_string();
        assert!(
            e.starts_with("cluster.tls_cert:") && e.contains("no certificate"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
