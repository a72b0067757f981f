//! Grader for the HTTPS server: black-box tests through the real binary and real TLS clients
//! (rustls, reqwest). Certificates are made fresh for every test with rcgen: a CA, leaves
//! signed by it, and nothing secret in the repository.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use labkit::{Server, lab_bin, run};
use rand::RngExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, SupportedProtocolVersion};

// ---------------------------------------------------------------------------------------------
// A small PKI, made at test time.
// ---------------------------------------------------------------------------------------------

/// A certificate authority: its certificate (what clients trust) and the power to sign.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    /// An intermediate CA signed by this one.
    fn intermediate(&self, name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer =
            CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), &self.issuer).unwrap();
        Ca { issuer }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `names`, valid now (or expired since 2021 when `expired`).
    fn leaf(&self, names: &[&str], expired: bool) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, &names[0]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            der: cert.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

struct Leaf {
    der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Leaf {
    /// Writes `<stem>.pem` (the leaf, then `chain`) and `<stem>.key`; returns both paths.
    fn write(&self, dir: &Path, stem: &str, chain: &[&Ca]) -> (String, String) {
        let cert = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        let mut pem = self.cert_pem.clone();
        for ca in chain {
            pem.push_str(&ca.pem());
        }
        fs::write(&cert, pem).unwrap();
        fs::write(&key, &self.key_pem).unwrap();
        (path_str(&cert), path_str(&key))
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

/// A host name nobody could have hard-coded.
fn random_host() -> String {
    format!("svc-{:08x}.test", rand::rng().random_range(0..u32::MAX))
}

/// A CA, a leaf for localhost and 127.0.0.1, and a server started with them.
struct Fixture {
    ca: Ca,
    leaf: Leaf,
    server: Server,
    _dir: tempfile::TempDir,
}

fn start_with(extra: &[&str]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("grader root CA");
    let leaf = ca.leaf(&["localhost", "127.0.0.1"], false);
    let (cert, key) = leaf.write(dir.path(), "localhost", &[]);
    let mut args = vec!["--cert", &cert, "--key", &key];
    args.extend_from_slice(extra);
    let server = Server::start(lab_bin!(), &args);
    Fixture {
        ca,
        leaf,
        server,
        _dir: dir,
    }
}

// ---------------------------------------------------------------------------------------------
// A TLS client (rustls over a blocking socket) that shows what the handshake decided.
// ---------------------------------------------------------------------------------------------

const H2: &[u8] = b"h2";
const HTTP11: &[u8] = b"http/1.1";
const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const ANY_VERSION: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn client_config(
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
) -> ClientConfig {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A finished handshake.
struct Session {
    conn: ClientConnection,
    tcp: TcpStream,
}

impl Session {
    fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }
    fn alpn(&self) -> Option<String> {
        self.conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }
    fn peer_chain(&self) -> Vec<CertificateDer<'static>> {
        self.conn.peer_certificates().unwrap_or_default().to_vec()
    }
    fn stream(&mut self) -> rustls::Stream<'_, ClientConnection, TcpStream> {
        rustls::Stream::new(&mut self.conn, &mut self.tcp)
    }
}

/// Connects to `addr` asking for `name` (an IP address sends no SNI) and runs the handshake.
/// Err is the TLS error when there is one, else the I/O error.
fn handshake(
    addr: SocketAddr,
    name: &str,
    config: ClientConfig,
) -> Result<Session, HandshakeError> {
    let mut tcp = labkit::net::connect(addr);
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut conn = ClientConnection::new(Arc::new(config), name).unwrap();
    while conn.is_handshaking() {
        match conn.complete_io(&mut tcp) {
            Ok((0, 0)) => return Err(HandshakeError::Io("connection closed".into())),
            Ok(_) => {}
            Err(e) => {
                let tls = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                return Err(match tls {
                    Some(tls) => HandshakeError::Tls(tls.clone()),
                    None => HandshakeError::Io(e.to_string()),
                });
            }
        }
    }
    Ok(Session { conn, tcp })
}

#[derive(Debug)]
enum HandshakeError {
    Tls(rustls::Error),
    Io(String),
}

fn expect_session(result: Result<Session, HandshakeError>, what: &str) -> Session {
    result.unwrap_or_else(|e| panic!("{what}: the handshake must succeed, got {e:?}"))
}

fn expect_certificate_error(
    result: Result<Session, HandshakeError>,
    what: &str,
) -> CertificateError {
    match result {
        Err(HandshakeError::Tls(rustls::Error::InvalidCertificate(e))) => e,
        Err(HandshakeError::Tls(other)) => {
            panic!("{what}: expected a certificate error, got the TLS error {other:?}")
        }
        Err(HandshakeError::Io(e)) => panic!("{what}: expected a certificate error, got {e}"),
        Ok(_) => panic!("{what}: the handshake must fail"),
    }
}

/// Sends `GET /` over HTTP/1.1 and returns (status line, body).
fn http11_get(session: &mut Session, host: &str) -> (String, String) {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut stream = session.stream();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        // A server that closes without close_notify still sent the whole response.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
        Err(e) => panic!("reading the response: {e} (got {} bytes)", response.len()),
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// Requirement 1: a client trusting the CA gets TLS 1.3, and ALPN picks the protocol.
// ---------------------------------------------------------------------------------------------

#[test]
fn trusted_client_gets_tls13_and_h2_when_it_offers_h2() {
    let f = start_with(&[]);
    let config = client_config(&[f.ca.der()], &[H2, HTTP11], ANY_VERSION);
    let mut session = expect_session(handshake(f.server.addr(), "localhost", config), "h2 client");
    assert_eq!(
        session.version(),
        Some(rustls::ProtocolVersion::TLSv1_3),
        "requirement 1: negotiated version; wanted TLS 1.3"
    );
    assert_eq!(
        session.alpn().as_deref(),
        Some("h2"),
        "requirement 1: ALPN chose this for a client offering h2 and http/1.1; wanted h2"
    );
    assert!(
        session.peer_chain().first() == Some(&f.leaf.der),
        "requirement 1: the server did not present the leaf from --cert"
    );

    // ALPN said h2, so HTTP/2 must follow: after our connection preface and an empty SETTINGS
    // frame, the server's first frame is its own SETTINGS (type 4).
    let mut stream = session.stream();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).unwrap_or_else(|e| {
        panic!(
            "requirement 1: ALPN said h2 but no HTTP/2 frame came back after our preface ({e}); \
             serve the protocol ALPN chose"
        )
    });
    assert_eq!(
        header[3], 4,
        "requirement 1: the first HTTP/2 frame from the server has type {}; wanted SETTINGS (4): \
         {header:?}",
        header[3]
    );
}

#[test]
fn http11_client_gets_http11_and_the_report() {
    let f = start_with(&[]);
    let config = client_config(&[f.ca.der()], &[HTTP11], TLS13_ONLY);
    let mut session = expect_session(
        handshake(f.server.addr(), "localhost", config),
        "http/1.1 client",
    );
    assert_eq!(
        session.alpn().as_deref(),
        Some("http/1.1"),
        "requirement 1: ALPN for a client offering only http/1.1"
    );
    let (status, body) = http11_get(&mut session, "localhost");
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "requirement 1: status line {status:?}; wanted HTTP/1.1 200"
    );
    for line in ["tls: TLSv1_3", "alpn: http/1.1", "sni: localhost"] {
        assert!(
            body.lines().any(|l| l == line),
            "requirement 1: the report lacks the line {line:?}: {body:?}"
        );
    }

    // A client that offers no ALPN at all still gets HTTP/1.1.
    let config = client_config(&[f.ca.der()], &[], TLS13_ONLY);
    let mut session = expect_session(
        handshake(f.server.addr(), "localhost", config),
        "client without ALPN",
    );
    assert_eq!(
        session.alpn(),
        None,
        "requirement 1: a client offering no ALPN gets none back"
    );
    let (status, body) = http11_get(&mut session, "localhost");
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "requirement 1: without ALPN the status line is {status:?}; wanted HTTP/1.1 200"
    );
    assert!(
        body.lines().any(|l| l == "alpn: -"),
        "requirement 1: the report for a client without ALPN lacks `alpn: -`: {body:?}"
    );
}

#[tokio::test]
async fn reqwest_gets_the_report_over_http2() {
    let f = start_with(&[]);
    let config = client_config(&[f.ca.der()], &[H2, HTTP11], ANY_VERSION);
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .resolve("localhost", f.server.addr())
        .timeout(labkit::net::NET_TIMEOUT)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/", f.server.addr().port());
    let response = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("requirement 1: GET {url} with reqwest failed: {e}"));
    assert_eq!(response.status(), 200, "requirement 1: status of GET {url}");
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "requirement 1: reqwest offered h2 and must be served HTTP/2"
    );
    let body = response.text().await.expect("the body of the report");
    for line in ["tls: TLSv1_3", "alpn: h2", "sni: localhost"] {
        assert!(
            body.lines().any(|l| l == line),
            "requirement 1: the report lacks the line {line:?}: {body:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Requirement 2: a client that does not trust the CA refuses the server.
// ---------------------------------------------------------------------------------------------

#[test]
fn client_without_the_ca_fails_with_unknown_issuer() {
    let f = start_with(&[]);
    let stranger = Ca::new("some other CA");
    let config = client_config(&[stranger.der()], &[H2, HTTP11], ANY_VERSION);
    let error = expect_certificate_error(
        handshake(f.server.addr(), "localhost", config),
        "client trusting another CA",
    );
    assert_eq!(
        error,
        CertificateError::UnknownIssuer,
        "requirement 2: the error of a client trusting another CA"
    );

    // The server survives a refused handshake.
    let config = client_config(&[f.ca.der()], &[H2, HTTP11], ANY_VERSION);
    expect_session(
        handshake(f.server.addr(), "localhost", config),
        "requirement 2: the next client, after a refused handshake",
    );
}

#[test]
fn a_silent_client_does_not_hold_up_other_handshakes() {
    let f = start_with(&[]);
    // Two clients connect first and stall: one says nothing, one sends half a TLS record
    // header. A server that handshakes one connection at a time sits in their handshakes (until
    // its handshake timeout) and every client behind them times out.
    let silent = labkit::net::connect(f.server.addr());
    let mut half = labkit::net::connect(f.server.addr());
    half.write_all(&[0x16, 0x03, 0x01]).unwrap();
    for i in 0..3 {
        let config = client_config(&[f.ca.der()], &[HTTP11], TLS13_ONLY);
        let mut session = handshake(f.server.addr(), "localhost", config).unwrap_or_else(|e| {
            panic!(
                "requirement 2: handshake {i} failed ({e:?}) while two other clients stalled \
                 theirs; wanted it served at once: one task per connection"
            )
        });
        let (status, _) = http11_get(&mut session, "localhost");
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "requirement 2: request {i} next to two stalled clients got {status:?}; wanted 200"
        );
    }
    drop((silent, half));
}

#[test]
fn sends_the_whole_chain_from_the_cert_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::new("grader root CA");
    let intermediate = root.intermediate("grader intermediate CA");
    let leaf = intermediate.leaf(&["localhost"], false);
    let (cert, key) = leaf.write(dir.path(), "chain", &[&intermediate]);
    let server = Server::start(lab_bin!(), &["--cert", &cert, "--key", &key]);

    // The client trusts the root only: it can verify the leaf only if the server also sends
    // the intermediate.
    let config = client_config(&[root.der()], &[HTTP11], ANY_VERSION);
    let session = expect_session(
        handshake(server.addr(), "localhost", config),
        "requirement 1: a client trusting the root only (the server must send the intermediate)",
    );
    let chain = session.peer_chain();
    assert!(
        chain == vec![leaf.der, intermediate.der()],
        "requirement 1: the server sent {} certificate(s); wanted 2, the leaf then the \
         intermediate, as in the --cert file",
        chain.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 3: SNI picks the certificate.
// ---------------------------------------------------------------------------------------------

#[test]
fn sni_picks_the_certificate_for_the_requested_name() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("grader root CA");
    let main = ca.leaf(&["localhost", "127.0.0.1"], false);
    let other_name = random_host();
    let other = ca.leaf(&[&other_name], false);
    let (cert, key) = main.write(dir.path(), "main", &[]);
    let (other_cert, other_key) = other.write(dir.path(), "other", &[]);
    // Host names are case-insensitive: the command line says SVC-....TEST, the client asks
    // for svc-....test.
    let sni = format!(
        "{}={other_cert},{other_key}",
        other_name.to_ascii_uppercase()
    );
    let server = Server::start(lab_bin!(), &["--cert", &cert, "--key", &key, "--sni", &sni]);

    for _ in 0..2 {
        let config = client_config(&[ca.der()], &[HTTP11], ANY_VERSION);
        let mut session = expect_session(
            handshake(server.addr(), &other_name, config),
            &format!(
                "requirement 3: SNI {other_name} (given as --sni {} on the command line)",
                other_name.to_ascii_uppercase()
            ),
        );
        assert!(
            session.peer_chain().first() == Some(&other.der),
            "requirement 3: SNI {other_name} got another certificate than its --sni one"
        );
        let (_, body) = http11_get(&mut session, &other_name);
        let line = format!("sni: {other_name}");
        assert!(
            body.lines().any(|l| l == line),
            "requirement 3: the report lacks {line:?}: {body:?}"
        );

        let config = client_config(&[ca.der()], &[HTTP11], ANY_VERSION);
        let session = expect_session(
            handshake(server.addr(), "localhost", config),
            "requirement 3: SNI localhost",
        );
        assert!(
            session.peer_chain().first() == Some(&main.der),
            "requirement 3: SNI localhost got another certificate than the default (--cert)"
        );
    }
}

#[test]
fn unknown_or_absent_sni_gets_the_default_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("grader root CA");
    let main = ca.leaf(&["localhost", "127.0.0.1"], false);
    let other_name = random_host();
    let other = ca.leaf(&[&other_name], false);
    let (cert, key) = main.write(dir.path(), "main", &[]);
    let (other_cert, other_key) = other.write(dir.path(), "other", &[]);
    let sni = format!("{other_name}={other_cert},{other_key}");
    let server = Server::start(lab_bin!(), &["--cert", &cert, "--key", &key, "--sni", &sni]);

    // Connecting to an IP address sends no SNI: the default certificate (which names
    // 127.0.0.1) is served and verifies.
    let config = client_config(&[ca.der()], &[HTTP11], ANY_VERSION);
    let mut session = expect_session(
        handshake(server.addr(), "127.0.0.1", config),
        "requirement 3: a client without SNI (it connects to 127.0.0.1) gets the default certificate",
    );
    assert!(
        session.peer_chain().first() == Some(&main.der),
        "requirement 3: a client without SNI got another certificate than the default (--cert)"
    );
    let (_, body) = http11_get(&mut session, "127.0.0.1");
    assert!(
        body.lines().any(|l| l == "sni: -"),
        "requirement 3: the report for a client without SNI lacks `sni: -`: {body:?}"
    );

    // A name the server does not know: the default certificate too, which the client rejects
    // because it does not name that host.
    let unknown = random_host();
    let config = client_config(&[ca.der()], &[HTTP11], ANY_VERSION);
    let error = expect_certificate_error(
        handshake(server.addr(), &unknown, config),
        &format!("requirement 3: SNI {unknown} (unknown to the server)"),
    );
    assert!(
        matches!(
            error,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
        ),
        "requirement 3: an unknown name gets the default certificate, which the client rejects \
         with NotValidForName; got {error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 4: plain HTTP on the TLS port is closed cleanly; the server keeps serving.
// ---------------------------------------------------------------------------------------------

#[test]
fn plain_http_gets_a_clean_close_and_the_server_keeps_serving() {
    let f = start_with(&[]);
    for _ in 0..3 {
        let mut tcp = labkit::net::connect(f.server.addr());
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).unwrap_or_else(|e| {
            panic!(
                "requirement 4: after plain HTTP the server must close the connection (end of \
                 file); got {e} after {answer:?}"
            )
        });
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "requirement 4: only a TLS alert record (0x15...) may come back; got {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
    let config = client_config(&[f.ca.der()], &[HTTP11], ANY_VERSION);
    let mut session = expect_session(
        handshake(f.server.addr(), "localhost", config),
        "requirement 4: a TLS client after three plain-HTTP ones",
    );
    let (status, _) = http11_get(&mut session, "localhost");
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "requirement 4: after plain-HTTP clients the status line is {status:?}; wanted 200"
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 5: an expired leaf is refused by the client.
// ---------------------------------------------------------------------------------------------

#[test]
fn expired_leaf_is_refused_by_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("grader root CA");
    let leaf = ca.leaf(&["localhost"], true);
    let (cert, key) = leaf.write(dir.path(), "expired", &[]);
    let server = Server::start(lab_bin!(), &["--cert", &cert, "--key", &key]);
    let config = client_config(&[ca.der()], &[HTTP11], ANY_VERSION);
    let error = expect_certificate_error(
        handshake(server.addr(), "localhost", config),
        "requirement 5: an expired leaf",
    );
    assert!(
        matches!(
            error,
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "requirement 5: wanted the client's Expired error; got {error:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 6: TLS 1.3 only by default; `--tls12` also accepts TLS 1.2.
// ---------------------------------------------------------------------------------------------

#[test]
fn tls12_is_refused_by_default_and_accepted_with_the_flag() {
    let f = start_with(&[]);
    let config = client_config(&[f.ca.der()], &[HTTP11], TLS13_ONLY);
    expect_session(
        handshake(f.server.addr(), "localhost", config),
        "requirement 6: a TLS 1.3 client",
    );
    let config = client_config(&[f.ca.der()], &[HTTP11], TLS12_ONLY);
    assert!(
        handshake(f.server.addr(), "localhost", config).is_err(),
        "requirement 6: a TLS 1.2-only client was served without --tls12; wanted a refusal"
    );

    let f = start_with(&["--tls12"]);
    let config = client_config(&[f.ca.der()], &[HTTP11], TLS12_ONLY);
    let mut session = expect_session(
        handshake(f.server.addr(), "localhost", config),
        "requirement 6: a TLS 1.2 client with --tls12",
    );
    assert_eq!(
        session.version(),
        Some(rustls::ProtocolVersion::TLSv1_2),
        "requirement 6: the version negotiated with a TLS 1.2-only client"
    );
    let (_, body) = http11_get(&mut session, "localhost");
    assert!(
        body.lines().any(|l| l == "tls: TLSv1_2"),
        "requirement 6: the report lacks `tls: TLSv1_2`: {body:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 7: `--generate-certs DIR` makes a CA and a leaf for localhost.
// ---------------------------------------------------------------------------------------------

#[test]
fn generates_a_ca_and_a_leaf_for_localhost_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let certs: PathBuf = dir.path().join("certs");
    let server = Server::start(lab_bin!(), &["--generate-certs", &path_str(&certs)]);

    let mut names: Vec<String> = fs::read_dir(&certs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ca.pem", "localhost.key", "localhost.pem"],
        "requirement 7: the files written in {certs:?}"
    );
    let key_mode = fs::metadata(certs.join("localhost.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        key_mode & 0o077,
        0,
        "requirement 7: localhost.key has mode {:o}; wanted it readable by its owner only (600)",
        key_mode & 0o777
    );

    let ca =
        CertificateDer::from_pem_file(certs.join("ca.pem")).expect("ca.pem is a PEM certificate");
    for name in ["localhost", "127.0.0.1"] {
        let config = client_config(std::slice::from_ref(&ca), &[H2, HTTP11], ANY_VERSION);
        let session = expect_session(
            handshake(server.addr(), name, config),
            &format!("requirement 7: {name} with the ca.pem the server wrote"),
        );
        assert_eq!(
            session.version(),
            Some(rustls::ProtocolVersion::TLSv1_3),
            "requirement 7: the version negotiated with the generated leaf"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Requirement 8: bad files are a clear error, never a panic.
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_certificate_files_give_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("grader root CA");
    let (cert, key) = ca
        .leaf(&["localhost"], false)
        .write(dir.path(), "good", &[]);
    let (_, other_key) = ca
        .leaf(&["localhost"], false)
        .write(dir.path(), "other", &[]);
    let missing = path_str(&dir.path().join("missing.pem"));
    let garbage = path_str(&dir.path().join("garbage.pem"));
    fs::write(&garbage, "this is not a certificate\n").unwrap();

    let cases: [(&str, &str, &str); 4] = [
        (&missing, &key, &missing),
        (&cert, &missing, &missing),
        (&garbage, &key, &garbage),
        (&cert, &other_key, &cert),
    ];
    for (cert, key, named) in cases {
        let out = run(
            lab_bin!(),
            &["--addr", "127.0.0.1:0", "--cert", cert, "--key", key],
        );
        let stderr = out.stderr_str();
        assert_eq!(
            out.code(),
            Some(1),
            "requirement 8: --cert {cert} --key {key}: exit code; wanted 1; stderr: {stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "requirement 8: --cert {cert} --key {key} panicked; wanted a message: {stderr}"
        );
        assert!(
            stderr.contains(named),
            "requirement 8: stderr does not name {named}: {stderr:?}"
        );
        assert!(
            !out.stdout_str().contains("listening on"),
            "requirement 8: --cert {cert} --key {key} started listening; wanted an exit before"
        );
    }

    let out = run(lab_bin!(), &["--addr", "127.0.0.1:0", "--cert", &cert]);
    assert_eq!(
        out.code(),
        Some(2),
        "requirement 8: --cert without --key: exit code; wanted 2 (usage error): {}",
        out.stderr_str()
    );
}
