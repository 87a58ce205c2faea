//! Request handlers.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use actix_web::http::Method;
use actix_web::http::header::{
    self, ContentType, Header, HeaderValue, IfModifiedSince, IfNoneMatch,
};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::Bytes;

use super::ImageId;
use super::auth::Authenticator;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::request_id::RequestId;
use crate::cache::{CachedImage, ImageStore, Lookup};
use crate::db::{self, DatabaseHealth};
use crate::log_limit::LogLimiter;
use crate::metrics::Metrics;
use crate::record::ImageRecord;

/// Prefix of the image route, `/aries/api/v1/image/{id}`. The route is a
/// scope with this static prefix and a handler that splits off the id.
/// actix-router matches a `{id}` pattern with a regex, which took about 30 %
/// of the instructions of a cache hit (callgrind, release build).
pub const IMAGE_SCOPE: &str = "/aries/api/v1/image";

/// Routes a request under [`IMAGE_SCOPE`]: one path segment after it is the
/// id, anything else has no resource; GET and HEAD are served, other
/// methods get 405.
pub async fn image_route(
    request: HttpRequest,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let tail = request.match_info().unprocessed();
    let is_one_segment = tail
        .strip_prefix('/')
        .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    if !is_one_segment {
        return Ok(unknown_route(request).await);
    }
    match *request.method() {
        Method::GET => describe_image(request, request_id, state).await,
        Method::HEAD => check_image(request, request_id, state).await,
        _ => Ok(method_not_allowed(request).await),
    }
}

/// State shared by the handlers of one service instance.
pub struct AppState {
    pub authenticator: Authenticator,
    pub images: ImageStore,
    pub health: Arc<DatabaseHealth>,
    pub metrics: Metrics,
    /// `Cache-Control` of image responses; always `private` because records
    /// contain a sensitive path.
    pub cache_control: HeaderValue,
    /// Limits the log lines of failed lookups to one per second.
    pub error_log: LogLimiter,
}

impl AppState {
    /// Builds the `Cache-Control` value for `max_age_s` (0: revalidate on
    /// every request).
    pub fn cache_control_for(max_age_s: u64) -> HeaderValue {
        let value = if max_age_s == 0 {
            "private, no-cache".to_owned()
        } else {
            format!("private, max-age={max_age_s}")
        };
        HeaderValue::from_str(&value).expect("the directives are visible ASCII")
    }
}

/// Returns one image record (DescribeImage).
#[utoipa::path(
    get,
    path = "/aries/api/v1/image/{id}",
    operation_id = "DescribeImage",
    tag = "image",
    params(
        ("id" = i64, Path, minimum = 1, format = Int64, example = 1,
            description = "Image id: a decimal integer from 1 to 9223372036854775807; leading zeros are allowed"),
        ("If-None-Match" = Option<String>, Header,
            description = "Entity tags from earlier responses, comma-separated, or `*`; a match (weak comparison) returns 304"),
        ("If-Modified-Since" = Option<String>, Header,
            description = "An HTTP date; returns 304 when the image has not changed since. Ignored when If-None-Match is present or the date is invalid"),
    ),
    responses(
        (status = 200, description = "The image record", body = ImageRecord,
            headers(
                ("ETag" = String, description = "Strong entity tag derived from the body"),
                ("Last-Modified" = String, description = "`updated_at` as an HTTP date"),
                ("Cache-Control" = String, description = "`private, no-cache` by default, or `private, max-age=N`: the record contains a sensitive path"),
                ("X-Request-Id" = String, description = "Echo of the request's X-Request-Id, or a generated id"),
            )),
        (status = 304, description = "The image has not changed since the validators that the request sent; no body",
            headers(
                ("ETag" = String, description = "Strong entity tag of the current body"),
                ("Last-Modified" = String, description = "`updated_at` as an HTTP date"),
                ("Cache-Control" = String, description = "The same value as on a 200 response"),
            )),
        (status = 400, description = "The id is not a decimal integer from 1 to 9223372036854775807", body = ErrorBody,
            example = json!({"code": "InvalidParameter", "message": "参数无效", "request_id": "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11", "detail": "the image id must contain only the ASCII digits 0-9"})),
        (status = 401, description = "The bearer token is missing, malformed or unknown", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`")),
            example = json!({"code": "AuthFailure", "message": "认证失败", "request_id": "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11", "detail": "the bearer token is not valid"})),
        (status = 404, description = "No image has this id", body = ErrorBody,
            example = json!({"code": "ImageNotFound", "message": "镜像不存在", "request_id": "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11", "detail": "no image has id 42"})),
        (status = 500, description = "The database failed or did not answer in time", body = ErrorBody,
            example = json!({"code": "InternalError", "message": "内部错误", "request_id": "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11", "detail": "the image could not be read; the service log has the cause under this request id"})),
    ),
    security(("bearer" = [])),
)]
pub async fn describe_image(
    request: HttpRequest,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request_id = request_id.as_str();

    // Authentication comes first, so an unauthenticated client learns
    // nothing about ids, not even whether one is well formed.
    state
        .authenticator
        .authenticate(request.headers())
        .map_err(|error| ApiError::new(ErrorCode::AuthFailure, request_id, error.to_string()))?;

    let raw_id = request
        .match_info()
        .unprocessed()
        .strip_prefix('/')
        .unwrap_or_default();
    let id = ImageId::parse(raw_id).map_err(|error| {
        ApiError::new(ErrorCode::InvalidParameter, request_id, error.to_string())
    })?;

    let image = match state.images.get(id).await {
        Ok(Lookup::Found(image)) => image,
        Ok(Lookup::Missing) => {
            return Err(ApiError::new(
                ErrorCode::ImageNotFound,
                request_id,
                format!("no image has id {id}"),
            ));
        }
        Err(cause) => {
            if let Some(dropped) = state.error_log.admit() {
                log::error!(
                    "request {request_id}: reading image {id} failed: {cause} \
                     ({dropped} similar errors not logged since the last one)"
                );
            }
            return Err(ApiError::new(
                ErrorCode::InternalError,
                request_id,
                "the image could not be read; the service log has the cause under this request id",
            ));
        }
    };

    let not_modified = is_not_modified(&request, &image);
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, state.cache_control.clone()))
        .insert_header((header::ETAG, image.etag_header.clone()))
        .insert_header((header::LAST_MODIFIED, image.last_modified_header.clone()));
    if not_modified {
        return Ok(response.finish());
    }
    // Bytes is reference-counted, so this sends the cached body without a copy.
    Ok(response
        .insert_header(ContentType::json())
        .body(image.body.clone()))
}

/// Returns the response of [`describe_image`] without a body: checks
/// whether an image exists, or has changed, for the cost of the headers.
#[utoipa::path(
    head,
    path = "/aries/api/v1/image/{id}",
    operation_id = "CheckImage",
    tag = "image",
    params(
        ("id" = i64, Path, minimum = 1, format = Int64, example = 1, description = "Image id, as for GET"),
        ("If-None-Match" = Option<String>, Header, description = "As for GET"),
        ("If-Modified-Since" = Option<String>, Header, description = "As for GET"),
    ),
    responses(
        (status = 200, description = "The image exists; the headers of the GET response, including Content-Length and ETag, and no body"),
        (status = 304, description = "The image has not changed since the validators that the request sent"),
        (status = 400, description = "The id is not a decimal integer from 1 to 9223372036854775807"),
        (status = 401, description = "The bearer token is missing, malformed or unknown"),
        (status = 404, description = "No image has this id"),
        (status = 500, description = "The database failed or did not answer in time"),
    ),
    security(("bearer" = [])),
)]
pub async fn check_image(
    request: HttpRequest,
    request_id: RequestId,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // actix-web sends the head of this response, Content-Length included,
    // and leaves out the body because the method is HEAD.
    describe_image(request, request_id, state).await
}

/// Evaluates `If-None-Match`, or `If-Modified-Since` when that is absent
/// (RFC 9110, section 13.2.2). Entity tags use the weak comparison, and an
/// invalid date is ignored.
pub fn is_not_modified(request: &HttpRequest, image: &CachedImage) -> bool {
    if request.headers().contains_key(header::IF_NONE_MATCH) {
        return match IfNoneMatch::parse(request) {
            Ok(IfNoneMatch::Any) => true,
            Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(&image.etag)),
            Err(_) => false,
        };
    }
    // A date later than the server's clock cannot come from an earlier
    // response, so it is ignored like an invalid one.
    match IfModifiedSince::parse(request) {
        Ok(IfModifiedSince(since)) => {
            let since = SystemTime::from(since);
            since <= SystemTime::now() && image.last_modified <= since
        }
        Err(_) => false,
    }
}

/// Returns 405 on the image, health and readiness resources, which serve
/// GET and HEAD.
pub async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    method_not_allowed_response(&request, "GET, HEAD")
}

/// Returns the OpenAPI document as JSON, serialized once per process.
pub async fn openapi_document() -> HttpResponse {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    let body = DOCUMENT.get_or_init(|| Bytes::from(crate::openapi::document_json()));
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body.clone())
}

/// Returns 405 on the Swagger UI files, which serve only GET.
pub async fn get_only(request: HttpRequest) -> HttpResponse {
    method_not_allowed_response(&request, "GET")
}

fn method_not_allowed_response(request: &HttpRequest, allow: &'static str) -> HttpResponse {
    let request_id = RequestId::of(request);
    let mut error = ApiError::new(
        ErrorCode::MethodNotAllowed,
        request_id.as_str(),
        format!(
            "method {} is not allowed on this resource; use {allow}",
            super::method_label(request.method())
        ),
    );
    error.allow = Some(allow);
    error.error_response()
}

/// Returns 404 for a path that no route serves.
pub async fn unknown_route(request: HttpRequest) -> HttpResponse {
    let request_id = RequestId::of(&request);
    let error = ApiError::new(
        ErrorCode::ResourceNotFound,
        request_id.as_str(),
        format!(
            "no resource at {}; the API is described at {}",
            request.path(),
            crate::openapi::DOCUMENT_PATH
        ),
    );
    error.error_response()
}

/// Status of `/healthz` and `/readyz`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HealthStatus {
    /// `alive`, `ready` or `not_ready`.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Reason the service is not ready, in English; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "the database did not answer a ping within 1 s")]
    pub detail: Option<String>,
}

/// Returns 200 while the process serves requests (liveness).
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "Healthz",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = HealthStatus)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus {
        status: "alive",
        detail: None,
    })
}

/// Returns the response of [`healthz`] without a body.
#[utoipa::path(
    head,
    path = "/healthz",
    operation_id = "CheckHealthz",
    tag = "health",
    responses((status = 200, description = "The process is alive; the headers of the GET response and no body")),
)]
pub async fn check_healthz() -> HttpResponse {
    healthz().await
}

/// Maximum wait of `/readyz` for a database ping.
const READINESS_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// Returns 200 when the database is prepared and answers a ping within 1 s
/// (readiness), 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "Readyz",
    tag = "health",
    responses(
        (status = 200, description = "The database is prepared and answered a ping", body = HealthStatus),
        (status = 503, description = "The database is not prepared yet or did not answer", body = HealthStatus,
            example = json!({"status": "not_ready", "detail": "the database did not answer a ping within 1 s"})),
    ),
)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let not_ready = |detail: String| {
        HttpResponse::ServiceUnavailable().json(HealthStatus {
            status: "not_ready",
            detail: Some(detail),
        })
    };
    if !state.health.is_prepared() {
        return not_ready("the database is not prepared yet; see the log for the retries".into());
    }
    let pool = state.images.pool().clone();
    let timeout = READINESS_PING_TIMEOUT;
    match web::block(move || db::health::ping(&pool, timeout)).await {
        Ok(Ok(())) => {
            state.health.record_success();
            HttpResponse::Ok().json(HealthStatus {
                status: "ready",
                detail: None,
            })
        }
        _ => {
            state.health.record_failure();
            not_ready(format!(
                "the database did not answer a ping within {} s",
                timeout.as_secs()
            ))
        }
    }
}

/// Returns the response of [`readyz`] without a body.
#[utoipa::path(
    head,
    path = "/readyz",
    operation_id = "CheckReadyz",
    tag = "health",
    responses(
        (status = 200, description = "The database is prepared and answered a ping; no body"),
        (status = 503, description = "The database is not prepared yet or did not answer; no body"),
    ),
)]
pub async fn check_readyz(state: web::Data<AppState>) -> HttpResponse {
    readyz(state).await
}

/// Serves the metrics in the Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.images.update_gauges().await;
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(state.metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::ImageRow;
    use actix_web::test::TestRequest;
    use proptest::prelude::*;

    fn image() -> CachedImage {
        let timestamp =
            chrono::NaiveDateTime::parse_from_str("2024-03-20 10:30:00", "%Y-%m-%d %H:%M:%S")
                .unwrap();
        CachedImage::from_row(ImageRow {
            id: 1,
            name: "n".into(),
            os_type: "linux".into(),
            os_name: "o".into(),
            description: "d".into(),
            source_path: "/p".into(),
            created_at: timestamp,
            updated_at: timestamp,
        })
    }

    fn not_modified_for(if_none_match: &str) -> bool {
        let request = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, if_none_match))
            .to_http_request();
        is_not_modified(&request, &image())
    }

    /// An entity tag as a client may send it: strong or weak, with opaque
    /// characters other than '"' and ','.
    fn entity_tag() -> impl Strategy<Value = String> {
        ("[!#-+\\--~]{0,12}", any::<bool>())
            .prop_map(|(opaque, weak)| format!("{}\"{opaque}\"", if weak { "W/" } else { "" }))
    }

    proptest! {
        #[test]
        fn list_with_current_tag_matches(
            before in prop::collection::vec(entity_tag(), 0..4),
            after in prop::collection::vec(entity_tag(), 0..4),
            weak in any::<bool>(),
            spaces in " {0,2}",
        ) {
            let current = image().etag.to_string();
            let current = if weak { format!("W/{current}") } else { current };
            let mut tags = before;
            tags.push(current);
            tags.extend(after);
            let header = tags.join(&format!(",{spaces}"));
            prop_assert!(not_modified_for(&header), "{}", header);
        }

        #[test]
        fn list_without_current_tag_differs(
            tags in prop::collection::vec(entity_tag(), 1..6),
        ) {
            let opaque = image().etag.tag().to_owned();
            prop_assume!(tags.iter().all(|tag| !tag.contains(&opaque)));
            let header = tags.join(", ");
            prop_assert!(!not_modified_for(&header), "{}", header);
        }
    }

    #[test]
    fn star_matches_any_image() {
        assert!(not_modified_for("*"));
    }

    #[test]
    fn invalid_header_ignored() {
        for header in ["", "garbage", "\"unterminated", "W/", ","] {
            assert!(!not_modified_for(header), "{header:?}");
        }
    }
}
