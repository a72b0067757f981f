//! An HTTP client for chapter 6's notes API, and the checks every capstone grader repeats:
//! RFC 9457 problem documents, the JSON form of a note, random titles and bodies.

use std::net::SocketAddr;
use std::time::Duration;

use rand::RngExt;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every request of a grader gives up after this long: a server that hangs fails the test.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "expected a JSON body, got {:?} ({e}); status {}",
                self.text, self.status
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
    }

    /// Asserts an RFC 9457 problem document with this status and stable `code`; `requirement`
    /// is the lab's requirement number, named in the first line of every failure.
    pub fn assert_problem(&self, requirement: u32, status: u16, code: &str) -> Value {
        assert!(
            self.status.as_u16() == status,
            "requirement {requirement}: wanted a {status} `{code}` problem, got status {} with body {:?}",
            self.status,
            self.text
        );
        let content_type = self.header(CONTENT_TYPE.as_str()).unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "requirement {requirement}: the {status} came as {content_type:?}; wanted \
             `application/problem+json` (body {:?})",
            self.text
        );
        let problem = self.json();
        assert!(
            problem["status"] == json!(status),
            "requirement {requirement}: the problem's `status` member is {}; wanted {status}: {problem}",
            problem["status"]
        );
        assert!(
            problem["code"] == json!(code),
            "requirement {requirement}: the problem's `code` is {}; wanted {code:?}: {problem}",
            problem["code"]
        );
        for member in ["type", "title", "detail"] {
            assert!(
                problem[member].as_str().is_some_and(|s| !s.is_empty()),
                "requirement {requirement}: the problem has no non-empty string `{member}`: {problem}"
            );
        }
        problem
    }
}

/// A client bound to one server.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        // reqwest is built with rustls but without a default crypto provider, and refuses to
        // build a client (even a plain-HTTP one) until a process-wide provider is installed.
        // A second install in the same process fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("an HTTP client");
        Api {
            base: format!("http://{addr}"),
            client,
        }
    }

    /// Sends `method path` with an optional raw body and content type.
    /// POSTs `body` (larger than the server accepts) to `path`. A server that answers 413 as
    /// soon as the limit is crossed closes the connection with the rest of the body unread, and
    /// the kernel may then reset it while the client is still sending: that race is not the
    /// server's fault, so the request is tried again (up to 5 times) before the test fails.
    pub async fn send_oversized(&self, path: &str, body: Vec<u8>) -> Reply {
        let mut last = None;
        for _ in 0..5 {
            match self
                .try_send(
                    Method::POST,
                    path,
                    Some("application/json"),
                    Some(body.clone()),
                )
                .await
            {
                Ok(reply) => return reply,
                Err(e) => last = Some(e),
            }
        }
        panic!(
            "POST {path} with a {} byte body failed 5 times: {}",
            body.len(),
            last.map(|e| e.to_string()).unwrap_or_default()
        )
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        self.try_send(method.clone(), path, content_type, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"))
    }

    /// Like [`Api::send`], with the transport error returned instead of a panic.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            request = request.header(CONTENT_TYPE, ct);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        Ok(Reply {
            status,
            headers,
            text,
        })
    }

    pub async fn json(&self, method: Method, path: &str, body: &Value) -> Reply {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send(method, path, Some("application/json"), Some(bytes))
            .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None, None).await
    }

    /// Creates a note and asserts the 201; returns the note.
    pub async fn create(&self, title: &str, body: &str) -> Value {
        let reply = self
            .json(
                Method::POST,
                "/notes",
                &json!({"title": title, "body": body}),
            )
            .await;
        assert!(
            reply.status == StatusCode::CREATED,
            "creating a note: POST /notes answered {}; wanted 201 (body {:?})",
            reply.status,
            reply.text
        );
        reply.json()
    }

    pub async fn update(&self, id: i64, title: &str, body: &str, version: i64) -> Reply {
        self.json(
            Method::PUT,
            &format!("/notes/{id}"),
            &json!({"title": title, "body": body, "version": version}),
        )
        .await
    }
}

/// A title nobody else uses in this test.
pub fn random_title() -> String {
    let mut rng = rand::rng();
    format!("note {:08x}", rng.random_range(0..u32::MAX))
}

/// A body of a few random words.
pub fn random_body() -> String {
    const WORDS: [&str; 6] = ["alpha", "beta", "gamma", "delta", "épsilon", "ζeta"];
    let mut rng = rand::rng();
    (0..rng.random_range(1..12))
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Random text of `0..=max_chars` characters for end-to-end comparisons: ASCII, accents, CJK,
/// emoji, quotes, backslashes, control characters, and whitespace at either end (a body is
/// stored as sent, never trimmed).
pub fn random_text(max_chars: usize) -> String {
    const PIECES: [&str; 14] = [
        "a",
        "Z",
        "7",
        " ",
        "\n",
        "\t",
        "\"",
        "\\",
        "é",
        "ß",
        "漢",
        "🦀",
        "\u{1}",
        "'; DROP TABLE notes; --",
    ];
    let mut rng = rand::rng();
    let want = rng.random_range(0..=max_chars);
    if want < 2 {
        return " ".repeat(want);
    }
    // Whitespace at both ends, so a server that trims the body is seen.
    let mut text = String::from(" ");
    let mut chars = 1;
    while chars < want - 1 {
        let piece = PIECES[rng.random_range(0..PIECES.len())];
        let n = piece.chars().count();
        if chars + n > want - 1 {
            text.push('x');
            chars += 1;
        } else {
            text.push_str(piece);
            chars += n;
        }
    }
    text.push('\n');
    text
}

/// Where two strings first differ, for a failure message that does not dump 10 000 characters.
pub fn first_difference(got: &str, want: &str) -> String {
    let (got_n, want_n) = (got.chars().count(), want.chars().count());
    match got.chars().zip(want.chars()).position(|(a, b)| a != b) {
        Some(i) => format!(
            "{got_n} chars against {want_n}, first difference at char {i}: {:?} against {:?}",
            got.chars().skip(i).take(12).collect::<String>(),
            want.chars().skip(i).take(12).collect::<String>()
        ),
        None if got_n == want_n => "identical".to_string(),
        None => format!("{got_n} chars against {want_n}, one is a prefix of the other"),
    }
}

/// Checks the JSON form of a note under `requirement`; returns its id.
pub fn assert_note(requirement: u32, note: &Value, title: &str, body: &str, version: i64) -> i64 {
    assert!(
        note["title"] == json!(title),
        "requirement {requirement}: the note's title is {}; wanted {title:?} (note {note})",
        note["title"]
    );
    let got_body = note["body"].as_str().unwrap_or_else(|| {
        panic!("requirement {requirement}: the note's `body` is not a string: {note}")
    });
    assert!(
        got_body == body,
        "requirement {requirement}: the note's body differs from the one sent: {}",
        first_difference(got_body, body)
    );
    assert!(
        note["version"] == json!(version),
        "requirement {requirement}: the note's version is {}; wanted {version} (note {note})",
        note["version"]
    );
    note["id"].as_i64().unwrap_or_else(|| {
        panic!("requirement {requirement}: the note's `id` is not an integer: {note}")
    })
}
