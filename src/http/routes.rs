//! Request handlers.

use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::ImageId;
use super::auth::Authenticator;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::request_id::RequestId;
use crate::cache::{ImageStore, LookupError};
use crate::metrics::Metrics;
use crate::record::ImageRecord;

pub const IMAGE_PATH: &str = "/aries/api/v1/image/{id}";

/// State shared by the handlers of one service instance.
pub struct AppState {
    pub authenticator: Authenticator,
    pub images: ImageStore,
    pub metrics: Metrics,
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
    ),
    responses(
        (status = 200, description = "The image record", body = ImageRecord,
            headers(
                ("Cache-Control" = String, description = "Always `private`: the record contains a sensitive path"),
                ("X-Request-Id" = String, description = "Echo of the request's X-Request-Id, or a generated id"),
            )),
        (status = 400, description = "The id is not a decimal integer from 1 to 9223372036854775807", body = ErrorBody,
            example = json!({"code": "InvalidParameter", "message": "参数无效", "request_id": "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11", "detail": "the image id must contain only the ASCII digits 0-9"})),
        (status = 401, description = "The bearer token is missing, malformed or unknown", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`")),
            example = json!({"code": "AuthFailure", "message": "认证失败", "request_id": "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11", "detail": "the bearer token is not valid"})),
        (status = 404, description = "No image has this id", body = ErrorBody,
            example = json!({"code": "ImageNotFound", "message": "镜像不存在", "request_id": "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11", "detail": "no image has id 42"})),
        (status = 500, description = "The database failed or did not answer in time", body = ErrorBody,
            example = json!({"code": "InternalError", "message": "内部错误", "request_id": "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11", "detail": "the image could not be read; retry later"})),
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

    let raw_id = request.match_info().get("id").unwrap_or_default();
    let id = ImageId::parse(raw_id).map_err(|error| {
        ApiError::new(ErrorCode::InvalidParameter, request_id, error.to_string())
    })?;

    match state.images.get(id).await {
        Ok(image) => Ok(HttpResponse::Ok()
            .insert_header(ContentType::json())
            .insert_header(CacheControl(vec![CacheDirective::Private]))
            .body(image.body.clone())),
        Err(error) => match &*error {
            LookupError::NotFound(_) => Err(ApiError::new(
                ErrorCode::ImageNotFound,
                request_id,
                format!("no image has id {id}"),
            )),
            cause => {
                log::error!("request {request_id}: reading image {id} failed: {cause}");
                Err(ApiError::new(
                    ErrorCode::InternalError,
                    request_id,
                    "the image could not be read; retry later",
                ))
            }
        },
    }
}

/// Methods served by every resource of the service.
pub const ALLOWED_METHODS: &str = "GET";

/// Answers 405 for a known path requested with a method it does not serve.
pub async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    let request_id = RequestId::of(&request);
    let mut error = ApiError::new(
        ErrorCode::MethodNotAllowed,
        request_id.as_str(),
        format!(
            "method {} is not allowed on this resource; use {ALLOWED_METHODS}",
            request.method()
        ),
    );
    error.allow = Some(ALLOWED_METHODS);
    error.error_response()
}

/// Answers 404 for a path that no route serves.
pub async fn unknown_route(request: HttpRequest) -> HttpResponse {
    let request_id = RequestId::of(&request);
    let error = ApiError::new(
        ErrorCode::ResourceNotFound,
        request_id.as_str(),
        format!(
            "no resource at {}; the API document is served at {}",
            request.path(),
            crate::openapi::DOCUMENT_PATH
        ),
    );
    error.error_response()
}

/// Serves the metrics in the Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        ))
        .body(state.metrics.render())
}
