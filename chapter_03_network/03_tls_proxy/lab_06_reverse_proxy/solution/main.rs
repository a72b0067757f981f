//! Reverse proxy: `reverse_proxy --addr HOST:PORT --upstream HOST:PORT [--timeout 30s]`.
//!
//! Clients talk HTTP/1.1 to us; we forward each request to the upstream and the response back.
//! Four ideas carry the lab:
//!
//! - **Streaming**: bodies are `hyper::body::Incoming` streams that we hand over as they are,
//!   frame by frame, in both directions. Memory stays a few buffers per connection whatever
//!   the body size, and backpressure works end to end: a slow client slows the upstream read.
//! - **Two hops, two connections**: headers that describe *one* connection (hop-by-hop:
//!   `Connection` and the headers it names, `Keep-Alive`, `Transfer-Encoding`, `Upgrade`...)
//!   stop at the proxy; the proxy adds what the upstream would otherwise lose: who the client
//!   was (`X-Forwarded-For`), which scheme it used (`X-Forwarded-Proto`), that a proxy was
//!   on the way (`Via`).
//! - **Failures get a status**: upstream unreachable is `502 Bad Gateway`, upstream too slow
//!   is `504 Gateway Timeout`; the client always gets an answer.
//! - **Cancellation is dropping**: when the client goes away, hyper drops our request future,
//!   which drops the upstream request, which closes the upstream connection. Nothing to write,
//!   as long as nothing is `tokio::spawn`ed away from that future.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The name this proxy gives itself in `Via`.
pub const VIA_NAME: &str = "reverse_proxy";

/// Headers that describe one connection (RFC 9110 section 7.6.1): never forwarded.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "reverse_proxy",
    about = "Forwards HTTP requests to one upstream"
)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The server to forward to.
    #[arg(long)]
    pub upstream: SocketAddr,
    /// How long the upstream may take to answer (connect, send, response head): `500ms`, `2s`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses `250ms`, `2s`, `1.5s` or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(Duration::from_secs_f64(n * unit)),
        _ => Err(format!("not a duration like 500ms or 2s: {text:?}")),
    }
}

/// The body type we answer with: either the upstream's stream or a small error message.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// What every request needs: a client with a connection pool, where to go, how long to wait.
pub struct Proxy {
    client: Client<HttpConnector, Incoming>,
    upstream: SocketAddr,
    timeout: Duration,
}

impl Proxy {
    pub fn new(upstream: SocketAddr, timeout: Duration) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // The pool keeps upstream connections alive between requests: no handshake per request.
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Proxy {
            client,
            upstream,
            timeout,
        }
    }

    /// Forwards one request and returns the upstream's response, or a 502/504 of our own.
    pub async fn forward(
        &self,
        mut req: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<ProxyBody> {
        // The client sent `GET /path?q HTTP/1.1` (origin form); the pool needs to know where
        // to connect, so the URI becomes absolute. On the wire it is origin form again.
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let uri: Uri = match format!("http://{}{path}", self.upstream).parse() {
            Ok(uri) => uri,
            Err(_) => return error_response(StatusCode::BAD_REQUEST, "bad request target"),
        };
        *req.uri_mut() = uri;

        let version = req.version();
        let headers = req.headers_mut();
        strip_hop_by_hop(headers);
        add_forwarding_headers(headers, client, version);
        // Both sides speak HTTP/1.1 to us and to the upstream, whatever the client used.
        *req.version_mut() = Version::HTTP_11;

        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                // `Incoming` is handed over as is: each frame goes to the client as it arrives.
                Response::from_parts(parts, body.boxed())
            }
            Ok(Err(e)) => {
                eprintln!("reverse_proxy: upstream {}: {e}", self.upstream);
                error_response(StatusCode::BAD_GATEWAY, "the upstream could not be reached")
            }
            // Dropping the request future here closes the upstream connection: the upstream
            // sees the cancellation instead of working for nobody.
            Err(_) => error_response(StatusCode::GATEWAY_TIMEOUT, "the upstream took too long"),
        }
    }
}

/// Removes the hop-by-hop headers, including the ones `Connection` names (`Connection: close,
/// X-Trace` makes `X-Trace` hop-by-hop for this message).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Appends the client to `X-Forwarded-For`, sets `X-Forwarded-Proto`, appends us to `Via`.
pub fn add_forwarding_headers(headers: &mut HeaderMap, client: SocketAddr, version: Version) {
    append_to_list(headers, "x-forwarded-for", &client.ip().to_string());
    // We listen on plain HTTP. A TLS-terminating proxy says `https` here, and the application
    // behind it uses that to build redirects and secure cookies.
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    let protocol = match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    append_to_list(headers, "via", &format!("{protocol} {VIA_NAME}"));
}

/// `name: a, b` plus `c` gives `name: a, b, c` (several header lines are joined first).
fn append_to_list(headers: &mut HeaderMap, name: &'static str, item: &str) {
    let mut items: Vec<String> = headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(str::to_string)
        .collect();
    items.push(item.to_string());
    if let Ok(value) = HeaderValue::from_str(&items.join(", ")) {
        headers.insert(name, value);
    }
}

/// A short plain-text response of our own.
pub fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(format!("{status}: {message}\n")))
        .map_err(|never| match never {})
        .boxed();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("static parts are valid")
}

/// Accepts clients forever; each connection is served by hyper in its own task.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("reverse_proxy: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.forward(req, client).await) }
            });
            // While a request is in flight hyper keeps reading the client socket; an end of
            // file there ends this future, which drops `forward` and its upstream request.
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("reverse_proxy: {client}: {e}");
            }
        });
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("reverse_proxy: cannot listen on {}: {e}", args.addr);
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(local) => println!("listening on {local}"),
        Err(e) => {
            eprintln!("reverse_proxy: {e}");
            return ExitCode::from(1);
        }
    }
    serve(listener, Arc::new(Proxy::new(args.upstream, args.timeout))).await;
    ExitCode::SUCCESS
}
