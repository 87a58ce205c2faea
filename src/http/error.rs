//! The one JSON error shape of the service and its mapping to HTTP statuses.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Error codes of the API. The first four are the DescribeImage contract;
/// the others cover requests that never reach the image handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidParameter,
    AuthFailure,
    ImageNotFound,
    InternalError,
    ResourceNotFound,
    MethodNotAllowed,
    BadRequest,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidParameter | Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::AuthFailure => StatusCode::UNAUTHORIZED,
            Self::ImageNotFound | Self::ResourceNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidParameter => "InvalidParameter",
            Self::AuthFailure => "AuthFailure",
            Self::ImageNotFound => "ImageNotFound",
            Self::InternalError => "InternalError",
            Self::ResourceNotFound => "ResourceNotFound",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::BadRequest => "BadRequest",
        }
    }

    /// The client-facing message, in Chinese as the aries API defines it.
    pub fn message(self) -> &'static str {
        match self {
            Self::InvalidParameter => "参数无效",
            Self::AuthFailure => "认证失败",
            Self::ImageNotFound => "镜像不存在",
            Self::InternalError => "内部错误",
            Self::ResourceNotFound => "资源不存在",
            Self::MethodNotAllowed => "不支持的请求方法",
            Self::BadRequest => "请求无效",
        }
    }
}

/// Body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable error code.
    #[schema(example = "ImageNotFound")]
    pub code: String,
    /// Human-readable message in Chinese.
    #[schema(example = "镜像不存在")]
    pub message: String,
    /// The `X-Request-Id` of the request, for finding it in the logs.
    #[schema(example = "9b2f6f0e-4a8e-4c57-9a43-2f1b0c6d7e11")]
    pub request_id: String,
    /// The reason in English and what to do about it.
    #[schema(example = "no image has id 42")]
    pub detail: String,
}

/// An error response. The detail is sent to the client, so it must never
/// contain internal error text; callers log causes themselves.
#[derive(Debug, thiserror::Error)]
#[error("{} ({}): {detail}", code.as_str(), self.status_code().as_u16())]
pub struct ApiError {
    pub code: ErrorCode,
    pub request_id: String,
    pub detail: String,
    /// `Allow` header value of a 405 response.
    pub allow: Option<&'static str>,
    /// Status to send in place of the code's own, for errors that another
    /// component raised with a status the codes do not cover (413, 431, …).
    pub status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(code: ErrorCode, request_id: &str, detail: impl Into<String>) -> Self {
        Self {
            code,
            request_id: request_id.to_owned(),
            detail: detail.into(),
            allow: None,
            status: None,
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.as_str().to_owned(),
            message: self.code.message().to_owned(),
            request_id: self.request_id.clone(),
            detail: self.detail.clone(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.code.status())
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        // Errors describe one moment, so no cache may store them.
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if self.code == ErrorCode::AuthFailure {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        // Set here as well as by the request id middleware, because an error
        // raised by a middleware is rendered outside it.
        if let Ok(request_id) = HeaderValue::from_str(&self.request_id) {
            response.insert_header((super::request_id::X_REQUEST_ID, request_id));
        }
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        response.json(self.body())
    }
}

/// Error code for a status that a component other than the image handler
/// produced, such as an extractor or a library route.
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::ResourceNotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::UNAUTHORIZED => ErrorCode::AuthFailure,
        status if status.is_client_error() => ErrorCode::BadRequest,
        _ => ErrorCode::InternalError,
    }
}
