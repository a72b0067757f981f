//! ## Goal
//! Write `https_server`, an HTTPS server built from three layers you can see separately: TCP
//! (tokio), TLS (rustls through tokio-rustls) and HTTP (hyper). It speaks TLS 1.3 only by default,
//! lets the client's ALPN choose between HTTP/2 and HTTP/1.1, picks its certificate from the name
//! the client asks for (SNI), and answers every request with a report of what the handshake
//! decided. On the way you meet certificate chains, trust anchors, and the errors a client gives
//! when something is wrong (unknown issuer, expired, wrong name), all with certificates made on
//! the spot: no private key is ever committed.
//!
//! ## Requirements
//! 1. `--cert FILE --key FILE` loads every certificate of the PEM chain (leaf first, then
//!    intermediates) and its private key; the server prints `listening on <addr>`, speaks TLS 1.3
//!    and offers ALPN `h2` then `http/1.1`. The protocol ALPN chose is the one served (a client
//!    offering no ALPN gets HTTP/1.1). Every request gets `200` with a text body holding the
//!    lines `tls: TLSv1_3`, `alpn: <protocol or ->` and `sni: <name or ->`.
//! 2. A client that does not trust the server's CA fails the handshake with an unknown-issuer
//!    error; the server goes on serving the next client. Each connection has its own task: a
//!    client that connects and stalls its handshake does not hold up anybody else's.
//! 3. `--sni NAME=CERT,KEY` (repeatable) adds a certificate served when the client asks for `NAME`
//!    with SNI (case-insensitive). No SNI (a client connecting to an IP address sends none) or an
//!    unknown name gets the default certificate (`--cert`).
//! 4. A plain-HTTP client on the TLS port gets a clean close: at most a TLS alert record, then end
//!    of file; never a hang, never a crash. The server keeps serving.
//! 5. An expired leaf is served as it is, and the client refuses it (the client does the checking).
//! 6. TLS 1.2 is refused by default; with `--tls12` a TLS 1.2-only client is served too.
//! 7. `--generate-certs DIR` writes a throwaway CA (`ca.pem`) and a leaf for `localhost` and
//!    `127.0.0.1` signed by it (`localhost.pem`, `localhost.key` readable by its owner only; the
//!    CA's key is never written), then serves that leaf.
//! 8. A missing or unreadable file, a file without a certificate, or a key that does not match
//!    the certificate ends the program before it listens: one message on stderr naming the file,
//!    exit code 1, no panic. A wrong command line exits with code 2 (clap's usage error).
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 3.5    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `--cert FILE --key FILE` loads every certificate of the PEM chain (leaf
//!   first, then intermediates) and its private key; the server prints `listening on <addr>`,
//!   speaks TLS 1.3 and offers ALPN `h2` then `http/1.1`
//! - [ ] Requirement 2: A client that does not trust the server's CA fails the handshake with an
//!   unknown-issuer error; the server goes on serving the next client
//! - [ ] Requirement 3: `--sni NAME=CERT,KEY` (repeatable) adds a certificate served when the
//!   client asks for `NAME` with SNI (case-insensitive)
//! - [ ] Requirement 4: A plain-HTTP client on the TLS port gets a clean close: at most a TLS alert
//!   record, then end of file; never a hang, never a crash
//! - [ ] Requirement 5: An expired leaf is served as it is, and the client refuses it (the client
//!   does the checking)
//! - [ ] Requirement 6: TLS 1.2 is refused by default; with `--tls12` a TLS 1.2-only client is
//!   served too
//! - [ ] Requirement 7: `--generate-certs DIR` writes a throwaway CA (`ca.pem`) and a leaf for
//!   `localhost` and `127.0.0.1` signed by it (`localhost.pem`, `localhost.key` readable by its
//!   owner only; the CA's key is never written), then serves that leaf
//! - [ ] Requirement 8: A missing or unreadable file, a file without a certificate, or a key that
//!   does not match the certificate ends the program before it listens: one message on stderr
//!   naming the file, exit code 1, no panic
//!
//! ## Notes
//!
//! HTTPS server: rustls + tokio-rustls + hyper.
//!
//! `https_server --addr HOST:PORT (--cert FILE --key FILE | --generate-certs DIR)
//!  [--sni NAME=CERT,KEY]... [--tls12]`
//!
//! Serve HTTPS: a TLS 1.3 handshake with the certificate the client asked for (SNI), then
//! HTTP/2 or HTTP/1.1 as ALPN decided, and answer every request with a report of what was
//! negotiated. Print `listening on <addr>` on stdout once the socket listens. Read README.md
//! for the requirements; `cargo lab test 3.5` grades this file by talking TLS to the running
//! program.
//!
//! The command line (`Args`) is ready; the signatures below are a suggestion: the grader only
//! runs the binary. Remove the `allow` below once every argument is used.
#![allow(unused_variables)]

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A client that never finishes its handshake loses the connection after this long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ALPN protocol names to offer, in order of preference.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The command line (ready to use: `Args::parse()`).
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

/// Parses `NAME=CERT,KEY` (ready to use).
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

/// Loads every certificate of the PEM file `cert` (leaf first, then intermediates) and the
/// private key of `key`, and checks that they belong together.
///
/// `rustls::pki_types::pem::PemObject` parses PEM (`CertificateDer::pem_slice_iter`,
/// `PrivateKeyDer::from_pem_slice`); `CertifiedKey::from_der` loads the key with the provider
/// and compares it with the leaf.
pub fn load_certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, ServerError> {
    todo!("read both files, parse the PEM chain and key, CertifiedKey::from_der")
}

/// Picks the certificate from the name the client sent with SNI; a missing or unknown name
/// gets the default certificate.
#[derive(Debug)]
pub struct SniResolver {
    // Your fields: the default certificate, and one per name.
}

impl SniResolver {
    pub fn new(default: CertifiedKey) -> Self {
        todo!("keep the default certificate")
    }

    pub fn add(&mut self, name: &str, key: CertifiedKey) {
        todo!("remember the certificate for this name (names are case-insensitive)")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        todo!("hello.server_name(): the matching certificate, else the default")
    }
}

/// Builds the TLS configuration: TLS 1.3 only (plus 1.2 when `allow_tls12`), the resolver,
/// and the ALPN protocols `h2` then `http/1.1`.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    resolver: SniResolver,
    allow_tls12: bool,
) -> Result<ServerConfig, ServerError> {
    todo!("ServerConfig::builder_with_provider(..).with_protocol_versions(..), alpn_protocols")
}

/// Writes a throwaway CA (`ca.pem`, self-signed, its key never written) and a leaf for
/// `localhost` and `127.0.0.1` signed by it (`localhost.pem`, `localhost.key` with mode 0600)
/// into `dir`; returns the leaf's two paths.
pub fn generate_certs(dir: &Path) -> Result<(PathBuf, PathBuf), ServerError> {
    todo!(
        "rcgen: CertifiedIssuer::self_signed for the CA, CertificateParams::signed_by for the leaf"
    )
}

/// What the handshake decided, reported back in every response.
#[derive(Debug, Clone)]
pub struct Negotiated {
    pub version: String,
    pub alpn: Option<String>,
    pub sni: Option<String>,
}

/// The response to every request: `200`, a text body with the lines `tls: TLSv1_3`,
/// `alpn: h2` (or `http/1.1`, or `-` when none) and `sni: localhost` (or `-`).
pub fn report(req: &Request<Incoming>, tls: &Negotiated) -> Response<Full<Bytes>> {
    todo!("format the report")
}

/// One connection: the TLS handshake (at most HANDSHAKE_TIMEOUT), then HTTP/2 when ALPN chose
/// `h2`, else HTTP/1.1, with hyper.
pub async fn handle_connection(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    todo!("acceptor.accept(tcp), read what was negotiated, serve HTTP on the TLS stream")
}

/// Accepts connections forever, one task each; a failed handshake costs one connection.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor) {
    todo!("accept, spawn handle_connection, report its error on stderr")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!(
        "Args::parse, load or generate certificates, build the config, bind, print `listening on <addr>`, serve"
    )
}
