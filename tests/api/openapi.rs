//! The OpenAPI document: committed, served and complete.

use aries_image::openapi::document_json;

use crate::helpers::{Backend, spawn_app};

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[test]
fn committed_document_is_current() {
    assert!(
        COMMITTED == document_json(),
        "openapi/openapi.json differs from the document the code generates; \
         regenerate it with `make openapi` and commit it"
    );
}

#[test]
fn document_describes_describe_image() {
    let document: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    let operation = &document["paths"]["/aries/api/v1/image/{id}"]["get"];

    let parameter = &operation["parameters"][0];
    assert_eq!(parameter["name"], "id");
    assert_eq!(parameter["in"], "path");
    assert_eq!(parameter["schema"]["type"], "integer");
    assert_eq!(parameter["schema"]["format"], "int64");
    assert_eq!(parameter["schema"]["minimum"], 1);
    for status in ["200", "400", "401", "404", "500"] {
        let content = &operation["responses"][status]["content"]["application/json"];
        assert!(
            content["schema"].is_object(),
            "response {status}: {operation}"
        );
        let has_example = content["example"].is_object()
            || document["components"]["schemas"]["ImageRecord"]["example"].is_object();
        assert!(has_example, "response {status} has no example");
    }
    assert_eq!(operation["security"][0]["bearer"], serde_json::json!([]));
    let not_modified = &operation["responses"]["304"];
    assert!(
        not_modified["headers"]["ETag"].is_object(),
        "{not_modified}"
    );
    let header_names: Vec<&str> = operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|parameter| parameter["in"] == "header")
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(header_names, ["If-None-Match", "If-Modified-Since"]);
    let head = &document["paths"]["/aries/api/v1/image/{id}"]["head"];
    assert_eq!(head["operationId"], "CheckImage");
    assert!(head["responses"]["304"].is_object());
    let scheme = &document["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");

    // serde_json's map sorts keys, so the field order is read from the text.
    let json = document_json();
    let schema_start = json
        .find("\"ImageRecord\": {")
        .expect("the schema is in the document");
    let properties = &json[schema_start..];
    let positions: Vec<usize> = [
        "id",
        "name",
        "os_type",
        "os_name",
        "description",
        "source_path",
        "created_at",
        "updated_at",
    ]
    .iter()
    .map(|field| {
        properties
            .find(&format!("\"{field}\": {{"))
            .unwrap_or_else(|| panic!("no property {field}"))
    })
    .collect();
    assert!(
        positions.is_sorted(),
        "property order differs: {positions:?}"
    );
}

#[actix_web::test]
async fn document_served_without_auth() {
    let app = spawn_app(Backend::Sqlite).await;

    let response = app.get_anonymous("/openapi.json").await;

    assert_eq!(response.status(), 200);
    let served: serde_json::Value = response.json().await.unwrap();
    let generated: serde_json::Value = serde_json::from_str(&document_json()).unwrap();
    assert_eq!(served, generated);
}

#[actix_web::test]
async fn document_answers_head() {
    let app = spawn_app(Backend::Sqlite).await;
    let url = format!("{}/openapi.json", app.address);

    let head = app.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        document_json().len().to_string().as_str()
    );
    assert_eq!(head.headers()["content-type"], "application/json");
    assert!(head.bytes().await.unwrap().is_empty());

    let post = app.client.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
}

#[actix_web::test]
async fn swagger_ui_served_without_auth() {
    let app = spawn_app(Backend::Sqlite).await;

    let page = app.get_anonymous("/swagger-ui/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));

    // The initializer points the UI at the served document and turns off
    // the online validator, and the script comes from the binary, not
    // from a CDN.
    let initializer = app
        .get_anonymous("/swagger-ui/swagger-initializer.js")
        .await;
    assert_eq!(initializer.status(), 200);
    let initializer = initializer.text().await.unwrap();
    assert!(initializer.contains("/openapi.json"));
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
    let bundle = app.get_anonymous("/swagger-ui/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.unwrap().len() > 100_000);
}
