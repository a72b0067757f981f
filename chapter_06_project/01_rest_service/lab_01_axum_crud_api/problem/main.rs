//! ## Goal
//! Build the service the whole chapter grows: a JSON API for notes on axum, with validation,
//! pagination, an in-memory repository behind a trait, and errors as RFC 9457 problem documents
//! (`application/problem+json`) carrying a stable `code`. A client must never see a 500 for bad
//! input, and must be able to branch on `code` without parsing English.
//!
//! ## Requirements
//! 1. `POST /notes` with `{"title", "body"?}` answers 201, the note (version 1, title trimmed, body
//!    exactly as sent) and `Location: /notes/{id}`; `GET /notes/{id}` answers 200 and the note. An
//!    id is never given twice, even after a delete.
//! 2. `GET /notes?limit=&offset=` answers `{"items", "total", "limit", "offset"}`, items ordered by
//!    id; `limit` defaults to 20 and must be 1..=100, `offset` defaults to 0; a bad value is 400
//!    `invalid_query`.
//! 3. `PUT /notes/{id}` with `{"title", "body"?, "version"}` replaces the note and bumps the
//!    version (200); a `version` that is not the current one is 409 `version_conflict` and changes
//!    nothing; of N concurrent updates of one version exactly one wins; a title used by another
//!    note is 409 `title_taken` (on create too).
//! 4. `DELETE /notes/{id}` answers 204 with no body.
//! 5. An unknown note is 404 `note_not_found` on every method; an id that is not an integer is
//!    400 `invalid_id`; an unknown route is 404 `route_not_found`; a wrong method 405
//!    `method_not_allowed`.
//! 6. A title empty after trimming or over 120 characters, a body over 10 000 characters: 422
//!    `validation_failed` with `errors: [{"field", "message"}]` listing every broken field. JSON of
//!    the wrong shape (missing field, wrong type) is 422 `invalid_body`.
//! 7. Malformed JSON is 400 `malformed_json`; a body without `Content-Type: application/json` is
//!    415 `unsupported_media_type`; a body over 64 KiB is 413 `payload_too_large`. Random garbage
//!    never gets a 5xx, and every error is a problem document with `type`, `title`, `status`,
//!    `detail` and `code`.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 6.1    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `POST /notes` with `{"title", "body"?}` answers 201, the note (version 1,
//!   title trimmed, body exactly as sent) and `Location: /notes/{id}`; `GET /notes/{id}` answers
//!   200 and the note
//! - [ ] Requirement 2: `GET /notes?limit=&offset=` answers `{"items", "total", "limit",
//!   "offset"}`, items ordered by id; `limit` defaults to 20 and must be 1..=100, `offset` defaults
//!   to 0; a bad value is 400 `invalid_query`
//! - [ ] Requirement 3: `PUT /notes/{id}` with `{"title", "body"?, "version"}` replaces the note
//!   and bumps the version (200); a `version` that is not the current one is 409 `version_conflict`
//!   and changes nothing; of N concurrent updates of one version exactly one wins; a title used by
//!   another note is 409 `title_taken` (on create too)
//! - [ ] Requirement 4: `DELETE /notes/{id}` answers 204 with no body
//! - [ ] Requirement 5: An unknown note is 404 `note_not_found` on every method; an id that is not
//!   an integer is 400 `invalid_id`; an unknown route is 404 `route_not_found`; a wrong method 405
//!   `method_not_allowed`
//! - [ ] Requirement 6: A title empty after trimming or over 120 characters, a body over 10 000
//!   characters: 422 `validation_failed` with `errors: [{"field", "message"}]` listing every broken
//!   field
//! - [ ] Requirement 7: Malformed JSON is 400 `malformed_json`; a body without `Content-Type:
//!   application/json` is 415 `unsupported_media_type`; a body over 64 KiB is 413
//!   `payload_too_large`
//!
//! ## Notes
//!
//! Notes API: a JSON CRUD service on axum with RFC 9457 problem documents.
//!
//! Read README.md for the routes and the error contract; `cargo lab test 6.1` grades this file
//! through real HTTP. The server takes `--addr HOST:PORT` and prints `listening on <addr>`.
//!
//! The items below are a suggested shape: the grader only talks HTTP to the binary. Remove the
//! `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Mutex;

use axum::Router;
use axum::response::{IntoResponse, Response};
use clap::Parser;
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

/// A note as stored and as sent to clients: `{"id":1,"title":"..","body":"..","version":1}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Note {
    pub id: i64,
    pub title: String,
    pub body: String,
    /// Starts at 1 and grows by one on every update (optimistic concurrency).
    pub version: i64,
}

/// What a client sends to create a note (`body` may be absent: empty).
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

/// One broken validation rule, listed in the 422 problem's `errors` member.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Checks title (trimmed, 1..=120 characters) and body (at most 10 000 characters), reporting
/// every broken rule at once.
pub fn validate(title: &str, body: &str) -> Result<NoteContent, ApiError> {
    todo!("trim the title, check both fields, collect FieldErrors into ApiError::Validation")
}

/// Everything that can go wrong while serving a request. Each variant maps to a status and a
/// stable `code` (see the table in README.md): `note_not_found` 404, `route_not_found` 404,
/// `method_not_allowed` 405, `title_taken` 409, `version_conflict` 409, `validation_failed`
/// 422, `invalid_body` 422, `malformed_json` 400, `unsupported_media_type` 415,
/// `payload_too_large` 413, `invalid_query` 400, `invalid_id` 400.
#[derive(Debug)]
pub enum ApiError {
    NoteNotFound(i64),
    TitleTaken(String),
    VersionConflict { current: i64, sent: i64 },
    Validation(Vec<FieldError>),
    // ... add the others
}

impl IntoResponse for ApiError {
    /// An `application/problem+json` body: `type`, `title`, `status`, `detail`, `code`
    /// (and `errors` for validation failures).
    fn into_response(self) -> Response {
        todo!("status + Content-Type: application/problem+json + the problem document")
    }
}

/// Where notes live. The handlers only know this trait, so lab 2 can swap the map for
/// PostgreSQL. `impl Future + Send` lets a multi-threaded runtime move handler futures.
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

/// Notes in a `BTreeMap` behind a `std::sync::Mutex` (never held across an `.await`).
#[derive(Default)]
pub struct MemoryRepository {
    notes: Mutex<BTreeMap<i64, Note>>,
}

impl NoteRepository for MemoryRepository {
    async fn create(&self, content: NoteContent) -> Result<Note, ApiError> {
        todo!("refuse a taken title, assign the next id, version 1")
    }

    async fn get(&self, id: i64) -> Result<Note, ApiError> {
        todo!("the note or NoteNotFound")
    }

    async fn list(&self, limit: u32, offset: u64) -> Result<(Vec<Note>, u64), ApiError> {
        todo!("skip offset, take limit, and count all notes")
    }

    async fn update(
        &self,
        id: i64,
        content: NoteContent,
        expected_version: i64,
    ) -> Result<Note, ApiError> {
        todo!("NoteNotFound, VersionConflict, TitleTaken, else replace and bump the version")
    }

    async fn delete(&self, id: i64) -> Result<(), ApiError> {
        todo!("remove or NoteNotFound")
    }
}

/// The whole API: `POST/GET /notes`, `GET/PUT/DELETE /notes/{id}`, a problem-document
/// fallback for unknown routes and wrong methods, and a body size limit.
pub fn app<R: NoteRepository>(repo: R) -> Router {
    todo!("routes, fallback, method_not_allowed_fallback, DefaultBodyLimit, state")
}

/// Where the server listens when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// The command line, ready to use: `Config::parse()` (clap answers `--help`, and exits with
/// code 2 on a bad argument).
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
    todo!("Config::parse(), bind, print `listening on <addr>`, axum::serve(app(..))")
}
