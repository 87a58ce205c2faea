//! The OpenAPI document, generated from the handler annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::error::ErrorBody;
use crate::http::routes::HealthStatus;
use crate::record::ImageRecord;

/// Path of the JSON document on the running service.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Path of Swagger UI on the running service.
pub const SWAGGER_UI_PATH: &str = "/swagger-ui/";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "aries image service",
        description = "DescribeImage of the aries cloud API: returns one operating-system image record. \
                       The image operations need `Authorization: Bearer <token>`. \
                       The health operations need no token.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        crate::http::routes::describe_image,
        crate::http::routes::check_image,
        crate::http::routes::healthz,
        crate::http::routes::check_healthz,
        crate::http::routes::readyz,
        crate::http::routes::check_readyz,
    ),
    components(schemas(ImageRecord, ErrorBody, HealthStatus)),
    modifiers(&BearerScheme),
    tags(
        (name = "image", description = "Operating-system images"),
        (name = "health", description = "Liveness and readiness, without authentication"),
    ),
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme that the operations refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An opaque token; the service stores only its SHA-256 digest.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as pretty-printed JSON with a final newline, the form
/// committed as openapi/openapi.json.
pub fn document_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the generated document serializes");
    json.push('\n');
    json
}
