//! Optional TLS (rustls, with the `ring` provider) for every connection:
//! client connections and replication alike.
//!
//! A node with TLS has a certificate and key (`--tls-cert`, `--tls-key`)
//! and a CA (`--tls-ca`) that every other node's certificate chains to:
//! - as a server it accepts only TLS; a client may come without a
//!   certificate, but one that offers a certificate must chain to the CA,
//!   and the master's replication connection must offer one (mutual TLS
//!   between nodes, checked when its hello says it is the master);
//! - as the master dialling a secondary it verifies the secondary's
//!   certificate against the CA and the address it dials, and presents its
//!   own.
//!
//! A client (`replog --tls-ca`) verifies the node's certificate against the
//! CA, and may present one of its own (`--tls-cert`, `--tls-key`).
//! TLS encrypts; the cluster key and client tokens still authenticate, with
//! or without it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The crypto provider every config here uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a certificate, key or CA cannot be used, or a TLS configuration
/// not built: each names the flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("{flag}: cannot read {}: {reason}", path.display())]
    Unreadable {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What reading it said.
        reason: String,
    },
    /// The file is not PEM certificates.
    #[error("{flag}: {} is not a PEM certificate file: {reason}", path.display())]
    NotPem {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What parsing it said.
        reason: String,
    },
    /// The file holds no certificate.
    #[error("{flag}: {} holds no certificate", path.display())]
    NoCertificate {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// `--tls-key` holds no usable private key.
    #[error("--tls-key: cannot read a PEM private key from {}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        reason: String,
    },
    /// A certificate of `--tls-ca` cannot be a trust anchor.
    #[error("--tls-ca: a certificate in {} is not usable as a CA: {reason}", path.display())]
    NotCa {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The host of an address cannot be a certificate's server name.
    #[error("'{host}' cannot be checked against a certificate: {reason}")]
    ServerName {
        /// The host.
        host: String,
        /// What rustls said.
        reason: String,
    },
    /// rustls refused the configuration these flags make.
    #[error("{flags}{reason}")]
    Config {
        /// The flags to look at, with ": " (empty if none in particular).
        flags: &'static str,
        /// What rustls said.
        reason: String,
    },
}

/// A configuration error, blamed on `flags`.
fn config(flags: &'static str) -> impl Fn(rustls::Error) -> TlsError {
    move |e| TlsError::Config {
        flags,
        reason: e.to_string(),
    }
}

fn certs(path: &Path, flag: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Unreadable {
            flag,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::NotPem {
            flag,
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            flag,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(path, "--tls-ca")? {
        roots.add(cert).map_err(|e| TlsError::NotCa {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The server name to verify a node's certificate against: the host of the
/// address dialled (a DNS name or an IP address).
pub fn server_name(addr: &str) -> Result<ServerName<'static>, TlsError> {
    let host = crate::addr::host_of(addr);
    ServerName::try_from(host.to_string()).map_err(|e| TlsError::ServerName {
        host: host.to_string(),
        reason: e.to_string(),
    })
}

/// A node's TLS: how it accepts, and how it dials the other nodes.
#[derive(Clone)]
pub struct NodeTls {
    /// Accepts connections.
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// Dials secondaries, presenting this node's certificate.
    pub connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeTls")
    }
}

impl NodeTls {
    /// Loads the node's certificate chain and key, and the CA.
    pub fn load(cert: &Path, key_path: &Path, ca: &Path) -> Result<Self, TlsError> {
        let chain = certs(cert, "--tls-cert")?;
        let key = key(key_path)?;
        let roots = Arc::new(roots(ca)?);
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Config {
                    flags: "--tls-ca: ",
                    reason: e.to_string(),
                })?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config(""))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config("--tls-cert/--tls-key: "))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config(""))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(config("--tls-cert/--tls-key: "))?;
        Ok(NodeTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
        })
    }
}

/// A client's TLS: the CA to verify nodes with, and optionally its own
/// certificate and key.
pub fn client_connector(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<tokio_rustls::TlsConnector, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config(""))?
        .with_root_certificates(roots(ca)?);
    let config = match identity {
        Some((cert, key_path)) => builder
            .with_client_auth_cert(certs(cert, "--tls-cert")?, key(key_path)?)
            .map_err(config("--tls-cert/--tls-key: "))?,
        None => builder.with_no_client_auth(),
    };
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
