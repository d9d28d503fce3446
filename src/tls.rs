//! TLS for the OTLP exporter (client) and for `otelsim sink` (server): PEM
//! files read and checked with errors that name the flag and the file, the
//! rustls configurations built from them (and the sink's tonic one), the verifier
//! behind `--insecure`, and how certificate failures are recognised.
//!
//! Only rustls with the ring backend is used.

use anyhow::{anyhow, bail, Context as _, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{AlertDescription, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a TLS handshake may take before the connection is given up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// ALPN for OTLP/gRPC (HTTP/2).
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN for OTLP/HTTP (HTTP/1.1).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where a PEM file came from, for messages: `--tls-ca /etc/ca.pem` or
/// `OTEL_EXPORTER_OTLP_CERTIFICATE=/etc/ca.pem`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// The flag (`--tls-ca`) or environment variable that named the file.
    pub origin: String,
    /// The PEM file itself.
    pub path: std::path::PathBuf,
}

impl Source {
    /// `path` as named by `origin` (a flag or an environment variable).
    pub fn new(origin: impl Into<String>, path: impl Into<std::path::PathBuf>) -> Self {
        Source {
            origin: origin.into(),
            path: path.into(),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origin.starts_with("--") {
            write!(f, "{} {}", self.origin, self.path.display())
        } else {
            write!(f, "{}={}", self.origin, self.path.display())
        }
    }
}

fn read(src: &Source) -> Result<Vec<u8>> {
    std::fs::read(&src.path).with_context(|| format!("{src}: cannot read the file"))
}

/// Every certificate in a PEM bundle; at least one.
fn certs(label: &dyn fmt::Display, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{label}: invalid PEM: {e}"))?;
    if certs.is_empty() {
        bail!("{label}: no PEM certificate found (expected a -----BEGIN CERTIFICATE----- block)");
    }
    Ok(certs)
}

/// The first private key in a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
fn key(label: &dyn fmt::Display, pem: &[u8]) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow!(
            "{label}: no PEM private key found (expected a -----BEGIN PRIVATE KEY-----, \
             RSA PRIVATE KEY or EC PRIVATE KEY block)"
        ),
        e => anyhow!("{label}: invalid PEM: {e}"),
    })
}

/// A root store of the CA certificates in a PEM bundle.
fn root_store(label: &dyn fmt::Display, pem: &[u8]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs(label, pem)? {
        roots
            .add(cert)
            .map_err(|e| anyhow!("{label}: not a usable CA certificate: {e}"))?;
    }
    Ok(roots)
}

/// The operating system's trusted CA certificates.
fn system_roots() -> Result<RootCertStore> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        bail!(
            "no system CA certificates found to verify the https:// endpoint; \
             pass the CA that signed its certificate with --tls-ca"
        );
    }
    Ok(roots)
}

/// TLS settings of the exporter for `https://` endpoints.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// PEM CA bundle trusted instead of the system roots.
    ca_pem: Option<Vec<u8>>,
    /// PEM client certificate (chain) and private key, for mTLS.
    identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Accept a server certificate that does not verify.
    pub insecure: bool,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material.
        f.debug_struct("ClientTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity.is_some())
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl ClientTls {
    /// Reads and checks the files: the CA bundle, and the client certificate
    /// with its key (both or neither).
    pub fn load(
        ca: Option<Source>,
        cert: Option<Source>,
        key: Option<Source>,
        insecure: bool,
    ) -> Result<ClientTls> {
        let identity = match (cert, key) {
            (None, None) => None,
            (Some(c), Some(k)) => {
                let (cert_pem, key_pem) = (read(&c)?, read(&k)?);
                let chain = certs(&c, &cert_pem)?;
                let private = self::key(&k, &key_pem)?;
                // The key must suit the certificate and the crypto backend.
                ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(RootCertStore::empty())
                    .with_client_auth_cert(chain, private)
                    .map_err(|e| anyhow!("{c} with {k}: unusable client certificate: {e}"))?;
                Some((cert_pem, key_pem))
            }
            (Some(given), None) | (None, Some(given)) => bail!(
                "a client certificate needs both --tls-cert and --tls-key \
                 (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY); \
                 only {given} was given"
            ),
        };
        let ca_pem = match ca {
            Some(src) => {
                let pem = read(&src)?;
                root_store(&src, &pem)?;
                Some(pem)
            }
            None => None,
        };
        Ok(ClientTls {
            ca_pem,
            identity,
            insecure,
        })
    }

    /// The CAs that verify the server: the `--tls-ca` bundle, else the system's.
    fn roots(&self) -> Result<RootCertStore> {
        match &self.ca_pem {
            Some(pem) => root_store(&"--tls-ca", pem),
            None => system_roots(),
        }
    }

    /// A rustls client configuration offering `alpn`.
    pub fn rustls_config(&self, alpn: &[&[u8]]) -> Result<ClientConfig> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCert::new()))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let mut config = match &self.identity {
            Some((cert_pem, key_pem)) => builder
                .with_client_auth_cert(certs(&"--tls-cert", cert_pem)?, key(&"--tls-key", key_pem)?)
                .map_err(|e| anyhow!("unusable client certificate: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// `--insecure`: accepts any server certificate (self-signed, expired, for
/// another name) but still checks that the server holds its key.
#[derive(Debug)]
struct AcceptAnyServerCert {
    provider: Arc<CryptoProvider>,
}

impl AcceptAnyServerCert {
    fn new() -> Self {
        AcceptAnyServerCert {
            provider: provider(),
        }
    }
}

impl ServerCertVerifier for AcceptAnyServerCert {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects TLS over `tcp` to check that the handshake succeeds (certificate
/// verification, protocol); the connection is then dropped.
pub async fn check_handshake(
    tcp: tokio::net::TcpStream,
    host: &str,
    config: ClientConfig,
) -> Result<()> {
    use tokio::io::AsyncReadExt as _;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| anyhow!("`{host}` is not a valid TLS server name"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            return Err(match problem(&e) {
                Some(p) => anyhow!("{p}"),
                None => anyhow!("TLS handshake failed: {e}"),
            })
        }
        Err(_) => bail!("TLS handshake timed out after {HANDSHAKE_TIMEOUT:?}"),
    };
    // With TLS 1.3 the server judges our certificate (or its absence) after the
    // client's side of the handshake is done, and answers with an alert. An
    // HTTP/2 server speaks first (its SETTINGS frame), so for gRPC the first
    // read tells (at once when it accepts: the wait is for a loaded server's
    // refusal); an HTTP/1.1 server stays silent, and its refusal shows on the
    // first request instead.
    if tls.get_ref().1.alpn_protocol() == Some(ALPN_H2) {
        let mut first = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut first)).await;
        if let Ok(Err(e)) = read {
            if let Some(p) = problem(&e) {
                bail!("{p}");
            }
        }
    }
    Ok(())
}

/// A TLS failure in `err`'s chain that retrying cannot fix (certificate
/// rejected by either side, no TLS on the other end), as a readable line with
/// a hint; `None` for anything else.
pub fn problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return describe(tls);
        }
        // io::Error hides its payload from `source()`: look inside. HTTP/2
        // keeps only the text of an I/O error, so the text is read too.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return describe(tls);
            }
            let text = inner.to_string();
            if let Some(hint) = hint_for_text(&text) {
                return Some(format!("TLS handshake failed: {text} ({hint})"));
            }
        }
        next = e.source();
    }
    None
}

const SERVER_CERT_HINT: &str = "the endpoint's certificate does not verify: pass the CA that \
    signed it with --tls-ca, or skip verification with --insecure, for tests only";
const CLIENT_CERT_HINT: &str =
    "the endpoint wants a client certificate it trusts: pass one with --tls-cert and --tls-key";
const PEER_INCOMPATIBLE_HINT: &str = "the endpoint and otelsim share no TLS version or cipher";
const NOT_TLS_HINT: &str = "is the endpoint serving TLS? use http:// for a plaintext one";

/// Alerts that mean the server refused the client's certificate (or its absence).
const CLIENT_CERT_ALERTS: [AlertDescription; 8] = [
    AlertDescription::CertificateRequired,
    AlertDescription::BadCertificate,
    AlertDescription::UnknownCA,
    AlertDescription::CertificateUnknown,
    AlertDescription::CertificateExpired,
    AlertDescription::CertificateRevoked,
    AlertDescription::UnsupportedCertificate,
    AlertDescription::AccessDenied,
];

fn describe(e: &rustls::Error) -> Option<String> {
    use rustls::Error as E;
    let hint = match e {
        E::InvalidCertificate(_) => SERVER_CERT_HINT,
        E::AlertReceived(a) if CLIENT_CERT_ALERTS.contains(a) => CLIENT_CERT_HINT,
        E::AlertReceived(
            AlertDescription::HandshakeFailure | AlertDescription::ProtocolVersion,
        )
        | E::PeerIncompatible(_) => PEER_INCOMPATIBLE_HINT,
        E::InvalidMessage(_) => NOT_TLS_HINT,
        _ => return None,
    };
    Some(format!("TLS handshake failed: {e} ({hint})"))
}

/// The hint for a rustls error known only by its text (see [`problem`]).
fn hint_for_text(text: &str) -> Option<&'static str> {
    if text.starts_with("invalid peer certificate") {
        return Some(SERVER_CERT_HINT);
    }
    let alert = text.strip_prefix("received fatal alert: ")?;
    CLIENT_CERT_ALERTS
        .iter()
        .any(|a| format!("{a:?}") == alert)
        .then_some(CLIENT_CERT_HINT)
}

/// The TLS settings of `otelsim sink`: its certificate and key, and
/// optionally the CA that client certificates must chain to (mTLS).
#[derive(Clone, PartialEq, Eq)]
pub struct ServerTls {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    client_ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_ca", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From the sink's flags: `None` without any; `--tls-cert` and `--tls-key`
    /// go together, and `--tls-client-ca` needs them.
    pub fn from_flags(
        cert: Option<&Path>,
        key: Option<&Path>,
        client_ca: Option<&Path>,
    ) -> Result<Option<ServerTls>> {
        let (cert, key) = match (cert, key) {
            (None, None) if client_ca.is_some() => bail!(
                "--tls-client-ca needs the sink's own certificate: add --tls-cert and --tls-key"
            ),
            (None, None) => return Ok(None),
            (Some(c), Some(k)) => (Source::new("--tls-cert", c), Source::new("--tls-key", k)),
            (Some(_), None) | (None, Some(_)) => {
                bail!("TLS needs both --tls-cert and --tls-key (the sink's certificate and its private key)")
            }
        };
        let ca = client_ca.map(|p| Source::new("--tls-client-ca", p));
        let client_ca_pem = ca.as_ref().map(read).transpose()?;
        let tls = ServerTls {
            cert_pem: read(&cert)?,
            key_pem: read(&key)?,
            client_ca_pem,
        };
        tls.check(&cert, &key, ca.as_ref().map(|c| c as &dyn fmt::Display))?;
        Ok(Some(tls))
    }

    /// From PEM text (what tests generate); checked like files.
    pub fn from_pem(cert: &str, key: &str, client_ca: Option<&str>) -> Result<ServerTls> {
        let tls = ServerTls {
            cert_pem: cert.as_bytes().to_vec(),
            key_pem: key.as_bytes().to_vec(),
            client_ca_pem: client_ca.map(|c| c.as_bytes().to_vec()),
        };
        tls.check(
            &"server certificate",
            &"server key",
            client_ca.map(|_| &"client CA" as &dyn fmt::Display),
        )?;
        Ok(tls)
    }

    fn check(
        &self,
        cert: &dyn fmt::Display,
        key: &dyn fmt::Display,
        ca: Option<&dyn fmt::Display>,
    ) -> Result<()> {
        let chain = certs(cert, &self.cert_pem)?;
        let private = self::key(key, &self.key_pem)?;
        if let (Some(label), Some(pem)) = (ca, &self.client_ca_pem) {
            root_store(label, pem)?;
        }
        Self::builder(self.client_ca_pem.as_deref())?
            .with_single_cert(chain, private)
            .map_err(|e| anyhow!("{cert} with {key}: unusable server certificate: {e}"))?;
        Ok(())
    }

    /// Whether clients must present a certificate signed by the client CA.
    pub fn requires_client_cert(&self) -> bool {
        self.client_ca_pem.is_some()
    }

    fn builder(
        client_ca: Option<&[u8]>,
    ) -> Result<rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        Ok(match client_ca {
            Some(pem) => {
                let roots = root_store(&"--tls-client-ca", pem)?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .map_err(|e| anyhow!("--tls-client-ca: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        })
    }

    /// The rustls configuration of the OTLP/HTTP listener (HTTP/1.1).
    pub(crate) fn rustls_config(&self) -> Result<ServerConfig> {
        let mut config = Self::builder(self.client_ca_pem.as_deref())?.with_single_cert(
            certs(&"--tls-cert", &self.cert_pem)?,
            key(&"--tls-key", &self.key_pem)?,
        )?;
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(config)
    }

    /// The tonic configuration of the OTLP/gRPC listener.
    pub(crate) fn tonic_config(&self) -> tonic::transport::ServerTlsConfig {
        use tonic::transport::{Certificate, Identity, ServerTlsConfig};
        let mut tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = &self.client_ca_pem {
            tls = tls.client_ca_root(Certificate::from_pem(ca));
        }
        tls
    }
}

/// Whether an endpoint URL asks for TLS (`https://`, any case).
pub fn is_https(endpoint: &str) -> bool {
    endpoint
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_is_recognised_in_any_case() {
        assert!(is_https("https://collector:4317"));
        assert!(is_https("HTTPS://collector"));
        assert!(!is_https("http://collector:4317"));
        assert!(!is_https("collector:4317"));
        assert!(!is_https("https:/"));
    }

    #[test]
    fn sources_name_the_flag_or_the_variable() {
        assert_eq!(
            Source::new("--tls-ca", "/x/ca.pem").to_string(),
            "--tls-ca /x/ca.pem"
        );
        assert_eq!(
            Source::new("OTEL_EXPORTER_OTLP_CERTIFICATE", "/x/ca.pem").to_string(),
            "OTEL_EXPORTER_OTLP_CERTIFICATE=/x/ca.pem"
        );
    }

    #[test]
    fn certificate_failures_are_recognised_even_as_text() {
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, alert.clone());
        assert!(problem(&io).is_some_and(|p| p.contains("--tls-cert")));
        // What survives HTTP/2: the text only.
        let text = std::io::Error::new(std::io::ErrorKind::InvalidData, alert.to_string());
        assert!(problem(&text).is_some_and(|p| p.contains("--tls-cert")));
        let unknown_ca = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(problem(&unknown_ca).is_some_and(|p| p.contains("--tls-ca")));
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(problem(&reset).is_none());
        let close = rustls::Error::AlertReceived(AlertDescription::CloseNotify);
        assert!(problem(&close).is_none());
    }

    #[test]
    fn pem_errors_say_what_was_expected() {
        let e = certs(&"--tls-ca f", b"hello").unwrap_err().to_string();
        assert!(e.contains("no PEM certificate found"), "{e}");
        let e = key(&"--tls-key f", b"hello").unwrap_err().to_string();
        assert!(e.contains("no PEM private key found"), "{e}");
        let e = ClientTls::load(None, Some(Source::new("--tls-cert", "c.pem")), None, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--tls-cert") && e.contains("--tls-key"), "{e}");
        let e = ServerTls::from_flags(None, None, Some(Path::new("ca.pem")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--tls-client-ca") && e.contains("--tls-cert"),
            "{e}"
        );
        assert!(ServerTls::from_flags(None, None, None).unwrap().is_none());
    }
}
