//! The server of lab 3.3, rewritten with axum:
//! `axum_server [--addr HOST:PORT] [--root DIR] [--request-timeout SECONDS]`.
//!
//! Same routes, same limits, same status codes, same grader. What lab 3.3 wrote by hand now
//! comes from the stack, layer by layer:
//!
//! | lab 3.3 (by hand)                    | here                                               |
//! |--------------------------------------|----------------------------------------------------|
//! | request parser, chunked decoder      | hyper's HTTP/1.1 codec                             |
//! | keep-alive, pipelining, `HEAD` bodies| hyper                                              |
//! | 431 over 8 KiB of head               | hyper: `max_buf_size(8 KiB)`                       |
//! | slow head (slowloris)                | hyper: `header_read_timeout`                       |
//! | slow body                            | tower-http: `TimeoutLayer` (408)                   |
//! | 413 over 1 MiB of body               | tower-http: `RequestBodyLimitLayer`                |
//! | routing, 404, 405                    | axum's `Router`                                    |
//! | `/static`, traversal, content types  | tower-http: `ServeDir`                             |
//! | 501 for unknown methods              | a ten-line middleware (hyper accepts any token)    |
//! | close after a refusal                | hyper; a middleware adds `Connection: close`       |
//!
//! And one thing lab 3.3 does not do at all: HTTP/2. hyper-util's `auto` builder looks at the
//! first bytes of each connection; the HTTP/2 connection preface (`PRI * HTTP/2.0...`) switches
//! it to HTTP/2 ("prior knowledge", h2c), anything else is HTTP/1.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{CONNECTION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::timeout::TimeoutLayer;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Largest request head, in bytes: more is a 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body, in bytes: more is a 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// The body of `GET /`.
pub const GREETING: &str = "hello, world\n";

/// The routes. Layers wrap everything added before them, so the last `.layer` runs first:
/// unknown methods are refused before anything else looks at the request.
pub fn app(root: &Path, request_timeout: Duration) -> Router {
    // ServeDir decodes the path, refuses `..` and absolute components (404), guesses the
    // content type from the extension, and answers HEAD. No index.html for directories: this
    // server serves files only, like lab 3.3.
    let files = ServeDir::new(root).append_index_html_on_directories(false);
    Router::new()
        .route("/", get(greeting))
        .route("/echo", post(echo))
        .nest_service("/static", files)
        // 413 over 1 MiB. axum's own `DefaultBodyLimit` only counts the bytes as they arrive,
        // so a client announcing 1 GiB and sending nothing would wait for its answer;
        // `RequestBodyLimitLayer` refuses from `Content-Length` before reading the body, and
        // counts a chunked body as it arrives.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        // The whole request, body included, must be handled within the timeout; a client that
        // stops sending its body gets a 408, and hyper closes a connection whose body was left
        // unread.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn(refuse_unknown_methods))
        .layer(middleware::from_fn(close_after_refusals))
}

/// `get(..)` answers HEAD too: axum runs the GET handler and drops the body.
async fn greeting() -> &'static str {
    GREETING // a `&str` becomes `text/plain; charset=utf-8`
}

/// `Bytes` reads the whole body (up to the `DefaultBodyLimit`, else 413).
async fn echo(headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    ([(CONTENT_TYPE, content_type)], body).into_response()
}

/// hyper accepts any method token (`BREW` is a valid extension method) and axum would answer
/// 405 for a known path. An unknown method deserves 501 Not Implemented.
async fn refuse_unknown_methods(request: Request, next: Next) -> Response {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::PATCH,
        Method::TRACE,
        Method::CONNECT,
    ];
    if KNOWN.contains(request.method()) {
        next.run(request).await
    } else {
        StatusCode::NOT_IMPLEMENTED.into_response()
    }
}

/// A refused request ends its connection, as in lab 3.3. hyper closes by itself after its own
/// refusals (400, 431) and after a response that left the body unread; a 413 found while
/// decoding a chunked body (read to its end) and our 501 would otherwise keep the connection
/// alive. `Connection: close` on the response makes hyper close once it is sent.
async fn close_after_refusals(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if matches!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::NOT_IMPLEMENTED
    ) {
        let close = HeaderValue::from_static("close");
        response.headers_mut().insert(CONNECTION, close);
    }
    response
}

/// Accepts connections forever and serves each with HTTP/1.1 or HTTP/2.
///
/// This is what `axum::serve` does, unrolled, because `axum::serve` does not let us set the
/// two HTTP/1.1 limits the specification needs.
pub async fn serve(listener: TcpListener, app: Router, request_timeout: Duration) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // A deadline for the whole head, from the moment hyper starts waiting for it: a
        // client trickling one byte per second is cut off like a silent one.
        .header_read_timeout(request_timeout)
        // hyper's read buffer may not grow past this: a head that does not fit is a 431.
        .max_buf_size(MAX_HEAD);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("axum_server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let builder = builder.clone();
        tokio::spawn(async move {
            // The `auto` builder first reads until it can tell HTTP/1.1 from HTTP/2, and no
            // hyper timer runs during that read: a client that connects and says nothing would
            // hold its connection forever. So we wait for its first byte ourselves (`peek`
            // leaves it in the socket for hyper).
            let mut first = [0u8; 1];
            let first_byte = tokio::time::timeout(request_timeout, stream.peek(&mut first));
            if !matches!(first_byte.await, Ok(Ok(n)) if n > 0) {
                return;
            }
            // Errors here are a client's problem (a reset, a parse error already answered).
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// What the command line asks for.
#[derive(Debug, Parser)]
#[command(
    name = "axum_server",
    about = "The server of lab 3.3 on axum, hyper and tower-http: GET /, GET /static/<path>, \
             POST /echo, over HTTP/1.1 and h2c"
)]
pub struct Args {
    /// Address to listen on
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Directory of the files served under /static/
    #[arg(long, value_name = "DIR", default_value = "public")]
    pub root: PathBuf,
    /// Seconds a client has to send one complete request
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub request_timeout: Duration,
}

/// A positive number of seconds, fractions allowed, below one day.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs < 86_400.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err("expected a number of seconds, more than 0 and less than 86400".into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = Args::parse();
    let Some(root) = std::fs::canonicalize(&config.root)
        .ok()
        .filter(|path| path.is_dir())
    else {
        eprintln!(
            "axum_server: --root {}: not a directory",
            config.root.display()
        );
        return ExitCode::from(1);
    };
    let listener = match TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("axum_server: cannot listen on {}: {e}", config.addr);
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => eprintln!("axum_server: local_addr: {e}"),
    }
    let app = app(&root, config.request_timeout);
    serve(listener, app, config.request_timeout).await;
    ExitCode::SUCCESS
}
