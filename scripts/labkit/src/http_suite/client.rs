//! A real client (hyper-util's), for the happy paths.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::net::NET_TIMEOUT;

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// A body sent in pieces, length unknown in advance: hyper sends it with chunked encoding.
pub(crate) struct Pieces(pub(crate) VecDeque<Bytes>);

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

/// Runs `future` on a fresh single-threaded runtime.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(future)
}

pub(crate) fn http1_client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A received response: status, headers, whole body.
pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    pub(crate) version: hyper::Version,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: Bytes,
}

impl Fetched {
    pub(crate) fn content_type(&self) -> String {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

pub(crate) async fn fetch(
    client: &Client<HttpConnector, Body>,
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: Body,
) -> Fetched {
    let mut request = hyper::Request::builder().method(method.clone()).uri(url);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let request = request.body(body).expect("a valid request");
    let what = format!("{method} {url}");
    let response = tokio::time::timeout(NET_TIMEOUT, client.request(request))
        .await
        .unwrap_or_else(|_| panic!("{what}: no response within {NET_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(NET_TIMEOUT, body.collect())
        .await
        .unwrap_or_else(|_| panic!("{what}: the body did not arrive within {NET_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"))
        .to_bytes();
    Fetched {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}
