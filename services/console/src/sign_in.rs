//! Signing in with the token the APIs take, or, on a development run, as any organ and role.

use crate::page::{csrf, frame, role_label};
use crate::session::{Flash, User};
use crate::{Console, Problem, Shared, Visit, back, checked, session_cookie};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use maud::html;
use petition_auth::{Principal, Role};
use std::sync::Arc;

/// How long a token issued on the development sign-in page lasts.
const DEV_TOKEN_HOURS: i64 = 8;

pub async fn home(State(c): Shared, visit: Visit) -> Response {
    let flash = c.sessions.take_flash(&visit.id);
    let body = match visit.session.user.as_ref() {
        Some(u) => html! {
            p { "您好，" (u.principal.subject) "（" (u.organ_name) "，" (role_label(u.principal.role)) "）。" }
            ul.cards {
                @if u.principal.role.is_bureau_desk() || u.principal.role == Role::Admin {
                    li { a href="/register" { "登记信访事项" } p { "来访、来信、网上信访、电话、传真：登记并出具回执和查询码。" } }
                }
                @if u.principal.role.is_staff() || u.principal.role == Role::Admin {
                    li { a href="/inbox" { "收件箱" } p { "待领、待办、超期的信访事项，按期限排序。" } }
                }
                @if matches!(u.principal.role, Role::Supervisor | Role::Leader | Role::Admin) {
                    li { a href="/board" { "督办看板" } p { "即将到期、已超期、督办通知、领导包案和积案。" } }
                }
                @if matches!(u.principal.role, Role::Supervisor | Role::Leader | Role::Analyst | Role::Admin) {
                    li { a href="/situation" { "形势分析" } p { "件次人次、考核指标、趋势图和分析报告。" } }
                }
            }
        },
        None => html! {
            ul.cards {
                li { a href="/query" { "信访人查询" } p { "凭回执上的查询码查看办理进度、答复意见，进行满意度评价或申请复查。" } }
                li { a href="/sign-in" { "工作人员登录" } p { "信访部门和责任单位的工作人员。" } }
            }
        },
    };
    frame("信访工作平台", &visit, flash, body).into_response()
}

use axum::extract::State;

pub async fn page(State(c): Shared, visit: Visit) -> Response {
    let flash = c.sessions.take_flash(&visit.id);
    let mut organs: Vec<_> = c.tree.organs().collect();
    organs.sort_by(|a, b| a.id.cmp(&b.id));
    let body = html! {
        section aria-labelledby="token-h" {
            h2 #token-h { "使用令牌登录" }
            p { "粘贴本部署签发给您的令牌 (bearer token)。各服务在每次调用时核验令牌。" }
            form method="post" action="/sign-in" {
                (csrf(&visit))
                label for="token" { "令牌" }
                textarea #token name="token" rows="4" required autocomplete="off" {}
                button type="submit" { "登录" }
            }
        }
        @if c.dev_keys.is_some() {
            section.dev aria-labelledby="dev-h" {
                h2 #dev-h { "开发环境登录 (--dev)" }
                p { "仅用于开发和演示：选择机构和角色，控制台以开发密钥签发令牌。" }
                form method="post" action="/sign-in/dev" {
                    (csrf(&visit))
                    label for="org" { "机构" }
                    select #org name="org" required {
                        @for o in &organs {
                            option value=(o.id) selected[o.id == "pingcheng.bureau"] { (o.name) " (" (o.id) ")" }
                        }
                    }
                    label for="role" { "角色" }
                    select #role name="role" required {
                        @for r in Role::ALL.iter().filter(|r| **r != Role::Upstream) {
                            option value=(r.as_str()) { (role_label(*r)) " (" (r.as_str()) ")" }
                        }
                    }
                    label for="subject" { "姓名或工号" }
                    input #subject name="subject" type="text" required value="" autocomplete="username";
                    button type="submit" { "以此身份登录" }
                }
            }
        }
    };
    frame("登录", &visit, flash, body).into_response()
}

fn signed_in(c: &Console, visit: &Visit, token: String) -> Result<Response, Problem> {
    let (principal, ends) = petition_auth::read_unverified(&token)
        .map_err(|e| Problem::Input(format!("token: {e}")))?;
    // Tokens and sessions run on the wall clock, whatever time a development run simulates.
    let now = chrono::Utc::now();
    if ends <= now {
        return Err(Problem::Input(
            "token: it has expired; ask for a new token".into(),
        ));
    }
    let organ_name = c.organ_name(&principal.org);
    let id = c.sessions.sign_in(
        &visit.id,
        User {
            token,
            principal,
            organ_name,
            ends,
        },
        now,
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie(id).to_string()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

pub async fn with_token(
    State(c): Shared,
    visit: Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    let f = checked(&visit, form)?;
    match signed_in(&c, &visit, f.get("token").to_owned()) {
        Err(Problem::Input(m)) => Ok(back(&c, &visit, "/sign-in", Flash::Refused(m))),
        other => other,
    }
}

pub async fn dev(
    State(c): Shared,
    visit: Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    let f = checked(&visit, form)?;
    let Some(keys) = c.dev_keys.clone() else {
        return Err(Problem::Input(
            "the development sign-in is offered only on a --dev run".into(),
        ));
    };
    let role: Role = f.get("role").parse().map_err(Problem::Input)?;
    let org = f.get("org");
    if c.tree.get(org).is_none() {
        return Err(Problem::Input(format!(
            "org: {org:?} is no organ of the organisation tree"
        )));
    }
    let subject = match f.get("subject") {
        "" => format!("{}.{}", role.as_str(), org),
        s => s.chars().take(64).collect(),
    };
    let token = issue(&keys, subject, org.to_owned(), role);
    signed_in(&c, &visit, token)
}

fn issue(keys: &Arc<petition_auth::TokenKeys>, subject: String, org: String, role: Role) -> String {
    keys.issue(
        &Principal {
            subject,
            org,
            role,
            scopes: vec![],
        },
        chrono::Duration::hours(DEV_TOKEN_HOURS),
    )
}

pub async fn sign_out(
    State(c): Shared,
    visit: Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    checked(&visit, form)?;
    c.sessions.sign_out(&visit.id);
    Ok(Redirect::to("/").into_response())
}
