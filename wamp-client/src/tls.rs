//! Client-side TLS for `wss://` and `rss://` targets (rustls, ring provider).
//!
//! Trust comes from `--ca FILE` (PEM certificates), else from the system
//! bundle (`/etc/ssl/certs/ca-certificates.crt` and friends). `--insecure`
//! accepts ANY server certificate: it exists only to benchmark routers with
//! self-signed certificates and must never be used where the connection has
//! to be trusted — it makes man-in-the-middle attacks trivial. Handshake
//! signatures are still checked, so the cost measured is that of a real
//! TLS handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// System CA bundles tried when no `--ca` is given.
const SYSTEM_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// Why the TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A CA file could not be read or parsed.
    #[error("CA file {path}: {msg}")]
    Ca {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// No CA given and no system bundle found.
    #[error("no trusted CAs: pass --ca FILE (or --insecure for self-signed benchmark routers)")]
    NoRoots,
    /// rustls refused the configuration.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_ca(roots: &mut RootCertStore, path: &Path) -> Result<usize, TlsError> {
    let err = |msg: String| TlsError::Ca { path: path.display().to_string(), msg };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    Ok(added)
}

/// Builds the client configuration: `ca` trusted (else the system bundle),
/// or no verification at all with `insecure` (benchmarks only!).
pub fn client_config(ca: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let cfg = if insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider()))).with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        let added = match ca {
            Some(p) => {
                let n = load_ca(&mut roots, p)?;
                if n == 0 {
                    return Err(TlsError::Ca { path: p.display().to_string(), msg: "no certificates".into() });
                }
                n
            }
            None => SYSTEM_BUNDLES
                .iter()
                .map(Path::new)
                .filter(|p| p.exists())
                .find_map(|p| load_ca(&mut roots, p).ok().filter(|&n| n > 0))
                .unwrap_or(0),
        };
        if added == 0 {
            return Err(TlsError::NoRoots);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(cfg))
}

/// The server name to verify (a DNS name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, rustls::pki_types::InvalidDnsNameError> {
    ServerName::try_from(host.to_owned())
}

/// `--insecure`: accepts every certificate (signatures of the handshake are
/// still verified with the certificate's key).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_build_and_bad_ca_is_an_error() {
        assert!(client_config(None, true).is_ok());
        let dir = std::env::temp_dir().join(format!("loadtest-h18-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("empty.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        assert!(matches!(client_config(Some(&f), false), Err(TlsError::Ca { .. })));
        assert!(matches!(client_config(Some(&dir.join("missing.pem")), false), Err(TlsError::Ca { .. })));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("example.org").is_ok());
        assert!(server_name("bad name!").is_err());
    }
}
