//! Notes API: a JSON CRUD service on axum with RFC 9457 problem documents.
//!
//! The shape of the service is the one the rest of the chapter grows: a router that knows HTTP,
//! a repository trait that knows storage, and one error type that turns every failure into a
//! `application/problem+json` response with a stable `code`. Clients branch on `code`, never on
//! the human-readable `title` or `detail`, so those may change without breaking anybody.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
        let problem = Problem {
            kind: format!("https://notes.example/problems/{}", code.replace('_', "-")),
            title,
            status: status.as_u16(),
            detail: self.to_string(),
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
        inner.next_id += 1;
        let note = Note {
            id: inner.next_id,
            title: content.title,
            body: content.body,
            version: 1,
        };
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
        let note = inner.notes.get_mut(&id).expect("checked above");
        note.title = content.title;
        note.body = content.body;
        note.version += 1;
        Ok(note.clone())
    }

    async fn delete(&self, id: i64) -> Result<(), ApiError> {
        let mut inner = self.inner.lock().unwrap();
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
        // Bodies are buffered before JSON parsing: cap them so one client cannot eat our memory.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(repo))
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

/// The command line: `ch6_axum_crud_api [--addr HOST:PORT]`.
#[derive(Debug, Parser)]
#[command(
    name = "ch6_axum_crud_api",
    about = "The notes API: JSON CRUD on axum, errors as RFC 9457 problem documents"
)]
pub struct Config {
    /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
}

#[tokio::main]
async fn main() -> ExitCode {
    // `--help` prints the usage (exit 0); a bad argument is a usage error (exit 2).
    let Config { addr } = Config::parse();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener
        .local_addr()
        .expect("a bound socket has an address");
    println!("listening on {local}");
    if let Err(e) = axum::serve(listener, app(MemoryRepository::default())).await {
        eprintln!("error: server failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
