//! v2 apps and X's app-only auth (docs/compatibility.md §7.4): the admin calls, the
//! client-credentials grant at `/oauth2/token`, and finding the app of a bearer token.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_server::api::apps::authenticate_app;
use sluice_testkit::{ADMIN, TestServer};

async fn server_with_account() -> TestServer {
    let server = TestServer::start(Settings::default()).await;
    let (s, _) = server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    server
}

async fn create_app(server: &TestServer, name: &str) -> Value {
    server.new_app("acme", name).await
}

async fn token(
    server: &TestServer,
    key: &str,
    secret: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let response = server
        .http
        .post(format!("{}/oauth2/token", server.base))
        .basic_auth(key, secret)
        .header(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

const GRANT: &str = "grant_type=client_credentials";

#[tokio::test]
async fn the_client_credentials_grant_returns_the_apps_bearer_token() {
    let server = server_with_account().await;
    let app = create_app(&server, "research").await;
    let fields: Vec<&str> = app
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        fields,
        ["app_id", "bearer_token", "consumer_key", "consumer_secret"]
    );
    let key = app["consumer_key"].as_str().unwrap();
    let secret = app["consumer_secret"].as_str().unwrap();

    let (s, body) = token(&server, key, Some(secret), GRANT).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"token_type": "bearer", "access_token": app["bearer_token"]})
    );
    // Asking again gives the same token.
    let (_, again) = token(&server, key, Some(secret), GRANT).await;
    assert_eq!(again, body);
    server.stop().await;
}

#[tokio::test]
async fn bad_credentials_and_grant_types_get_xs_errors() {
    let server = server_with_account().await;
    let app = create_app(&server, "research").await;
    let key = app["consumer_key"].as_str().unwrap();
    let secret = app["consumer_secret"].as_str().unwrap();
    let bad_credentials = json!({"errors": [{
        "code": 99, "label": "authenticity_token_error",
        "message": "Unable to verify your credentials"}]});
    let bad_grant = json!({"errors": [{
        "code": 170, "label": "forbidden_missing_parameter",
        "message": "Missing required parameter: grant_type"}]});
    let other = create_app(&server, "other").await;
    let other_secret = other["consumer_secret"].as_str().unwrap();
    let cases: [(&str, Option<&str>, &str, &Value); 7] = [
        (key, Some("wrong"), GRANT, &bad_credentials),
        (key, Some(other_secret), GRANT, &bad_credentials),
        (key, None, GRANT, &bad_credentials),
        ("unknown", Some(secret), GRANT, &bad_credentials),
        (key, Some(secret), "grant_type=password", &bad_grant),
        (key, Some(secret), "", &bad_grant),
        (
            key,
            Some(secret),
            "grant_type=client_credentialsX",
            &bad_grant,
        ),
    ];
    for (k, s, body, want) in cases {
        let (status, got) = token(&server, k, s, body).await;
        assert_eq!(
            (status, &got),
            (StatusCode::FORBIDDEN, want),
            "{k} {s:?} {body}"
        );
    }
    let response = server
        .http
        .post(format!("{}/oauth2/token", server.base))
        .body(GRANT)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.json::<Value>().await.unwrap(), bad_credentials);
    server.stop().await;
}

#[tokio::test]
async fn apps_are_listed_without_secrets() {
    let server = server_with_account().await;
    let first = create_app(&server, "one").await;
    let second = create_app(&server, "two").await;
    let (s, list) = server
        .admin(Method::GET, "/admin/accounts/acme/apps", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let apps = list["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 2);
    for (listed, created, name) in [(&apps[0], &first, "one"), (&apps[1], &second, "two")] {
        assert_eq!(listed["app_id"], created["app_id"]);
        assert_eq!(listed["consumer_key"], created["consumer_key"]);
        assert_eq!(listed["name"], name);
        assert!(
            listed["created"].as_str().unwrap().ends_with('Z'),
            "{listed}"
        );
        let text = listed.to_string();
        for secret in ["consumer_secret", "bearer_token"] {
            assert!(!text.contains(created[secret].as_str().unwrap()), "{text}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_accounts_and_malformed_bodies_are_refused() {
    let server = server_with_account().await;
    for method in [Method::POST, Method::GET] {
        let (s, body) = server
            .admin(method, "/admin/accounts/ghost/apps", json!({"name": "x"}))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    }
    let cases: [&str; 7] = [
        "{}",
        "",
        "{\"name\":\"\"}",
        "{\"name\":\"a b\"}",
        "{\"name\":7}",
        "{\"name\":\"ok\",\"extra\":1}",
        "not json",
    ];
    for body in cases {
        let response = server
            .http
            .post(format!("{}/admin/accounts/acme/apps", server.base))
            .header(AUTHORIZATION, format!("Bearer {ADMIN}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].is_string(), "{body}: {error}");
    }
    let response = server
        .http
        .post(format!("{}/admin/accounts/acme/apps", server.base))
        .body("{\"name\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, list) = server
        .admin(Method::GET, "/admin/accounts/acme/apps", Value::Null)
        .await;
    assert_eq!(list, json!({"apps": []}));
    server.stop().await;
}

#[tokio::test]
async fn a_bearer_token_names_its_app() {
    let server = server_with_account().await;
    let app = create_app(&server, "research").await;
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", app["bearer_token"].as_str().unwrap());
    headers.insert(AUTHORIZATION, bearer.parse().unwrap());
    let found = authenticate_app(&server.state, &headers).await.unwrap();
    assert_eq!(found.id, app["app_id"].as_str().unwrap());
    assert_eq!(found.account, "acme");

    for value in [None, Some("Bearer nope".to_owned())] {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(v) = &value {
            headers.insert(AUTHORIZATION, v.parse().unwrap());
        }
        let err = authenticate_app(&server.state, &headers).await.unwrap_err();
        assert_eq!(err.status, StatusCode::UNAUTHORIZED, "{value:?}");
        assert_eq!(err.challenge, Some("Bearer"));
        let problem = serde_json::to_value(&*err.problem).unwrap();
        assert_eq!(
            problem,
            json!({"title": "Unauthorized", "type": "about:blank",
                   "status": 401, "detail": "Unauthorized"})
        );
    }
    // Another scheme is not a missing token: X's 403 naming it.
    let mut headers = reqwest::header::HeaderMap::new();
    let basic = format!("Basic {}", app["bearer_token"].as_str().unwrap());
    headers.insert(AUTHORIZATION, basic.parse().unwrap());
    let err = authenticate_app(&server.state, &headers).await.unwrap_err();
    assert_eq!(err.status, StatusCode::FORBIDDEN);
    assert_eq!(err.problem.title, "Unsupported Authentication");
    server.stop().await;
}
