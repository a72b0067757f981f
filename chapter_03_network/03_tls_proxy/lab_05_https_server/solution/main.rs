//! HTTPS server: rustls + tokio-rustls + hyper.
//!
//! `https_server --addr HOST:PORT (--cert FILE --key FILE | --generate-certs DIR)
//!  [--sni NAME=CERT,KEY]... [--tls12]`
//!
//! Every connection goes through three layers, each with its own job:
//!
//! 1. **TCP** (`tokio::net::TcpListener`): bytes in order, nothing more.
//! 2. **TLS** (`tokio_rustls::TlsAcceptor`): the handshake proves who we are (the certificate
//!    chain, signed by a CA the client trusts) and agrees on keys; afterwards the same bytes flow,
//!    encrypted and authenticated. Two extensions of the ClientHello steer the handshake: SNI
//!    (which host name the client wants: it picks our certificate) and ALPN (which protocol
//!    will run on top: it picks HTTP/2 or HTTP/1.1).
//! 3. **HTTP** (`hyper`): served on the decrypted stream, with the protocol ALPN chose.
//!
//! The answer to every request is a small report of what was negotiated, so a learner can see
//! each layer's decision with `curl` or `openssl s_client`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedProtocolVersion};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A client that opens a connection and never finishes the handshake loses it after this long,
/// so idle sockets cannot pile up (a "slowloris" attack costs one timer each, not forever).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ALPN protocol names we offer, in order of preference.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "https_server",
    about = "An HTTPS server that reports what TLS negotiated"
)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub addr: SocketAddr,
    /// PEM file with the certificate chain: the leaf first, then its intermediates.
    #[arg(long, requires = "key", required_unless_present = "generate_certs")]
    pub cert: Option<PathBuf>,
    /// PEM file with the private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Another certificate, served when the client asks for NAME with SNI.
    #[arg(long = "sni", value_name = "NAME=CERT,KEY", value_parser = parse_sni)]
    pub sni: Vec<SniCert>,
    /// Create a throwaway CA and a leaf for localhost in DIR (ca.pem, localhost.pem,
    /// localhost.key) and serve that leaf.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["cert", "key"])]
    pub generate_certs: Option<PathBuf>,
    /// Also accept TLS 1.2 (the default is TLS 1.3 only).
    #[arg(long)]
    pub tls12: bool,
}

/// One `--sni NAME=CERT,KEY` argument.
#[derive(Debug, Clone)]
pub struct SniCert {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Parses `NAME=CERT,KEY`.
pub fn parse_sni(value: &str) -> Result<SniCert, String> {
    let (name, files) = value
        .split_once('=')
        .ok_or("expected NAME=CERT,KEY (a host name, `=`, two file names)")?;
    let (cert, key) = files
        .split_once(',')
        .ok_or("expected NAME=CERT,KEY (two file names separated by a comma)")?;
    if name.is_empty() || cert.is_empty() || key.is_empty() {
        return Err("expected NAME=CERT,KEY with nothing left empty".into());
    }
    Ok(SniCert {
        name: name.to_ascii_lowercase(),
        cert: cert.into(),
        key: key.into(),
    })
}

/// Why the server could not start: `main` prints it on stderr and exits with code 1. Every
/// variant about a file names the file.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not valid PEM: {source}")]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("{cert} and {key} do not make a usable pair: {source}")]
    BadPair {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// Loads a certificate chain and its private key, and checks that they belong together.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, ServerError> {
    // Read the files ourselves first: `io::Error` then says "No such file", not a PEM error.
    let cert_pem = fs::read(cert).map_err(|source| ServerError::Read {
        path: cert.into(),
        source,
    })?;
    let key_pem = fs::read(key).map_err(|source| ServerError::Read {
        path: key.into(),
        source,
    })?;
    // Every CERTIFICATE block, in order: the leaf, then the intermediates. Sending only the
    // leaf is a classic bug: browsers that cached the intermediate work, fresh clients fail.
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ServerError::Pem {
            path: cert.into(),
            source,
        })?;
    if chain.is_empty() {
        return Err(ServerError::NoCertificate { path: cert.into() });
    }
    let private_key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| ServerError::Pem {
            path: key.into(),
            source,
        })?;
    // `from_der` also compares the key with the leaf's public key: a mismatch fails here, at
    // startup, instead of failing every handshake later.
    CertifiedKey::from_der(chain, private_key, provider).map_err(|source| ServerError::BadPair {
        cert: cert.into(),
        key: key.into(),
        source,
    })
}

/// Picks the certificate from the name the client sent with SNI.
///
/// rustls calls `resolve` in the middle of the handshake, once the ClientHello is parsed: SNI
/// travels in clear text in that first message, which is why one IP address can serve many
/// sites (and why an observer on the path sees which site you visit).
#[derive(Debug)]
pub struct SniResolver {
    default: Arc<CertifiedKey>,
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl SniResolver {
    pub fn new(default: CertifiedKey) -> Self {
        SniResolver {
            default: Arc::new(default),
            by_name: HashMap::new(),
        }
    }

    pub fn add(&mut self, name: &str, key: CertifiedKey) {
        self.by_name
            .insert(name.to_ascii_lowercase(), Arc::new(key));
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // No SNI (a client connecting to an IP address sends none) or a name we do not know:
        // serve the default certificate and let the client decide whether it trusts it.
        let chosen = hello
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()))
            .unwrap_or(&self.default);
        Some(chosen.clone())
    }
}

/// Builds the TLS configuration: protocol versions, certificates, ALPN.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: SniResolver,
    allow_tls12: bool,
) -> Result<ServerConfig, ServerError> {
    // TLS 1.3 alone by default: one round trip, forward secrecy always, no legacy ciphers.
    let versions: &[&SupportedProtocolVersion] = if allow_tls12 {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    // The server picks the first of *its* protocols that the client also offers.
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()];
    Ok(config)
}

/// Writes a throwaway CA (`ca.pem`) and a leaf for localhost signed by it (`localhost.pem`,
/// `localhost.key`) into `dir`; returns the leaf's two paths.
///
/// The CA's private key is never written: once the leaf is signed nobody can sign another
/// certificate with this CA, so trusting `ca.pem` is harmless.
pub fn generate_certs(dir: &Path) -> Result<(PathBuf, PathBuf), ServerError> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };

    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, "https_server throwaway CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

    let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // rcgen's default validity (1975 to 4096) is fine for a throwaway leaf; a public CA signs
    // leaves for 398 days at most, so that a stolen key stops working on its own.
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf.signed_by(&leaf_key, &ca)?;

    let write = |name: &str, contents: String, mode: u32| -> Result<PathBuf, ServerError> {
        let path = dir.join(name);
        let error = |source| ServerError::Write {
            path: path.clone(),
            source,
        };
        // A private key is readable by its owner only, from the moment the file exists.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .map_err(error)?;
        file.write_all(contents.as_bytes()).map_err(error)?;
        Ok(path)
    };
    fs::create_dir_all(dir).map_err(|source| ServerError::Write {
        path: dir.into(),
        source,
    })?;
    write("ca.pem", ca.pem(), 0o644)?;
    let cert = write("localhost.pem", leaf.pem(), 0o644)?;
    let key = write("localhost.key", leaf_key.serialize_pem(), 0o600)?;
    Ok((cert, key))
}

/// What the handshake decided, reported back to the client in every response.
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub version: String,
    pub alpn: Option<String>,
    pub sni: Option<String>,
}

/// The response to every request: a plain-text report of the negotiation.
pub fn report(req: &Request<Incoming>, tls: &Negotiated) -> Response<Full<Bytes>> {
    let body = format!(
        "hello over TLS\ntls: {}\nalpn: {}\nsni: {}\nhttp: {:?}\n",
        tls.version,
        tls.alpn.as_deref().unwrap_or("-"),
        tls.sni.as_deref().unwrap_or("-"),
        req.version(),
    );
    Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

/// One connection: TLS handshake, then HTTP/2 or HTTP/1.1 as ALPN decided.
pub async fn handle_connection(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .map_err(|_| "handshake timed out")??;
    let negotiated = {
        let (_, conn) = tls.get_ref();
        Negotiated {
            version: conn
                .protocol_version()
                .map_or("-".into(), |v| format!("{v:?}")),
            alpn: conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            sni: conn.server_name().map(str::to_string),
        }
    };
    let h2 = negotiated.alpn.as_deref() == Some("h2");
    let service = service_fn(move |req| {
        let response = report(&req, &negotiated);
        async move { Ok::<_, Infallible>(response) }
    });
    let io = TokioIo::new(tls);
    // ALPN already told us the protocol: no need to sniff the first bytes for the HTTP/2
    // preface. A client that offered no ALPN gets HTTP/1.1, the safe default.
    if h2 {
        http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, service)
            .await?;
    } else {
        http1::Builder::new().serve_connection(io, service).await?;
    }
    Ok(())
}

/// Accepts connections forever, one task each. A failed handshake costs one connection.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("https_server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // Plain HTTP on this port ends here: rustls reads "GET / HTTP/1.1", which is not a
            // TLS record, answers with an alert and we drop the socket. Nothing else notices.
            if let Err(e) = handle_connection(acceptor, tcp).await {
                eprintln!("https_server: {peer}: {e}");
            }
        });
    }
}

async fn run(args: Args) -> Result<(), ServerError> {
    // Name the crypto provider explicitly instead of relying on a process-wide default that
    // depends on which cargo features happen to be enabled.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert, key) = match (args.generate_certs, args.cert, args.key) {
        (Some(dir), _, _) => generate_certs(&dir)?,
        (None, Some(cert), Some(key)) => (cert, key),
        _ => unreachable!("clap requires --cert and --key, or --generate-certs"),
    };
    let mut resolver = SniResolver::new(load_certified_key(&cert, &key, &provider)?);
    for sni in &args.sni {
        resolver.add(
            &sni.name,
            load_certified_key(&sni.cert, &sni.key, &provider)?,
        );
    }
    let config = server_config(provider, resolver, args.tls12)?;

    let listener = TcpListener::bind(args.addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: args.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: args.addr,
        source,
    })?;
    println!("listening on {local}");
    serve(listener, TlsAcceptor::from(Arc::new(config))).await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    // clap prints the usage and exits with code 2 on a bad command line.
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("https_server: {e}");
            ExitCode::from(1)
        }
    }
}
