//! Notes API with Prometheus metrics: lab 2's service, measurable from `/metrics`.
//!
//! Four questions an operator asks, four metrics that answer them:
//! - how much traffic, and how much of it fails? `http_requests_total{method,route,status}`;
//! - how slow? `http_request_duration_seconds{method,route}`, a histogram, so percentiles can
//!   be computed over any window and aggregated across instances (averages cannot);
//! - how busy right now? `http_requests_in_flight`;
//! - is the database the bottleneck? `db_pool_connections{state}` and
//!   `db_pool_max_connections`: a pool always fully in use means requests queue for it.
//!
//! Labels are bounded: `route` is the route *template*, never the raw path, or every note id
//! would create new time series until the Prometheus server falls over.
//!
//! What this lab adds comes first: [`metrics`] (the metrics and the middleware that records
//! them) and [`app`] (where the layers go, so `/metrics` does not count itself). Then lab 2's
//! service, unchanged: [`notes`], [`error`], [`repository`], [`api`]; then [`server`] (the
//! command line and the process) and `main`.

use std::process::ExitCode;

use clap::Parser;

use server::{Config, run};

mod metrics {
    //! What this lab adds: the five metrics that answer an operator's four questions, in a
    //! registry of their own. [`track`] records them around every API request, [`scrape`] serves
    //! them at `/metrics`.

    use std::sync::Arc;
    use std::time::Instant;

    use axum::extract::{MatchedPath, Request, State};
    use axum::http::header;
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use prometheus::{
        Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
        TextEncoder,
    };
    use sqlx::postgres::PgPool;

    /// Latency buckets, in seconds: dense where a healthy API lives (1 to 100 ms), sparse up to
    /// the timeouts. A percentile is only as precise as the buckets around it.
    pub const LATENCY_BUCKETS: [f64; 12] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];

    /// The service's metrics in their own registry (not the global default one: tests and
    /// libraries cannot pollute it, and two apps in one process do not collide).
    pub struct Metrics {
        registry: Registry,
        requests: IntCounterVec,
        latency: HistogramVec,
        in_flight: IntGauge,
        pool_connections: IntGaugeVec,
    }

    impl Metrics {
        pub fn new(max_connections: u32) -> Metrics {
            let requests = IntCounterVec::new(
                Opts::new("http_requests_total", "HTTP requests served"),
                &["method", "route", "status"],
            )
            .expect("valid metric");
            let latency = HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "Time from request to response head",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["method", "route"],
            )
            .expect("valid metric");
            let in_flight = IntGauge::new("http_requests_in_flight", "Requests being served now")
                .expect("valid metric");
            let pool_connections = IntGaugeVec::new(
                Opts::new("db_pool_connections", "Open database connections by state"),
                &["state"],
            )
            .expect("valid metric");
            let pool_max = IntGauge::new("db_pool_max_connections", "Size limit of the pool")
                .expect("valid metric");
            // A constant, set once; the registry keeps it alive.
            pool_max.set(i64::from(max_connections));
            let registry = Registry::new();
            for collector in [
                Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
                Box::new(latency.clone()),
                Box::new(in_flight.clone()),
                Box::new(pool_connections.clone()),
                Box::new(pool_max.clone()),
            ] {
                registry.register(collector).expect("unique metric names");
            }
            Metrics {
                registry,
                requests,
                latency,
                in_flight,
                pool_connections,
            }
        }
    }

    /// Carries the matched route template from the inner `route_layer` out to `track`.
    #[derive(Clone)]
    struct RouteTemplate(String);

    /// Runs after routing, so it knows the template (`/notes/{id}`), which the outer layer cannot.
    pub async fn record_route(matched: MatchedPath, req: Request, next: Next) -> Response {
        let route = RouteTemplate(matched.as_str().to_owned());
        let mut response = next.run(req).await;
        response.extensions_mut().insert(route);
        response
    }

    /// Decrements the in-flight gauge when dropped: also when the client disconnects and axum
    /// drops the request future halfway, which a `dec()` after `.await` would miss.
    struct InFlight(IntGauge);

    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.dec();
        }
    }

    /// Counts, times and tracks every request of the instrumented routes.
    pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
        let method = req.method().as_str().to_owned();
        metrics.in_flight.inc();
        let guard = InFlight(metrics.in_flight.clone());
        let start = Instant::now();
        let response = next.run(req).await;
        let elapsed = start.elapsed().as_secs_f64();
        drop(guard);
        let route = response
            .extensions()
            .get::<RouteTemplate>()
            .map_or("unmatched", |r| r.0.as_str());
        metrics
            .requests
            .with_label_values(&[method.as_str(), route, response.status().as_str()])
            .inc();
        metrics
            .latency
            .with_label_values(&[method.as_str(), route])
            .observe(elapsed);
        response
    }

    /// Pool gauges are read at scrape time: the pool already knows its numbers, so copying them
    /// on every change would be work for nothing.
    pub async fn scrape(State((metrics, pool)): State<(Arc<Metrics>, PgPool)>) -> Response {
        let (size, idle) = (i64::from(pool.size()), pool.num_idle() as i64);
        metrics
            .pool_connections
            .with_label_values(&["idle"])
            .set(idle);
        metrics
            .pool_connections
            .with_label_values(&["in_use"])
            .set(size - idle);
        let mut body = Vec::new();
        let encoder = TextEncoder::new();
        encoder
            .encode(&metrics.registry.gather(), &mut body)
            .expect("text encoding of gathered metrics");
        (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response()
    }
}

mod app {
    //! The whole service, wired: the notes API and lab 2's health checks inside the metrics
    //! layers, `/metrics` outside them. Where a layer goes is half of this lab: `track` is a
    //! `layer`, so it sees every request (unmatched paths too), `record_route` a `route_layer`,
    //! so it runs where the route template is known, and `/metrics` is merged after both, so
    //! scrapes do not count themselves.

    use std::sync::Arc;
    use std::time::Duration;

    use axum::extract::State;
    use axum::middleware;
    use axum::routing::get;
    use axum::{Json, Router};
    use serde_json::json;
    use sqlx::postgres::PgPool;

    use super::api::notes_api;
    use super::error::ApiError;
    use super::metrics::{Metrics, record_route, scrape, track};
    use super::repository::PgRepository;

    /// How long the readiness probe waits for `SELECT 1`.
    pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

    /// The whole API, `/health/*`, and `/metrics`.
    pub fn app(pool: PgPool, max_connections: u32) -> Router {
        let metrics = Arc::new(Metrics::new(max_connections));
        let health = Router::new()
            .route(
                "/health/live",
                get(|| async { Json(json!({"status": "alive"})) }),
            )
            .route("/health/ready", get(ready))
            .with_state(pool.clone());
        let instrumented = notes_api(PgRepository::new(pool.clone()))
            .merge(health)
            .route_layer(middleware::from_fn(record_route))
            .layer(middleware::from_fn_with_state(metrics.clone(), track));
        // Merged after the layers, so scrapes do not count themselves.
        let scrape = Router::new()
            .route("/metrics", get(scrape))
            .with_state((metrics, pool));
        instrumented.merge(scrape)
    }

    /// Liveness says "the process runs"; readiness says "send me traffic": it checks the database
    /// with a short deadline, so a load balancer stops routing here while the database is away.
    async fn ready(State(pool): State<PgPool>) -> Result<Json<serde_json::Value>, ApiError> {
        let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&pool);
        match tokio::time::timeout(READY_TIMEOUT, ping).await {
            Ok(Ok(_)) => Ok(Json(json!({"status": "ready", "database": "up"}))),
            _ => Err(ApiError::NotReady),
        }
    }
}

mod notes {
    //! Lab 6.2's resource, unchanged: a note, what clients send, and the rules serde cannot check.

    use serde::{Deserialize, Serialize};

    use super::error::{ApiError, FieldError};

    /// Longest title, in characters (after trimming).
    pub const MAX_TITLE_CHARS: usize = 120;
    /// Longest body, in characters.
    pub const MAX_BODY_CHARS: usize = 10_000;

    /// A note as stored and as sent to clients.
    #[derive(Debug, Clone, Serialize, PartialEq, Eq, sqlx::FromRow)]
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
}

mod error {
    //! Lab 6.2's errors, unchanged: one type for the whole service, rendered as RFC 9457 problem
    //! documents.

    use axum::extract::rejection::JsonRejection;
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use serde::Serialize;

    use super::api::MAX_BODY_BYTES;

    /// One broken validation rule.
    #[derive(Debug, Clone, Serialize)]
    pub struct FieldError {
        pub field: &'static str,
        pub message: String,
    }

    impl FieldError {
        pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
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
        /// No connection within the pool's acquire timeout: the database is down or overloaded.
        #[error("the database is unavailable")]
        Unavailable(#[source] sqlx::Error),
        /// Anything else the database reported. The client learns nothing about it (it is our
        /// bug or our outage, not theirs); the log gets the whole error.
        #[error("internal error")]
        Database(#[source] sqlx::Error),
        #[error("the service cannot reach its database")]
        NotReady,
    }

    impl From<sqlx::Error> for ApiError {
        fn from(e: sqlx::Error) -> ApiError {
            match e {
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                    ApiError::Unavailable(e)
                }
                e => ApiError::Database(e),
            }
        }
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
                Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "Database unavailable",
                ),
                Database(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal error",
                ),
                NotReady => (StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready"),
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
            if let ApiError::Database(e) | ApiError::Unavailable(e) = &self {
                eprintln!("error: {code}: {e}");
            }
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
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge
                }
                other => ApiError::MalformedJson(other.body_text()),
            }
        }
    }
}

mod repository {
    //! Lab 6.2's storage, unchanged: the handlers know a trait, PostgreSQL implements it.

    use std::future::Future;

    use sqlx::postgres::PgPool;

    use super::error::ApiError;
    use super::notes::{Note, NoteContent};

    /// Where notes live. The handlers only know this trait, so lab 2 swaps the in-memory map for
    /// PostgreSQL without touching a handler. Methods return `impl Future + Send` (async fn in a
    /// trait) so a multi-threaded runtime can move the handler futures between threads.
    pub trait NoteRepository: Send + Sync + 'static {
        fn create(
            &self,
            content: NoteContent,
        ) -> impl Future<Output = Result<Note, ApiError>> + Send;
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

    /// Notes in PostgreSQL. A `PgPool` is a cheap handle (an `Arc` inside) to a set of connections.
    #[derive(Clone)]
    pub struct PgRepository {
        pool: PgPool,
    }

    impl PgRepository {
        pub fn new(pool: PgPool) -> PgRepository {
            PgRepository { pool }
        }
    }

    /// PostgreSQL's SQLSTATE for a unique index violation.
    const UNIQUE_VIOLATION: &str = "23505";

    /// Turns a unique violation on the title into 409, everything else into a database error.
    fn title_conflict(e: sqlx::Error, title: &str) -> ApiError {
        match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(UNIQUE_VIOLATION) => {
                ApiError::TitleTaken(title.to_string())
            }
            _ => e.into(),
        }
    }

    impl NoteRepository for PgRepository {
        async fn create(&self, content: NoteContent) -> Result<Note, ApiError> {
            sqlx::query_as::<_, Note>(
                "INSERT INTO notes (title, body) VALUES ($1, $2) \
                 RETURNING id, title, body, version",
            )
            .bind(&content.title)
            .bind(&content.body)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| title_conflict(e, &content.title))
        }

        async fn get(&self, id: i64) -> Result<Note, ApiError> {
            sqlx::query_as::<_, Note>("SELECT id, title, body, version FROM notes WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(ApiError::NoteNotFound(id))
        }

        async fn list(&self, limit: u32, offset: u64) -> Result<(Vec<Note>, u64), ApiError> {
            // The page and the total must describe the same moment: one REPEATABLE READ
            // transaction gives both queries the same snapshot.
            let mut tx = self.pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
            let items = sqlx::query_as::<_, Note>(
                "SELECT id, title, body, version FROM notes ORDER BY id LIMIT $1 OFFSET $2",
            )
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
            let total: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok((items, total as u64))
        }

        async fn update(
            &self,
            id: i64,
            content: NoteContent,
            expected_version: i64,
        ) -> Result<Note, ApiError> {
            let mut tx = self.pool.begin().await?;
            // The version check and the write are one statement: no other writer can slip in
            // between them, and no lock is held while the client thinks (optimistic concurrency).
            let updated = sqlx::query_as::<_, Note>(
                "UPDATE notes SET title = $2, body = $3, version = version + 1, updated_at = now() \
                 WHERE id = $1 AND version = $4 RETURNING id, title, body, version",
            )
            .bind(id)
            .bind(&content.title)
            .bind(&content.body)
            .bind(expected_version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| title_conflict(e, &content.title))?;
            let note = match updated {
                Some(note) => note,
                // Nothing matched: either the note is gone or its version moved on. Ask which,
                // in the same transaction, to give the client the right answer.
                None => {
                    let current: Option<i64> =
                        sqlx::query_scalar("SELECT version FROM notes WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    return Err(match current {
                        None => ApiError::NoteNotFound(id),
                        Some(current) => ApiError::VersionConflict {
                            current,
                            sent: expected_version,
                        },
                    });
                }
            };
            tx.commit().await?;
            Ok(note)
        }

        async fn delete(&self, id: i64) -> Result<(), ApiError> {
            let result = sqlx::query("DELETE FROM notes WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
            if result.rows_affected() == 0 {
                return Err(ApiError::NoteNotFound(id));
            }
            Ok(())
        }
    }
}

mod api {
    //! Lab 6.2's routes and handlers, unchanged: the notes API over any repository.

    use std::sync::Arc;

    use axum::extract::rejection::{PathRejection, QueryRejection};
    use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use axum::{Json, Router};
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};

    use super::error::ApiError;
    use super::notes::{CreateNote, Note, UpdateNote, validate};
    use super::repository::NoteRepository;

    /// Largest request body accepted; a bigger one gets 413 (as a problem document).
    pub const MAX_BODY_BYTES: usize = 64 * 1024;

    /// Page size when `limit` is absent, and the largest one allowed.
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

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

    /// The notes routes over any repository.
    pub fn notes_api<R: NoteRepository>(repo: R) -> Router {
        Router::new()
            .route("/notes", get(list_notes::<R>).post(create_note::<R>))
            .route(
                "/notes/{id}",
                get(get_note::<R>)
                    .put(update_note::<R>)
                    .delete(delete_note::<R>),
            )
            .fallback(
                |req: Request| async move { ApiError::RouteNotFound(req.uri().path().into()) },
            )
            .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
            // Bodies are buffered before JSON parsing: cap them so one client cannot eat our
            // memory.
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
}

mod server {
    //! The process: the command line, the pool and its migrations, and a graceful shutdown.

    use std::net::SocketAddr;
    use std::time::Duration;

    use clap::Parser;
    use sqlx::postgres::PgPoolOptions;

    use super::app::app;

    /// How long a request waits for a pooled connection before answering 503.
    pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

    /// The course's database when neither `--database-url` nor `DATABASE_URL` is given.
    pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/course";

    /// Where the server listens when `--addr` is not given.
    pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

    /// `DATABASE_URL` when it is set, else the course's database.
    fn database_url_from_env() -> String {
        std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
    }

    /// The command line:
    /// `ch6_prometheus_metrics [--addr HOST:PORT] [--database-url URL] [--max-connections N]`.
    #[derive(Debug, Clone, Parser)]
    #[command(
        name = "ch6_prometheus_metrics",
        about = "The notes API on PostgreSQL with Prometheus metrics at /metrics"
    )]
    pub struct Config {
        /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
        #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
        pub addr: SocketAddr,
        /// The PostgreSQL database [default: $DATABASE_URL, else the course's database]
        #[arg(
            long,
            value_name = "URL",
            default_value_t = database_url_from_env(),
            hide_default_value = true
        )]
        pub database_url: String,
        /// Most connections the pool opens to PostgreSQL
        #[arg(
            long,
            value_name = "N",
            default_value_t = 10,
            value_parser = clap::value_parser!(u32).range(1..)
        )]
        pub max_connections: u32,
    }

    /// Resolves when the process receives SIGTERM (what `kill`, systemd and Kubernetes send) or
    /// Ctrl-C.
    async fn shutdown_signal() {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        eprintln!("shutting down: finishing in-flight requests");
    }

    pub async fn run(config: Config) -> Result<(), String> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&config.database_url)
            .await
            .map_err(|e| format!("cannot connect to the database: {e}"))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| format!("cannot migrate the database: {e}"))?;
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.addr))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on {local}");
        // On the signal, axum stops accepting, lets every in-flight request complete, closes idle
        // keep-alive connections, and only then returns.
        axum::serve(listener, app(pool.clone(), config.max_connections))
            .with_graceful_shutdown(shutdown_signal())
            .await
            .map_err(|e| format!("server failed: {e}"))?;
        // Closing the pool says goodbye to PostgreSQL instead of dropping sockets on the floor.
        pool.close().await;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // `--help` prints the usage (exit 0); a bad argument is a usage error (exit 2).
    let config = Config::parse();
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
