//! The frame every page shares (header, menu, one-time message), the words for the services'
//! codes, and the style sheet and script.

use crate::Visit;
use crate::session::{Flash, User};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use petition_auth::Role;
use petition_domain::calendar::beijing;
use petition_proto::v1 as pb;

const CSS: &str = include_str!("../static/console.css");
const JS: &str = include_str!("../static/console.js");

pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

pub async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

/// The menu a role works from. The services still decide every call: this only spares people
/// links that would be refused.
fn menu(user: &User) -> Vec<(&'static str, &'static str)> {
    let mut m = Vec::new();
    let role = user.principal.role;
    if role.is_bureau_desk() || role == Role::Admin {
        m.push(("/register", "登记"));
    }
    if role.is_staff() || role == Role::Admin {
        m.push(("/inbox", "收件箱"));
    }
    if matches!(role, Role::Supervisor | Role::Leader | Role::Admin) {
        m.push(("/board", "督办看板"));
    }
    if matches!(
        role,
        Role::Supervisor | Role::Leader | Role::Analyst | Role::Admin
    ) {
        m.push(("/situation", "形势分析"));
    }
    m
}

/// What every page's head holds: its title, a phone's viewport, the style sheet and script.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · 信访工作平台" }
            link rel="stylesheet" href="/static/console.css";
            script src="/static/console.js" defer {}
        }
    }
}

/// A whole page: `title`, the menu of whoever is signed in, and the one-time message.
pub fn frame(title: &str, visit: &Visit, flash: Option<Flash>, body: Markup) -> Markup {
    let user = visit.session.user.as_ref();
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title))
            body {
                a.skip href="#main" { "跳到正文" }
                header.top {
                    a.brand href="/" { "信访工作平台" }
                    @if let Some(u) = user {
                        nav aria-label="主菜单" {
                            ul {
                                @for (href, label) in menu(u) {
                                    li { a href=(href) { (label) } }
                                }
                            }
                        }
                        div.who {
                            span { (u.organ_name) " · " (role_label(u.principal.role)) " · " (u.principal.subject) }
                            form method="post" action="/sign-out" {
                                (csrf(visit))
                                button.link type="submit" { "退出" }
                            }
                        }
                    } @else {
                        nav aria-label="主菜单" {
                            ul {
                                li { a href="/query" { "信访人查询" } }
                                li { a href="/sign-in" { "工作人员登录" } }
                            }
                        }
                    }
                }
                // focusable from the skip link, so that the next Tab goes on inside it
                main #main tabindex="-1" {
                    h1 { (title) }
                    @match flash {
                        Some(Flash::Done(m)) => p.flash.done role="status" { (m) },
                        Some(Flash::Refused(m)) => p.flash.refused role="alert" { (m) },
                        None => {},
                    }
                    (body)
                }
            }
        }
    }
}

/// The page for a refusal or failure, standing alone.
pub fn problem(status: StatusCode, words: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(&status.as_u16().to_string()))
            body {
                main #main {
                    h1 { "无法完成 (" (status.as_u16()) ")" }
                    p.flash.refused role="alert" { (words) }
                    p { a href="/" { "返回首页" } }
                }
            }
        }
    }
}

/// The hidden field that carries the session's form token.
pub fn csrf(visit: &Visit) -> Markup {
    html! { input type="hidden" name="csrf" value=(visit.session.csrf); }
}

/// Beijing time, to the minute.
pub fn when(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(petition_grpc::convert::from_ts)
        .map(at)
        .unwrap_or_else(|| "—".into())
}

pub fn at(t: DateTime<Utc>) -> String {
    t.with_timezone(&beijing())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The last day of a limit whose end is `t`: limits end at 24:00 Beijing of their last day,
/// which is 00:00 of the next, so the day shown is that of the instant just before.
pub fn last_day(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(petition_grpc::convert::from_ts)
        .map(|t| {
            (t - chrono::Duration::seconds(1))
                .with_timezone(&beijing())
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_else(|| "—".into())
}

/// The Beijing date only.
pub fn day(t: &Option<prost_types::Timestamp>) -> String {
    t.as_ref()
        .and_then(petition_grpc::convert::from_ts)
        .map(|t| t.with_timezone(&beijing()).format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "—".into())
}

pub fn role_label(r: Role) -> &'static str {
    match r {
        Role::Clerk => "登记员",
        Role::Handler => "承办人",
        Role::Supervisor => "督办员",
        Role::Leader => "领导",
        Role::Analyst => "分析员",
        Role::Admin => "管理员",
        Role::Upstream => "上级平台",
    }
}

pub const CHANNELS: [(pb::Channel, &str); 5] = [
    (pb::Channel::Visit, "走访"),
    (pb::Channel::Letter, "书信"),
    (pb::Channel::Online, "网上信访"),
    (pb::Channel::Phone, "电话"),
    (pb::Channel::Fax, "传真"),
];

pub fn channel_label(v: i32) -> &'static str {
    match pb::Channel::try_from(v) {
        Ok(pb::Channel::Upstream) => "上级转送/交办",
        Ok(c) => CHANNELS
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, l)| *l)
            .unwrap_or("—"),
        Err(_) => "—",
    }
}

pub fn status_label(v: i32) -> &'static str {
    match pb::CaseStatus::try_from(v) {
        Ok(pb::CaseStatus::Registered) => "已登记，待转送",
        Ok(pb::CaseStatus::Routed) => "已转送/交办，待受理",
        Ok(pb::CaseStatus::InHandling) => "办理中",
        Ok(pb::CaseStatus::Answered) => "已答复",
        Ok(pb::CaseStatus::Closed) => "已办结",
        Ok(pb::CaseStatus::Diverted) => "已导入法定途径 (诉访分离)",
        Ok(pb::CaseStatus::Linked) => "已并入在办案件 (并单)",
        _ => "—",
    }
}

pub fn state_label(v: i32) -> &'static str {
    match pb::AssignmentState::try_from(v) {
        Ok(pb::AssignmentState::AwaitingAcceptance) => "待领 (awaiting acceptance)",
        Ok(pb::AssignmentState::Accepted) => "已受理，办理中",
        Ok(pb::AssignmentState::Objected) => "异议待定",
        Ok(pb::AssignmentState::Diverted) => "已导入法定途径",
        Ok(pb::AssignmentState::Linked) => "已并单",
        Ok(pb::AssignmentState::Triage) => "待人工分办",
        Ok(pb::AssignmentState::Answered) => "已出具处理意见",
        Ok(pb::AssignmentState::Completed) => "已报办结",
        _ => "—",
    }
}

pub fn step_label(v: i32) -> &'static str {
    use pb::StepKind as K;
    match K::try_from(v) {
        Ok(K::Registered) => "登记",
        Ok(K::Routed) => "转送/交办",
        Ok(K::Diverted) => "导入法定途径",
        Ok(K::Linked) => "并单",
        Ok(K::Triaged) => "人工分办",
        Ok(K::Accepted) => "受理",
        Ok(K::Objected) => "异议",
        Ok(K::ObjectionResolved) => "异议处理",
        Ok(K::ExtensionRequested) => "申请延期",
        Ok(K::Answered) => "出具处理意见 (答复)",
        Ok(K::CompletionReported) => "报送办结",
        Ok(K::ExtensionDecided) => "延期审批",
        Ok(K::Rated) => "满意度评价",
        Ok(K::ReviewRequested) => "申请复查",
        Ok(K::ReviewDecided) => "复查意见",
        Ok(K::ReexaminationRequested) => "申请复核",
        Ok(K::Reexamined) => "复核意见",
        Ok(K::Closed) => "办结",
        Ok(K::DeadlineMoved) => "期限重算",
        _ => "—",
    }
}

pub fn notice_label(v: i32) -> &'static str {
    match pb::NoticeKind::try_from(v) {
        Ok(pb::NoticeKind::Reminder) => "提醒",
        Ok(pb::NoticeKind::Urging) => "催办",
        Ok(pb::NoticeKind::Listed) => "挂牌督办",
        Ok(pb::NoticeKind::Circular) => "通报",
        Ok(pb::NoticeKind::Supervision) => "督办",
        _ => "—",
    }
}

pub const REPLIES: [(pb::ReplyOutcome, &str); 3] = [
    (pb::ReplyOutcome::Supported, "支持"),
    (pb::ReplyOutcome::Explained, "解释说明"),
    (pb::ReplyOutcome::NotSupported, "不予支持"),
];

pub const SATISFACTION: [(pb::Satisfaction, &str); 3] = [
    (pb::Satisfaction::Satisfied, "满意"),
    (pb::Satisfaction::BasicallySatisfied, "基本满意"),
    (pb::Satisfaction::Dissatisfied, "不满意"),
];

/// A select of enum values by number, the one given chosen.
pub fn options<T: Copy + Into<i32>>(choices: &[(T, &str)], chosen: &str) -> Markup {
    html! {
        @for (v, label) in choices {
            @let n: i32 = (*v).into();
            option value=(n) selected[chosen == n.to_string()] { (label) }
        }
    }
}

/// An enum value from a form field, by its number among `choices`.
pub fn chosen<T: Copy + Into<i32>>(choices: &[(T, &str)], given: &str) -> Option<T> {
    let n: i32 = given.parse().ok()?;
    choices.iter().map(|(v, _)| *v).find(|v| (*v).into() == n)
}
