//! Notes API with structured logging: lab 1's service, observable from its logs.
//!
//! Every request runs inside one `request` span carrying its method, route template and
//! request id; one `request completed` event closes it with the status and the latency. Logs
//! are JSON lines on stderr, so a log pipeline can filter on fields instead of grepping text.
//! Errors are logged once, where they become a response, with their whole cause chain; the
//! client gets a stable code and nothing of our internals.
//!
//! Writes are also appended to a journal file (`--journal PATH`, a write-ahead log: the line is
//! written before memory changes), which gives the service an honest way to fail.

use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::{Instrument, Span, debug, error, error_span, field, info, info_span};
use tracing_subscriber::EnvFilter;

/// Largest request body accepted; a bigger one gets 413 (as a problem document).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest title, in characters (after trimming).
pub const MAX_TITLE_CHARS: usize = 120;
/// Longest body, in characters.
pub const MAX_BODY_CHARS: usize = 10_000;
/// Page size when `limit` is absent, and the largest one allowed.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

// ---------------------------------------------------------------------------------------------
// The resource

/// A note as stored and as sent to clients.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Note {
    pub id: i64,
    pub title: String,
    pub body: String,
    /// Starts at 1 and grows by one on every update: the client sends back the version it read,
    /// and an update based on an old version is refused (optimistic concurrency).
    pub version: i64,
}

/// What a client sends to create a note.
#[derive(Debug, Deserialize)]
pub struct CreateNote {
    pub title: String,
    #[serde(default)]
    pub body: String,
}

/// What a client sends to replace a note: the new content and the version it was based on.
#[derive(Debug, Deserialize)]
pub struct UpdateNote {
    pub title: String,
    #[serde(default)]
    pub body: String,
    pub version: i64,
}

/// Validated content of a note (title trimmed).
#[derive(Debug, Clone)]
pub struct NoteContent {
    pub title: String,
    pub body: String,
}

/// Checks the business rules serde cannot express, and reports every broken rule at once:
/// a form can then show all its errors in one round trip.
pub fn validate(title: &str, body: &str) -> Result<NoteContent, ApiError> {
    let title = title.trim();
    let mut errors = Vec::new();
    if title.is_empty() {
        errors.push(FieldError::new("title", "must not be empty"));
    } else if title.chars().count() > MAX_TITLE_CHARS {
        errors.push(FieldError::new(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        errors.push(FieldError::new(
            "body",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    if errors.is_empty() {
        Ok(NoteContent {
            title: title.to_string(),
            body: body.to_string(),
        })
    } else {
        Err(ApiError::Validation(errors))
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: one type for the whole service, rendered as RFC 9457 problem documents

/// One broken validation rule.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

/// Everything that can go wrong while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("note {0} does not exist")]
    NoteNotFound(i64),
    #[error("no route for {0}")]
    RouteNotFound(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("a note titled {0:?} already exists")]
    TitleTaken(String),
    #[error("the note is at version {current}, the update was based on version {sent}")]
    VersionConflict { current: i64, sent: i64 },
    #[error("the request body breaks {} rule(s)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    MalformedJson(String),
    #[error("expected a body with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    #[error("{0}")]
    InvalidQuery(String),
    #[error("{0}")]
    InvalidId(String),
    /// The journal could not be written: our problem, not the client's.
    #[error("cannot append to the journal {path}")]
    Journal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ApiError {
    /// Status, stable code and short title of each error. The code is the contract.
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            NoteNotFound(_) => (StatusCode::NOT_FOUND, "note_not_found", "Note not found"),
            RouteNotFound(_) => (StatusCode::NOT_FOUND, "route_not_found", "Route not found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            TitleTaken(_) => (StatusCode::CONFLICT, "title_taken", "Title already taken"),
            VersionConflict { .. } => (
                StatusCode::CONFLICT,
                "version_conflict",
                "The note was changed by someone else",
            ),
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            // Well-formed JSON of the wrong shape (a missing field, a number for a string) is
            // also a 422: the syntax is fine, the content is not.
            InvalidJson(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "The body does not match the expected schema",
            ),
            MalformedJson(_) => (
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "The body is not valid JSON",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            InvalidQuery(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "Invalid query parameters",
            ),
            InvalidId(_) => (StatusCode::BAD_REQUEST, "invalid_id", "Invalid note id"),
            Journal { .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal error",
            ),
        }
    }
}

/// The RFC 9457 body. `type` is a URI naming the problem kind; `code` is our extension member
/// that clients match on.
#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, title) = self.parts();
        // Server errors are logged here, the one place every error passes through, inside the
        // request span (so the line carries the request id). Client errors are not errors of
        // ours: the `request completed` line with its 4xx status says enough.
        let detail = if status.is_server_error() {
            error!(error = %cause_chain(&self), code, "request failed");
            "an internal error occurred; the request id identifies it in our logs".to_string()
        } else {
            self.to_string()
        };
        let problem = Problem {
            kind: format!("https://notes.example/problems/{}", code.replace('_', "-")),
            title,
            status: status.as_u16(),
            detail,
            code,
            errors: match &self {
                ApiError::Validation(errors) => Some(errors),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).expect("a problem always serializes");
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// `top: cause: cause of the cause`: what `{:#}` prints for an `anyhow::Error`. `Display` of
/// an error shows only its own level; the sources hold the rest of the story (here, the
/// `errno` that says *why* the write failed).
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<JsonRejection> for ApiError {
    /// axum tells us *why* the body was refused; each reason has its own status.
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::InvalidJson(e.body_text()),
            JsonRejection::JsonSyntaxError(e) => ApiError::MalformedJson(e.body_text()),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            // Reading the body failed: past DefaultBodyLimit that is a 413, else a bad body.
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            other => ApiError::MalformedJson(other.body_text()),
        }
    }
}

/// `Json<T>` whose rejections are problem documents instead of axum's plain-text ones.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

fn note_id(path: Result<Path<i64>, PathRejection>) -> Result<i64, ApiError> {
    match path {
        Ok(Path(id)) => Ok(id),
        Err(e) => Err(ApiError::InvalidId(e.body_text())),
    }
}

// ---------------------------------------------------------------------------------------------
// Storage behind a trait

/// Where notes live. The handlers only know this trait, so lab 2 swaps the in-memory map for
/// PostgreSQL without touching a handler. Methods return `impl Future + Send` (async fn in a
/// trait) so a multi-threaded runtime can move the handler futures between threads.
pub trait NoteRepository: Send + Sync + 'static {
    fn create(&self, content: NoteContent) -> impl Future<Output = Result<Note, ApiError>> + Send;
    fn get(&self, id: i64) -> impl Future<Output = Result<Note, ApiError>> + Send;
    /// One page of notes ordered by id, and the total number of notes.
    fn list(
        &self,
        limit: u32,
        offset: u64,
    ) -> impl Future<Output = Result<(Vec<Note>, u64), ApiError>> + Send;
    fn update(
        &self,
        id: i64,
        content: NoteContent,
        expected_version: i64,
    ) -> impl Future<Output = Result<Note, ApiError>> + Send;
    fn delete(&self, id: i64) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// Notes in a `BTreeMap` (ordered by id, which makes pagination stable).
///
/// A `std::sync::Mutex` is right here even in async code: the lock is held for a few
/// map operations and never across an `.await`, so it can never block the runtime for long.
#[derive(Default)]
pub struct MemoryRepository {
    inner: Mutex<MemoryInner>,
    journal: Option<Journal>,
}

impl MemoryRepository {
    pub fn new(journal: Option<Journal>) -> MemoryRepository {
        MemoryRepository {
            inner: Mutex::default(),
            journal,
        }
    }

    /// Appends one record before a change is applied: if the write fails, nothing changes.
    fn log(&self, op: &'static str, record: serde_json::Value) -> Result<(), ApiError> {
        match &self.journal {
            Some(journal) => journal.append(op, &record),
            None => Ok(()),
        }
    }
}

/// An append-only file of JSON lines, one per write.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    pub fn open(path: PathBuf) -> std::io::Result<Journal> {
        let file = File::options().create(true).append(true).open(&path)?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    /// A child span of the request: in the logs, its events nest under the request's.
    /// The write is small and the file is local, so it is done in place; a slow disk would
    /// call for `spawn_blocking` (or a dedicated writer task).
    fn append(&self, op: &'static str, record: &serde_json::Value) -> Result<(), ApiError> {
        let _span = info_span!("journal", op).entered();
        let mut line = serde_json::to_vec(&serde_json::json!({"op": op, "record": record}))
            .expect("JSON values serialize");
        line.push(b'\n');
        self.file
            .lock()
            .unwrap()
            .write_all(&line)
            .map_err(|source| ApiError::Journal {
                path: self.path.clone(),
                source,
            })?;
        debug!(bytes = line.len(), "journal appended");
        Ok(())
    }
}

#[derive(Default)]
struct MemoryInner {
    next_id: i64,
    notes: BTreeMap<i64, Note>,
}

impl MemoryInner {
    fn title_taken(&self, title: &str, except: Option<i64>) -> bool {
        self.notes
            .values()
            .any(|n| n.title == title && Some(n.id) != except)
    }
}

impl NoteRepository for MemoryRepository {
    async fn create(&self, content: NoteContent) -> Result<Note, ApiError> {
        let mut inner = self.inner.lock().unwrap();
        if inner.title_taken(&content.title, None) {
            return Err(ApiError::TitleTaken(content.title));
        }
        let note = Note {
            id: inner.next_id + 1,
            title: content.title,
            body: content.body,
            version: 1,
        };
        self.log("create", serde_json::json!(note))?;
        inner.next_id += 1;
        inner.notes.insert(note.id, note.clone());
        Ok(note)
    }

    async fn get(&self, id: i64) -> Result<Note, ApiError> {
        let inner = self.inner.lock().unwrap();
        inner
            .notes
            .get(&id)
            .cloned()
            .ok_or(ApiError::NoteNotFound(id))
    }

    async fn list(&self, limit: u32, offset: u64) -> Result<(Vec<Note>, u64), ApiError> {
        let inner = self.inner.lock().unwrap();
        let page = inner
            .notes
            .values()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .cloned()
            .collect();
        Ok((page, inner.notes.len() as u64))
    }

    async fn update(
        &self,
        id: i64,
        content: NoteContent,
        expected_version: i64,
    ) -> Result<Note, ApiError> {
        let mut inner = self.inner.lock().unwrap();
        let current = inner
            .notes
            .get(&id)
            .map(|n| n.version)
            .ok_or(ApiError::NoteNotFound(id))?;
        if current != expected_version {
            return Err(ApiError::VersionConflict {
                current,
                sent: expected_version,
            });
        }
        if inner.title_taken(&content.title, Some(id)) {
            return Err(ApiError::TitleTaken(content.title));
        }
        let updated = Note {
            id,
            title: content.title.clone(),
            body: content.body.clone(),
            version: current + 1,
        };
        self.log("update", serde_json::json!(updated))?;
        let note = inner.notes.get_mut(&id).expect("checked above");
        note.title = content.title;
        note.body = content.body;
        note.version += 1;
        Ok(note.clone())
    }

    async fn delete(&self, id: i64) -> Result<(), ApiError> {
        let mut inner = self.inner.lock().unwrap();
        if !inner.notes.contains_key(&id) {
            return Err(ApiError::NoteNotFound(id));
        }
        self.log("delete", serde_json::json!({ "id": id }))?;
        inner
            .notes
            .remove(&id)
            .map(|_| ())
            .ok_or(ApiError::NoteNotFound(id))
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/// `?limit=&offset=`. Extracted as `Result<Query<_>, _>` so a bad value becomes our own 400.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

/// One page of a listing, with what a client needs to ask for the next one.
#[derive(Debug, Serialize)]
pub struct NotePage {
    pub items: Vec<Note>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

/// The whole API. Generic over the repository so tests and later labs can plug in another one.
pub fn app<R: NoteRepository>(repo: R) -> Router {
    Router::new()
        .route("/notes", get(list_notes::<R>).post(create_note::<R>))
        .route(
            "/notes/{id}",
            get(get_note::<R>)
                .put(update_note::<R>)
                .delete(delete_note::<R>),
        )
        .fallback(|req: Request| async move { ApiError::RouteNotFound(req.uri().path().into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // `route_layer` runs after routing, where the matched route template is known.
        .route_layer(middleware::from_fn(record_route))
        // Bodies are buffered before JSON parsing: cap them so one client cannot eat our memory.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(trace_request))
        .with_state(Arc::new(repo))
}

/// The header that carries a request's id from hop to hop.
pub const REQUEST_ID: &str = "x-request-id";

/// Marks responses of matched routes, so `trace_request` knows the route was recorded.
#[derive(Clone, Copy)]
struct RouteRecorded;

/// Records the route *template* (`/notes/{id}`, not `/notes/42`) on the request span: a
/// template has a handful of values, a raw path one per note, which would make the field
/// useless for grouping.
async fn record_route(matched: MatchedPath, req: Request, next: Next) -> Response {
    Span::current().record("route", matched.as_str());
    let mut response = next.run(req).await;
    response.extensions_mut().insert(RouteRecorded);
    response
}

/// Keeps a client's request id when it looks sane (so one id follows a request across
/// services), else makes one up. Ids are echoed, so never trust them blindly.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// One span per request, one `request completed` event per request.
async fn trace_request(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    // Fields declared `Empty` are filled in later with `record`; a span's fields are fixed
    // at creation, so they must be declared up front. The span is at ERROR level on purpose:
    // a span's level only decides whether it *exists* under a filter (spans print nothing by
    // themselves). An INFO span would vanish under `RUST_LOG=warn`, and the error lines that
    // remain would lose their request id exactly when we need it.
    let span = error_span!(
        "request",
        method = %req.method(),
        route = field::Empty,
        request_id = %id,
    );
    let start = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    if response.extensions().get::<RouteRecorded>().is_none() {
        span.record("route", "unmatched");
    }
    let status = response.status().as_u16();
    span.in_scope(|| info!(status, latency_ms, "request completed"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

async fn create_note<R: NoteRepository>(
    State(repo): State<Arc<R>>,
    ApiJson(input): ApiJson<CreateNote>,
) -> Result<Response, ApiError> {
    let content = validate(&input.title, &input.body)?;
    let note = repo.create(content).await?;
    let location = format!("/notes/{}", note.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(note),
    )
        .into_response())
}

async fn get_note<R: NoteRepository>(
    State(repo): State<Arc<R>>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<Json<Note>, ApiError> {
    Ok(Json(repo.get(note_id(path)?).await?))
}

async fn list_notes<R: NoteRepository>(
    State(repo): State<Arc<R>>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<NotePage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidQuery(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let offset = query.offset.unwrap_or(0);
    let (items, total) = repo.list(limit, offset).await?;
    Ok(Json(NotePage {
        items,
        total,
        limit,
        offset,
    }))
}

async fn update_note<R: NoteRepository>(
    State(repo): State<Arc<R>>,
    path: Result<Path<i64>, PathRejection>,
    ApiJson(input): ApiJson<UpdateNote>,
) -> Result<Json<Note>, ApiError> {
    let id = note_id(path)?;
    let content = validate(&input.title, &input.body)?;
    Ok(Json(repo.update(id, content, input.version).await?))
}

async fn delete_note<R: NoteRepository>(
    State(repo): State<Arc<R>>,
    path: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    repo.delete(note_id(path)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------------
// Process

/// Where the server listens when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// The command line: `ch6_structured_logging [--addr HOST:PORT] [--journal PATH]`.
#[derive(Debug, Parser)]
#[command(
    name = "ch6_structured_logging",
    about = "The notes API with structured JSON logs on stderr (RUST_LOG filters them)"
)]
pub struct Config {
    /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Append every write to this file before applying it (no journal when absent)
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
}

/// JSON lines on stderr, filtered by `RUST_LOG` (default `info`). Each event carries its
/// span (`span`) and the whole stack of spans it sits in (`spans`), outermost first.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    // `--help` prints the usage (exit 0); a bad argument is a usage error (exit 2).
    let config = Config::parse();
    init_tracing();
    let journal = match config.journal.map(Journal::open).transpose() {
        Ok(journal) => journal,
        Err(e) => {
            error!(error = %cause_chain(&e), "cannot open the journal");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            error!(error = %cause_chain(&e), addr = %config.addr, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .expect("a bound socket has an address");
    // The one plain line on stdout: what scripts (and the grader) wait for.
    println!("listening on {local}");
    info!(addr = %local, "server started");
    if let Err(e) = axum::serve(listener, app(MemoryRepository::new(journal))).await {
        error!(error = %cause_chain(&e), "server failed");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
