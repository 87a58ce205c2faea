//! `X-Request-Id` on every response, and JSON bodies for error responses
//! that other components produced as plain text or with no body.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, ResponseError};

use super::error::{ApiError, code_for_status};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Maximum length of an incoming request id that is echoed; longer ones
/// are replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request id of the current request, stored in the request extensions
/// by [`assign_request_id`].
#[derive(Debug, Clone)]
pub struct RequestId(HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        // Both sources are visible ASCII: the incoming value is checked by
        // `is_well_formed` and generated values are UUIDs.
        self.0.to_str().unwrap_or_default()
    }

    /// The id of `request`, or an empty string outside the middleware.
    pub fn of(request: &HttpRequest) -> Self {
        request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId(HeaderValue::from_static("")))
    }
}

impl FromRequest for RequestId {
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(request)))
    }
}

/// An incoming id is echoed when it has 1 to 128 visible ASCII characters.
fn is_well_formed(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_REQUEST_ID_LEN
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
}

fn generate() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).expect("a hyphenated UUID is a valid header value")
}

/// Middleware: assigns the request id, sets it on the response and turns
/// error responses without a JSON body into the service's error shape.
pub async fn assign_request_id(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let id = request
        .headers()
        .get(X_REQUEST_ID)
        .filter(|value| is_well_formed(value))
        .cloned()
        .unwrap_or_else(generate);
    request.extensions_mut().insert(RequestId(id.clone()));

    // No clone of the request may be held across `next.call`: the router
    // needs the only reference to write the path parameters.
    let mut response = match next.call(request).await {
        Ok(response) if needs_json_body(&response) => {
            let status = response.status();
            let allow = response.headers().get(header::ALLOW).cloned();
            let (http_request, _) = response.into_parts();
            let mut replaced = json_error(&http_request, &id, status);
            if let Some(allow) = allow {
                replaced.headers_mut().insert(header::ALLOW, allow);
            }
            ServiceResponse::new(http_request, replaced).map_into_right_body()
        }
        Ok(response) => response.map_body(|_, body| EitherBody::left(body.boxed())),
        Err(error) => {
            let status = error.as_response_error().status_code();
            let request_id = id.to_str().unwrap_or_default();
            log::warn!("request {request_id} failed in a middleware with status {status}: {error}");
            let detail = format!("the request failed with status {}", status.as_u16());
            let mut replacement = ApiError::new(code_for_status(status), request_id, detail);
            replacement.status = Some(status);
            return Err(replacement.into());
        }
    };
    let headers = response.headers_mut();
    headers.insert(X_REQUEST_ID, id);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

fn needs_json_body<B>(response: &ServiceResponse<B>) -> bool {
    let is_error = response.status().is_client_error() || response.status().is_server_error();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    is_error && !is_json
}

fn json_error(
    request: &HttpRequest,
    id: &HeaderValue,
    status: actix_web::http::StatusCode,
) -> actix_web::HttpResponse {
    let code = code_for_status(status);
    let detail = format!(
        "{} {} was answered with status {}",
        request.method(),
        request.path(),
        status.as_u16()
    );
    let mut error = ApiError::new(code, id.to_str().unwrap_or_default(), detail);
    error.status = Some(status);
    error.error_response()
}
