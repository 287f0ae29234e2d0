//! TLS (rustls) for router transports.
//!
//! rustls's `ServerConnection` is itself sans-IO, so TLS slots into the
//! connection pipeline without extra tasks: the reader task feeds ciphertext
//! in and takes plaintext out for the framer; the writer task encrypts the
//! connection's coalesced plaintext buffer at flush time, so one executor
//! turn still ends in one write. On the home shard the state sits in an
//! `Rc<RefCell<_>>` shared by the two tasks (one thread, no lock).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use crate::RouterError;

/// Where a transport's certificate, key and (optional) client CAs live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub certificate: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Intermediate certificates sent after the leaf.
    pub chain_certificates: Vec<PathBuf>,
    /// PEM CA certificates for client certificates; non-empty = mutual TLS
    /// (client certificates are requested and verified).
    pub ca_certificates: Vec<PathBuf>,
    /// Refuse clients without a valid certificate (with `ca_certificates`).
    pub require_client_cert: bool,
}

/// A transport's TLS configuration, reloadable: new connections take the
/// current [`ServerConfig`]; [`TlsSource::reload`] re-reads the files
/// (certificate rotation without restart, on SIGHUP). Established
/// connections keep the config they started with.
pub struct TlsSource {
    files: TlsFiles,
    current: std::sync::RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for TlsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSource").field("files", &self.files).finish()
    }
}

impl TlsSource {
    /// Loads the files once.
    pub fn load(files: TlsFiles) -> Result<Arc<TlsSource>, RouterError> {
        let config = server_config(&files)?;
        Ok(Arc::new(TlsSource { files, current: std::sync::RwLock::new(config) }))
    }

    /// The config for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the files; on error the previous config stays in force.
    pub fn reload(&self) -> Result<(), RouterError> {
        let config = server_config(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }
}

/// A PEM parse error as an operator reads it (the library prints the
/// expected marker as a list of bytes).
fn pem_message(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => {
            format!("truncated or malformed PEM: no \"-----END {}-----\" line", String::from_utf8_lossy(end_marker))
        }
        E::IllegalSectionStart { line } => {
            format!("malformed PEM: bad section start line \"{}\"", String::from_utf8_lossy(line))
        }
        other => other.to_string(),
    }
}

/// Builds a rustls server config: TLS 1.2 and 1.3, rustls's safe default
/// cipher suites, ALPN `http/1.1` for WebSocket.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, RouterError> {
    let err = |what: &str, path: &Path, e: String| RouterError::Setup(format!("TLS {what} {}: {e}", path.display()));
    let mut certs: Vec<CertificateDer<'static>> = Vec::new();
    for path in std::iter::once(&files.certificate).chain(&files.chain_certificates) {
        for c in CertificateDer::pem_file_iter(path).map_err(|e| err("certificate", path, pem_message(&e)))? {
            certs.push(c.map_err(|e| err("certificate", path, pem_message(&e)))?);
        }
    }
    if certs.is_empty() {
        return Err(err("certificate", &files.certificate, "no certificate found in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| err("key", &files.key, pem_message(&e)))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RouterError::Setup(format!("TLS: {e}")))?;
    let builder = if files.ca_certificates.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for path in &files.ca_certificates {
            for c in CertificateDer::pem_file_iter(path).map_err(|e| err("CA certificate", path, pem_message(&e)))? {
                let c = c.map_err(|e| err("CA certificate", path, pem_message(&e)))?;
                roots.add(c).map_err(|e| err("CA certificate", path, e.to_string()))?;
            }
        }
        let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        if !files.require_client_cert {
            verifier = verifier.allow_unauthenticated();
        }
        let verifier = verifier.build().map_err(|e| RouterError::Setup(format!("TLS client verifier: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| err("certificate/key pair", &files.certificate, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS session: the server side of an accepted connection, or the client
/// side of a proxy link.
pub struct Tls {
    conn: rustls::Connection,
}

/// The client side of TLS on proxy links: trust anchors and an optional
/// client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// PEM CA certificates the server's certificate must chain to.
    pub ca_certificates: Vec<PathBuf>,
    /// Client certificate chain and key, for servers requiring mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Builds a rustls client config (TLS 1.2 and 1.3) trusting only the given CAs.
pub fn client_config(files: &ClientTlsFiles) -> Result<Arc<rustls::ClientConfig>, RouterError> {
    let err = |what: &str, path: &Path, e: String| RouterError::Setup(format!("TLS {what} {}: {e}", path.display()));
    let mut roots = RootCertStore::empty();
    for path in &files.ca_certificates {
        for c in CertificateDer::pem_file_iter(path).map_err(|e| err("CA certificate", path, pem_message(&e)))? {
            let c = c.map_err(|e| err("CA certificate", path, pem_message(&e)))?;
            roots.add(c).map_err(|e| err("CA certificate", path, e.to_string()))?;
        }
    }
    if roots.is_empty() {
        return Err(RouterError::Setup("TLS: no CA certificate to verify the router with".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RouterError::Setup(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let config = match &files.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let mut certs = Vec::new();
            for c in CertificateDer::pem_file_iter(cert).map_err(|e| err("certificate", cert, pem_message(&e)))? {
                certs.push(c.map_err(|e| err("certificate", cert, pem_message(&e)))?);
            }
            let k = PrivateKeyDer::from_pem_file(key).map_err(|e| err("key", key, pem_message(&e)))?;
            builder.with_client_auth_cert(certs, k).map_err(|e| err("certificate/key pair", cert, e.to_string()))?
        }
    };
    Ok(Arc::new(config))
}

/// A fatal TLS error; any alert to send has been queued (see [`Tls::take_ciphertext`]).
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

impl Tls {
    /// A new session for an accepted connection.
    pub fn new(config: &Arc<ServerConfig>) -> Result<Tls, TlsError> {
        ServerConnection::new(config.clone()).map(|conn| Tls { conn: conn.into() }).map_err(|e| TlsError(e.to_string()))
    }

    /// A new client session to `server_name` (a DNS name or IP address).
    pub fn client(config: &Arc<rustls::ClientConfig>, server_name: &str) -> Result<Tls, TlsError> {
        let name = rustls::pki_types::ServerName::try_from(server_name.to_owned())
            .map_err(|e| TlsError(format!("invalid server name '{server_name}': {e}")))?;
        rustls::ClientConnection::new(config.clone(), name)
            .map(|conn| Tls { conn: conn.into() })
            .map_err(|e| TlsError(e.to_string()))
    }

    /// Feeds received ciphertext; appends the plaintext it yields to `plain`.
    pub fn feed(&mut self, mut data: &[u8], plain: &mut Vec<u8>) -> Result<(), TlsError> {
        while !data.is_empty() {
            let n = self.conn.read_tls(&mut data).map_err(|e| TlsError(e.to_string()))?;
            if n == 0 {
                return Err(TlsError("TLS receive buffer full".into()));
            }
            let state = self.conn.process_new_packets().map_err(|e| TlsError(e.to_string()))?;
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                self.conn.reader().read_exact(&mut plain[start..]).map_err(|e| TlsError(e.to_string()))?;
            }
            if state.peer_has_closed() {
                break;
            }
        }
        Ok(())
    }

    /// Encrypts `plain` (appending records to `out`). rustls buffers only a
    /// bounded amount of outgoing data, so a large batch is fed in pieces,
    /// draining the records after each.
    pub fn encrypt(&mut self, mut plain: &[u8], out: &mut Vec<u8>) -> Result<(), TlsError> {
        while !plain.is_empty() {
            let n = self.conn.writer().write(plain).map_err(|e| TlsError(e.to_string()))?;
            self.take_ciphertext(out);
            if n == 0 {
                // Nothing was accepted even with the buffer drained.
                return Err(TlsError("TLS session refuses more data".into()));
            }
            plain = &plain[n..];
        }
        self.take_ciphertext(out);
        Ok(())
    }

    /// Appends whatever TLS wants to send (handshake, alerts, records).
    pub fn take_ciphertext(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            if self.conn.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// True if TLS has bytes to send.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// True until the TLS handshake is complete.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// RFC 9266 `tls-exporter` channel binding (32 bytes), for WAMP-cryptosign.
    pub fn channel_binding(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        self.conn.export_keying_material(&mut out, b"EXPORTER-Channel-Binding", None).ok()?;
        Some(out)
    }

    /// The client's certificate (DER), if it presented one.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.conn.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref().to_vec())
    }

    /// Negotiated protocol version, e.g. `TLSv1_3`.
    pub fn version(&self) -> Option<String> {
        self.conn.protocol_version().map(|v| format!("{v:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::ClientConnection;

    /// A self-signed test certificate made at test time.
    fn configs() -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let der = CertificateDer::from(cert.cert.der().to_vec());
        let key = PrivateKeyDer::try_from(cert.key_pair.serialize_der()).expect("key");
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .expect("server config");
        let mut roots = RootCertStore::empty();
        roots.add(der).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// Bad files on reload: a clear error naming the file, and the
    /// previous configuration stays in force.
    #[test]
    fn a_bad_reload_keeps_the_previous_certificate_with_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("junction-tls-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (a, b) = (
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert"),
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert"),
        );
        let files = TlsFiles {
            certificate: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            chain_certificates: vec![],
            ca_certificates: vec![],
            require_client_cert: false,
        };
        let pem = a.cert.pem();
        std::fs::write(&files.certificate, &pem).expect("write");
        std::fs::write(&files.key, a.key_pair.serialize_pem()).expect("write");
        let source = TlsSource::load(files.clone()).expect("load");
        let before = source.current();
        type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);
        let cases: Vec<Case> = vec![
            (
                "garbage",
                Box::new(|| std::fs::write(&files.certificate, "not a certificate").expect("w")),
                "no certificate found",
            ),
            (
                "truncated",
                Box::new(|| std::fs::write(&files.certificate, &pem[..pem.len() / 2]).expect("w")),
                "truncated or malformed PEM: no \"-----END CERTIFICATE-----\" line",
            ),
            ("missing", Box::new(|| std::fs::remove_file(&files.certificate).expect("rm")), "No such file"),
            (
                "other key",
                Box::new(|| std::fs::write(&files.certificate, b.cert.pem()).expect("w")),
                "certificate/key pair",
            ),
        ];
        for (what, breaker, want) in cases {
            std::fs::write(&files.certificate, &pem).expect("write");
            breaker();
            let e = source.reload().expect_err(what).to_string();
            assert!(e.contains(want), "{what}: {e}");
            assert!(e.contains(&*files.certificate.to_string_lossy()), "{what}: names the file: {e}");
            assert!(Arc::ptr_eq(&source.current(), &before), "{what}: the previous config stays");
        }
        std::fs::write(&files.certificate, b.cert.pem()).expect("write");
        std::fs::write(&files.key, b.key_pair.serialize_pem()).expect("write");
        source.reload().expect("a good pair reloads");
        assert!(!Arc::ptr_eq(&source.current(), &before));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Moves all pending records from `from` into `to`.
    fn pump_client_to_server(c: &mut ClientConnection, s: &mut Tls, plain: &mut Vec<u8>) {
        let mut wire = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut wire).expect("client write_tls");
        }
        s.feed(&wire, plain).expect("server feed");
    }

    #[test]
    fn a_batch_larger_than_rustls_buffer_limit_is_encrypted_whole() {
        let (server_cfg, client_cfg) = configs();
        let mut server = Tls::new(&server_cfg).expect("server");
        let mut client =
            ClientConnection::new(client_cfg, ServerName::try_from("localhost").expect("name")).expect("client");
        let mut plain = Vec::new();
        // Handshake, in memory.
        for _ in 0..10 {
            pump_client_to_server(&mut client, &mut server, &mut plain);
            let mut wire = Vec::new();
            server.take_ciphertext(&mut wire);
            let mut rd = &wire[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).expect("client read_tls");
                client.process_new_packets().expect("client process");
            }
            if !server.is_handshaking() && !client.is_handshaking() {
                break;
            }
        }
        assert!(!server.is_handshaking());
        // 1 MiB in one call: far beyond rustls's default 64 KiB send buffer.
        let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        server.encrypt(&big, &mut wire).expect("encrypt");
        let mut got = Vec::new();
        let mut rd = &wire[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).expect("client read_tls");
            let st = client.process_new_packets().expect("client process");
            let n = st.plaintext_bytes_to_read();
            let start = got.len();
            got.resize(start + n, 0);
            client.reader().read_exact(&mut got[start..]).expect("read plaintext");
        }
        assert_eq!(got.len(), big.len());
        assert!(got == big);
    }
}
