//! The HTTP layer: routes, authentication, the id parser, errors and the
//! request id middleware.

pub mod auth;
pub mod error;
mod image_id;
pub mod request_id;
pub mod routes;

pub use image_id::{ImageId, ImageIdError};

use actix_web::http::Method;

/// Returns the method's name when it is one of RFC 9110's, and `other`
/// otherwise. Metric labels, log lines and error details use it, because a
/// client can send any token as a method, of any length.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Maximum characters of a request path written to the access log.
const LOGGED_PATH_CHARS: usize = 256;

/// Returns the request line for the access log: the method label, the path
/// and query cut to 256 characters with quotes and control characters
/// percent-encoded, so that a client cannot forge fields of the line.
pub fn access_log_request_line(request: &actix_web::dev::ServiceRequest) -> String {
    let target = request
        .uri()
        .path_and_query()
        .map_or("", |path| path.as_str());
    let mut line = String::with_capacity(target.len().min(LOGGED_PATH_CHARS) + 24);
    line.push_str(method_label(request.method()));
    line.push(' ');
    for (index, character) in target.chars().enumerate() {
        if index == LOGGED_PATH_CHARS {
            line.push_str("...");
            break;
        }
        match character {
            '"' | '\\' => line.push_str(if character == '"' { "%22" } else { "%5C" }),
            control if control.is_control() => line.push_str("%3F"),
            other => line.push(other),
        }
    }
    line.push(' ');
    line.push_str(match request.version() {
        actix_web::http::Version::HTTP_10 => "HTTP/1.0",
        actix_web::http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    });
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn unknown_methods_share_a_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let custom = Method::from_bytes(b"X0000000000000000000001").unwrap();
        assert_eq!(method_label(&custom), "other");
    }

    #[test]
    fn logged_request_line_is_bounded() {
        let long_path = format!("/{}", "a".repeat(1000));
        let request = TestRequest::with_uri(&long_path).to_srv_request();
        let line = access_log_request_line(&request);
        assert!(line.len() < 300, "{line}");
        assert!(line.starts_with("GET /aaa"), "{line}");
        assert!(line.ends_with("... HTTP/1.1"), "{line}");
    }

    #[test]
    fn logged_request_line_escapes_quotes() {
        let request = TestRequest::with_uri("/x\"y?q=\\")
            .method(Method::from_bytes(b"BREW").unwrap())
            .to_srv_request();
        let line = access_log_request_line(&request);
        assert_eq!(line, "other /x%22y?q=%5C HTTP/1.1");
    }
}
