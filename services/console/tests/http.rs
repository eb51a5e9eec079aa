//! The console's own rules, over HTTP in process: the session cookie's flags, the form token
//! on every post, a post from another site refused, a new session id at sign-in, pages that
//! need a person sending them to sign in, text escaped, the resident-ID check. None of these
//! calls a service (the gRPC address answers nothing); the pages that do are walked in a real
//! browser by services/suite/tests/console.rs.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use petition_console::{Console, router};
use std::sync::Arc;
use tower::ServiceExt;

fn console() -> axum::Router {
    let reference = petition_grpc::reference::Reference::load(None).unwrap();
    let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:9").connect_lazy();
    let mut c = Console::new(
        petition_console::Channels::one(channel),
        reference.tree.clone(),
        Arc::new(reference.taxonomy.clone()),
        Arc::new(petition_domain::SystemClock),
    );
    c.dev_keys = Some(Arc::new(petition_auth::TokenKeys::dev()));
    router(Arc::new(c))
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn send(app: &axum::Router, r: Request<Body>) -> Answer {
    let res = app.clone().oneshot(r).await.unwrap();
    let (parts, body) = res.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body.collect().await.unwrap().to_bytes()).into_owned(),
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::empty()).unwrap()
}

fn post(path: &str, cookie: &str, origin: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let mut r = Request::post(path)
        .header(header::HOST, "console.test")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(o) = origin {
        r = r.header(header::ORIGIN, o);
    }
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    r.body(Body::from(body)).unwrap()
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `name=value` of the session cookie a response sets.
fn session_cookie(a: &Answer) -> Option<String> {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("petition_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

/// A fresh visitor's cookie and the form token of the sign-in page.
async fn visitor(app: &axum::Router) -> (String, String) {
    let a = send(app, get("/sign-in", None)).await;
    assert_eq!(a.status, StatusCode::OK);
    (
        session_cookie(&a).expect("a session cookie"),
        csrf_of(&a.body),
    )
}

#[tokio::test]
async fn the_session_cookie_is_secure_http_only_and_same_site_strict() {
    let app = console();
    let a = send(&app, get("/", None)).await;
    let set = a
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    let csp = a
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    // a known session is not set again
    let cookie = session_cookie(&a).unwrap();
    assert!(session_cookie(&send(&app, get("/", Some(&cookie))).await).is_none());
}

#[tokio::test]
async fn a_form_without_the_sessions_token_is_refused() {
    let app = console();
    let (cookie, csrf) = visitor(&app).await;
    let form = |token: &'static str| {
        vec![
            ("org", "pingcheng.bureau"),
            ("role", "clerk"),
            ("subject", "clerk.wang"),
            ("csrf", token),
        ]
    };
    let none = send(&app, post("/sign-in/dev", &cookie, None, &form("")[..3])).await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    let wrong = send(
        &app,
        post("/sign-in/dev", &cookie, None, &form("not-the-token")),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(
        wrong.body.contains("表单已过期或来源不明"),
        "{}",
        wrong.body
    );
    // another visitor's token does not do either
    let (_, theirs) = visitor(&app).await;
    let mut f = form("");
    f[3].1 = &theirs;
    let crossed = send(&app, post("/sign-in/dev", &cookie, None, &f)).await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);
    // the session's own token signs in, under a new session id
    f[3].1 = &csrf;
    let ok = send(&app, post("/sign-in/dev", &cookie, None, &f)).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let signed = session_cookie(&ok).expect("a new session id");
    assert_ne!(signed, cookie);
    let home = send(&app, get("/", Some(&signed))).await;
    assert!(home.body.contains("clerk.wang") && home.body.contains("登记信访事项"));
    // the planted id is worth nothing now
    let old = send(&app, get("/", Some(&cookie))).await;
    assert!(!old.body.contains("clerk.wang"));
}

#[tokio::test]
async fn a_post_from_another_site_is_refused_even_with_the_token() {
    let app = console();
    let (cookie, csrf) = visitor(&app).await;
    let form = [
        ("org", "pingcheng.bureau"),
        ("role", "clerk"),
        ("subject", "x"),
        ("csrf", csrf.as_str()),
    ];
    let foreign = send(
        &app,
        post("/sign-in/dev", &cookie, Some("https://evil.example"), &form),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    let own = send(
        &app,
        post("/sign-in/dev", &cookie, Some("http://console.test"), &form),
    )
    .await;
    assert_eq!(own.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn pages_for_staff_send_a_visitor_to_sign_in() {
    let app = console();
    for path in ["/register", "/inbox", "/board", "/situation", "/cases/x"] {
        let a = send(&app, get(path, None)).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            a.headers.get(header::LOCATION).unwrap(),
            "/sign-in",
            "{path}"
        );
    }
    // the petitioner's page needs no sign-in
    assert_eq!(send(&app, get("/query", None)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn what_people_type_is_shown_as_text() {
    let app = console();
    let (cookie, csrf) = visitor(&app).await;
    let ok = send(
        &app,
        post(
            "/sign-in/dev",
            &cookie,
            None,
            &[
                ("org", "pingcheng.bureau"),
                ("role", "clerk"),
                ("subject", "<script>alert(1)</script>"),
                ("csrf", &csrf),
            ],
        ),
    )
    .await;
    let signed = session_cookie(&ok).unwrap();
    let home = send(&app, get("/", Some(&signed))).await;
    assert!(!home.body.contains("<script>alert(1)"), "{}", home.body);
    assert!(home.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn the_resident_id_is_checked_as_intake_checks_it() {
    let app = console();
    let (cookie, csrf) = visitor(&app).await;
    let check = |v: &'static str| {
        post(
            "/check/resident-id",
            &cookie,
            None,
            &[("v", v), ("csrf", &csrf)],
        )
    };
    // never in a URL, and never without the form token
    let in_url = send(
        &app,
        get("/check/resident-id?v=140213198807150027", Some(&cookie)),
    )
    .await;
    assert_eq!(in_url.status, StatusCode::METHOD_NOT_ALLOWED);
    let bare = send(
        &app,
        post(
            "/check/resident-id",
            &cookie,
            None,
            &[("v", "140213198807150027")],
        ),
    )
    .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);
    let good = send(&app, check("140213198807150027")).await;
    let good: serde_json::Value = serde_json::from_str(&good.body).unwrap();
    assert_eq!(good["ok"], true);
    assert!(good["message"].as_str().unwrap().contains("1988-07-15"));
    let bad = send(&app, check("140213198807150028")).await;
    let bad: serde_json::Value = serde_json::from_str(&bad.body).unwrap();
    assert_eq!(bad["ok"], false);
    assert!(
        bad["message"].as_str().unwrap().contains("check digit"),
        "{bad}"
    );
}

#[tokio::test]
async fn an_unknown_organ_or_role_signs_no_one_in() {
    let app = console();
    let (cookie, csrf) = visitor(&app).await;
    for (org, role) in [("nowhere", "clerk"), ("pingcheng.bureau", "overlord")] {
        let a = send(
            &app,
            post(
                "/sign-in/dev",
                &cookie,
                None,
                &[
                    ("org", org),
                    ("role", role),
                    ("subject", "x"),
                    ("csrf", &csrf),
                ],
            ),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{org} {role}: {}",
            a.body
        );
        assert!(session_cookie(&a).is_none());
    }
}
