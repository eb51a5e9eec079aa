//! The department's inbox (待领 / 待办 / 超期, by due date) and a case's page: the petition's
//! text, its steps and clocks, and what the organ holding it does next — accept, object,
//! transfer, reply in writing, ask for an extension, report completion.

use crate::page::{
    REPLIES, channel_label, chosen, csrf, day, frame, last_day, options, state_label, status_label,
    step_label, when,
};
use crate::session::Flash;
use crate::{Console, Problem, Shared, Visit, back, call, checked, request_id};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::Form;
use maud::{Markup, html};
use petition_auth::Role;
use petition_proto::v1 as pb;

const PAGE: u32 = 50;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    ToClaim,
    ToDo,
    Overdue,
    /// a bureau's: petitions no rule placed, and objections to answer (人工分办)
    Triage,
}

impl Tab {
    const ALL: [Tab; 4] = [Tab::ToClaim, Tab::ToDo, Tab::Overdue, Tab::Triage];

    fn key(self) -> &'static str {
        match self {
            Tab::ToClaim => "to-claim",
            Tab::ToDo => "in-hand",
            Tab::Overdue => "overdue",
            Tab::Triage => "triage",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tab::ToClaim => "待领",
            Tab::ToDo => "待办",
            Tab::Overdue => "超期",
            Tab::Triage => "待分办",
        }
    }

    fn bucket(self) -> pb::InboxBucket {
        match self {
            Tab::ToClaim => pb::InboxBucket::ToClaim,
            Tab::ToDo => pb::InboxBucket::ToDo,
            Tab::Overdue => pb::InboxBucket::Overdue,
            Tab::Triage => pb::InboxBucket::Unspecified,
        }
    }

    /// The tabs a person works from: the bureau's desk also routes by hand.
    fn shown(desk: bool) -> impl Iterator<Item = Tab> {
        Tab::ALL
            .into_iter()
            .filter(move |t| desk || *t != Tab::Triage)
    }
}

#[derive(serde::Deserialize, Default)]
pub struct InboxQuery {
    #[serde(default)]
    tab: String,
    #[serde(default)]
    page: String,
}

/// The date the organ works to next: accepting (or objecting) before the case is taken, then
/// the written reply or the completion report.
fn due(a: &pb::Assignment) -> &Option<prost_types::Timestamp> {
    if a.state == pb::AssignmentState::AwaitingAcceptance as i32 {
        &a.objection_due
    } else if a.report_due.is_some() && a.reply_outcome != 0 {
        &a.report_due
    } else {
        &a.handling_due
    }
}

pub async fn inbox(
    State(c): Shared,
    visit: Visit,
    Query(q): Query<InboxQuery>,
) -> Result<Response, Problem> {
    let user = visit.user()?;
    let tab = Tab::ALL
        .into_iter()
        .find(|t| t.key() == q.tab)
        .unwrap_or(Tab::ToClaim);
    let desk = user.principal.role.is_bureau_desk() || user.principal.role == Role::Admin;
    let page = if tab == Tab::Triage {
        c.routing()
            .list_triage(call(
                &user.token,
                pb::ListTriageRequest {
                    page_size: PAGE,
                    page_token: q.page.clone(),
                },
            )?)
            .await?
            .into_inner()
    } else {
        c.routing()
            .list_inbox(call(
                &user.token,
                pb::ListInboxRequest {
                    bucket: tab.bucket() as i32,
                    page_size: PAGE,
                    page_token: q.page.clone(),
                    ..Default::default()
                },
            )?)
            .await?
            .into_inner()
    };
    let flash = c.sessions.take_flash(&visit.id);
    let body = html! {
        nav.tabs aria-label="收件箱分类" {
            ul {
                @for t in Tab::shown(desk) {
                    li {
                        a href={"/inbox?tab=" (t.key())} aria-current=[(t == tab).then_some("page")] { (t.label()) }
                    }
                }
            }
        }
        @if page.items.is_empty() {
            p.empty { "没有" (tab.label()) "的信访事项。" }
        } @else {
            table.list {
                caption { (tab.label()) "，按期限先后排列" }
                thead { tr { th scope="col" { "案件编号" } th scope="col" { "分类" } th scope="col" { "形式" } th scope="col" { "收到" } th scope="col" { "期限" } th scope="col" { "状态" } } }
                tbody {
                    @for a in &page.items {
                        tr {
                            td { a href={"/cases/" (a.case_id)} { (a.case_number) } }
                            td data-label="分类" { (category(&c, &a.category)) }
                            td data-label="形式" { (channel_label(a.channel)) }
                            td data-label="收到" { (day(&a.organ_received_at)) }
                            td data-label="期限" { (last_day(due(a))) }
                            td data-label="状态" { (state_label(a.state)) }
                        }
                    }
                }
            }
            @if !page.next_page_token.is_empty() {
                p { a href={"/inbox?tab=" (tab.key()) "&page=" (page.next_page_token)} { "下一页" } }
            }
        }
    };
    Ok(frame(
        &format!("收件箱 · {}", user.organ_name),
        &visit,
        flash,
        body,
    )
    .into_response())
}

fn category(c: &Console, code: &str) -> String {
    c.taxonomy
        .get(code)
        .map(|k| k.name.clone())
        .unwrap_or_else(|| code.to_owned())
}

pub async fn case(
    State(c): Shared,
    visit: Visit,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let user = visit.user()?;
    let case = c
        .intake()
        .get_case(call(
            &user.token,
            pb::GetCaseRequest {
                case_id: id.clone(),
                ..Default::default()
            },
        )?)
        .await?
        .into_inner();
    // The bureau's desk reads a case routing has not placed yet; the holder reads its
    // assignment. What the caller may not read is simply not shown.
    let assignment = c
        .routing()
        .get_assignment(call(
            &user.token,
            pb::GetAssignmentRequest {
                case_id: id.clone(),
            },
        )?)
        .await
        .map(|r| Some(r.into_inner()))
        .or_else(not_for_you)?;
    let timeline = c
        .supervision()
        .get_timeline(call(
            &user.token,
            pb::GetTimelineRequest {
                case_id: id.clone(),
            },
        )?)
        .await
        .map(|r| Some(r.into_inner()))
        .or_else(not_for_you)?;
    let flash = c.sessions.take_flash(&visit.id);
    let body = html! {
        section aria-labelledby="petition-h" {
            h2 #petition-h { (case.title) }
            dl.facts {
                dt { "状态" } dd #status { (status_label(case.status)) }
                dt { "信访形式" } dd { (channel_label(case.channel)) }
                dt { "登记机关" } dd { (c.organ_name(&case.received_by)) }
                dt { "收到时间" } dd { (when(&case.received_at)) }
                dt { "内容分类" } dd { (category(&c, &case.category)) }
                dt { "问题属地" } dd { (case.problem_location) }
                dt { "承办单位" } dd { (if case.holder_name.is_empty() { "—" } else { &case.holder_name }) }
                dt { "信访人" } dd {
                    @for p in &case.petitioners { span.person { (p.name) " " (p.id_number) } }
                }
            }
            h3 { "主要诉求和事实理由" }
            p.content { (case.content) }
        }
        @if let Some(a) = &assignment {
            section aria-labelledby="work-h" {
                h2 #work-h { "办理" }
                dl.facts {
                    dt { "办理状态" } dd #assignment-state { (state_label(a.state)) }
                    dt { "方式" } dd { (if a.mode == pb::HandlingMode::Assign as i32 { "交办" } else { "转送" }) }
                    dt { "受理/异议期限" } dd { (last_day(&a.objection_due)) }
                    dt { "办理期限 (Art. 34)" } dd { (last_day(&a.handling_due)) }
                    @if a.report_due.is_some() { dt { "办结报告期限" } dd { (last_day(&a.report_due)) } }
                }
                // the holder's staff act on it; others read (the service decides either way)
                @if visit.session.user.as_ref().is_some_and(|u| u.principal.org == a.organ) {
                    (actions(&c, &visit, a))
                }
                (routing_by_hand(&c, &visit, a))
            }
        }
        @if let Some(t) = &timeline {
            (oversight(&visit, &case.id, t))
            section aria-labelledby="clocks-h" {
                h2 #clocks-h { "期限" }
                table.list {
                    thead { tr { th scope="col" { "事项" } th scope="col" { "依据" } th scope="col" { "最后一天" } th scope="col" { "状态" } } }
                    tbody {
                        @for k in &t.clocks {
                            tr {
                                td { (k.name) }
                                td { (k.article) }
                                td { (k.last_day) }
                                td { (clock_state(k)) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="steps-h" {
            h2 #steps-h { "办理过程" }
            ol.steps {
                @for s in &case.timeline {
                    li {
                        time { (when(&s.at)) }
                        " " strong { (step_label(s.kind)) } " · " (s.organ_name)
                        @if !s.note.is_empty() { p.note { (s.note) } }
                    }
                }
            }
        }
    };
    Ok(frame(&format!("案件 {}", case.case_number), &visit, flash, body).into_response())
}

/// The bureau's desk places what no rule placed (人工分办) and answers an organ's objection
/// that a case is not its to handle (Art. 23 ¶3).
fn routing_by_hand(c: &Console, visit: &Visit, a: &pb::Assignment) -> Markup {
    let desk = visit
        .session
        .user
        .as_ref()
        .is_some_and(|u| u.principal.role.is_bureau_desk() || u.principal.role == Role::Admin);
    let triage = a.state == pb::AssignmentState::Triage as i32;
    let objected = a.state == pb::AssignmentState::Objected as i32;
    if !desk || !(triage || objected) {
        return html! {};
    }
    let to = |action: &str| format!("/cases/{}/{action}", a.case_id);
    let rid = request_id();
    let organs = html! {
        @for o in c.tree.organs() { option value=(o.id) { (o.name) } }
    };
    html! {
        @if triage {
            form method="post" action=(to("route")) {
                (csrf(visit))
                input type="hidden" name="request_id" value=(rid);
                label for="route-to" { "交由" }
                select #route-to name="organ" required { (organs) }
                label for="route-mode" { "方式" }
                select #route-mode name="mode" {
                    option value="forward" { "转送" }
                    option value="assign" { "交办 (须报送办结报告)" }
                }
                label for="route-reason" { "理由" }
                textarea #route-reason name="reason" rows="2" required {}
                button type="submit" { "人工分办" }
            }
        }
        @if objected {
            form method="post" action=(to("resolve-objection")) {
                (csrf(visit))
                input type="hidden" name="request_id" value=(rid);
                p { (c.organ_name(&a.organ)) " 提出异议：" (a.objection_reason) }
                label for="new-organ" { "同意时改交（留空则按规则重新分办）" }
                select #new-organ name="new_organ" {
                    option value="" { "按规则重新分办" }
                    (organs)
                }
                label for="objection-answer" { "答复理由" }
                textarea #objection-answer name="reason" rows="2" required {}
                button type="submit" name="agree" value="yes" { "同意异议" }
                " "
                button.secondary type="submit" name="agree" value="no" { "不同意，仍由其办理" }
            }
        }
    }
}

/// What the bureau does over a case: decide the extension the holder asked for (Art. 34),
/// and issue supervision (督办, Art. 40). Shown to the bureau's desk; the service decides.
fn oversight(visit: &Visit, case_id: &str, t: &pb::Timeline) -> Markup {
    let desk = visit
        .session
        .user
        .as_ref()
        .is_some_and(|u| u.principal.role.is_bureau_desk() || u.principal.role == Role::Admin);
    if !desk {
        return html! {};
    }
    let to = |action: &str| format!("/cases/{case_id}/{action}");
    let rid = request_id();
    html! {
        section aria-labelledby="oversight-h" {
            h2 #oversight-h { "督办与审批" }
            @if t.extension_requested_days > 0 {
                form method="post" action=(to("decide-extension")) {
                    (csrf(visit))
                    input type="hidden" name="request_id" value=(rid);
                    p { "承办单位申请延期 " (t.extension_requested_days) " 日：" (t.extension_reason) }
                    label for="decision-reason" { "审批意见（将告知信访人）" }
                    textarea #decision-reason name="reason" rows="2" required {}
                    button type="submit" name="approve" value="yes" #approve-extension { "同意延期" }
                    " "
                    button.secondary type="submit" name="approve" value="no" { "不同意" }
                }
            }
            details {
                summary { "督办 (Art. 40)" }
                form method="post" action=(to("supervise")) {
                    (csrf(visit))
                    input type="hidden" name="request_id" value=(rid);
                    label for="supervise-text" { "督办意见" }
                    textarea #supervise-text name="text" rows="3" required {}
                    button type="submit" { "发出督办" }
                }
            }
        }
    }
}

/// A part of a case this person may not read is left out of the page; a service that did
/// not answer is said so.
fn not_for_you<T>(s: tonic::Status) -> Result<Option<T>, Problem> {
    match s.code() {
        tonic::Code::PermissionDenied | tonic::Code::NotFound => Ok(None),
        _ => Err(s.into()),
    }
}

fn clock_state(k: &pb::CaseClock) -> &'static str {
    match pb::ClockState::try_from(k.state) {
        Ok(pb::ClockState::Running) => "计时中",
        Ok(pb::ClockState::Paused) => "已中止",
        Ok(pb::ClockState::Overdue) => "已超期",
        Ok(pb::ClockState::Met) if k.late => "已完成 (逾期)",
        Ok(pb::ClockState::Met) => "已完成",
        Ok(pb::ClockState::Lapsed) => "已过期未用",
        Ok(pb::ClockState::Stopped) => "已停止",
        _ => "—",
    }
}

/// The forms for what the holder can do in the assignment's state; the service decides
/// whether this person may.
fn actions(c: &Console, visit: &Visit, a: &pb::Assignment) -> Markup {
    let to = |action: &str| format!("/cases/{}/{action}", a.case_id);
    let awaiting = a.state == pb::AssignmentState::AwaitingAcceptance as i32;
    let accepted = a.state == pb::AssignmentState::Accepted as i32;
    let answered = a.state == pb::AssignmentState::Answered as i32;
    let assign = a.mode == pb::HandlingMode::Assign as i32;
    let rid = request_id();
    let today = c
        .clock
        .now()
        .with_timezone(&petition_domain::calendar::beijing())
        .format("%Y-%m-%d")
        .to_string();
    html! {
        div.actions {
            @if awaiting {
                form method="post" action=(to("accept")) {
                    (csrf(visit))
                    input type="hidden" name="request_id" value=(rid);
                    button type="submit" #accept { "受理 (accept)" }
                }
                details {
                    summary { "提出异议 (object, Art. 23 ¶3)" }
                    form method="post" action=(to("object")) {
                        (csrf(visit))
                        input type="hidden" name="request_id" value=(rid);
                        label for="object-reason" { "异议理由" }
                        textarea #object-reason name="reason" rows="3" required {}
                        button type="submit" { "提交异议" }
                    }
                }
            }
            @if accepted {
                details open {
                    summary { "出具书面答复 (信访处理意见书)" }
                    form method="post" action=(to("reply")) {
                        (csrf(visit))
                        input type="hidden" name="request_id" value=(rid);
                        label for="outcome" { "处理意见" }
                        select #outcome name="outcome" required { option value="" { "请选择" } (options(&REPLIES, "")) }
                        label for="reply-text" { "答复内容" }
                        textarea #reply-text name="text" rows="5" required {}
                        label for="legal-basis" { "依据" }
                        input #legal-basis name="legal_basis" type="text";
                        label for="served" { "送达方式" }
                        select #served name="served" {
                            option value="in_person" { "直接送达" }
                            option value="post" { "邮寄送达" }
                            option value="other" { "其他方式" }
                        }
                        label for="served-on" { "送达日期 (复查期限自此起算, Art. 35)" }
                        input #served-on name="served_on" type="date" required value=(today);
                        label for="receipt" { "签收情况" }
                        select #receipt name="receipt" {
                            option value="signed" { "信访人已签收" }
                            option value="refused" { "信访人拒绝签收" }
                            option value="none" { "未签收 (邮寄等)" }
                        }
                        button type="submit" #reply { "提交答复" }
                    }
                }
                details {
                    summary { "申请延期 (Art. 34, 至多30日)" }
                    form method="post" action=(to("extension")) {
                        (csrf(visit))
                        input type="hidden" name="request_id" value=(rid);
                        label for="ext-days" { "延长天数" }
                        input #ext-days name="days" type="number" min="1" max="30" required;
                        label for="ext-reason" { "理由" }
                        textarea #ext-reason name="reason" rows="3" required {}
                        button type="submit" { "申请延期" }
                    }
                }
            }
            @if awaiting || accepted {
                details {
                    summary { "转至其他单位 (transfer)" }
                    form method="post" action=(to("transfer")) {
                        (csrf(visit))
                        input type="hidden" name="request_id" value=(rid);
                        label for="transfer-to" { "转至" }
                        select #transfer-to name="organ" required {
                            @for o in c.tree.organs() { option value=(o.id) { (o.name) } }
                        }
                        label for="transfer-reason" { "理由" }
                        textarea #transfer-reason name="reason" rows="3" required {}
                        button type="submit" { "转办" }
                    }
                }
            }
            @if answered && assign {
                details open {
                    summary { "报送办结报告 (交办)" }
                    form method="post" action=(to("report")) {
                        (csrf(visit))
                        input type="hidden" name="request_id" value=(rid);
                        label for="report-text" { "办结情况" }
                        textarea #report-text name="text" rows="4" required {}
                        button type="submit" { "报送" }
                    }
                }
            }
        }
    }
}

pub async fn act(
    State(c): Shared,
    visit: Visit,
    Path((id, action)): Path<(String, String)>,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    let f = checked(&visit, form)?;
    let user = visit.user()?;
    // the id goes back into a redirect: only what a case id is made of
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Problem::Input(
            "case id: letters, digits and hyphens only".into(),
        ));
    }
    let token = user.token.as_str();
    let request_id = f.get("request_id").to_owned();
    let mut routing = c.routing();
    let done = match action.as_str() {
        "accept" => routing
            .accept_case(call(
                token,
                pb::AcceptCaseRequest {
                    case_id: id.clone(),
                    request_id,
                },
            )?)
            .await
            .map(|_| "已受理。"),
        "object" => routing
            .object_to_assignment(call(
                token,
                pb::ObjectToAssignmentRequest {
                    case_id: id.clone(),
                    reason: f.get("reason").to_owned(),
                    request_id,
                },
            )?)
            .await
            .map(|_| "异议已提交，等待信访部门答复。"),
        "transfer" => routing
            .transfer_case(call(
                token,
                pb::TransferCaseRequest {
                    case_id: id.clone(),
                    organ: f.get("organ").to_owned(),
                    reason: f.get("reason").to_owned(),
                    request_id,
                },
            )?)
            .await
            .map(|_| "已转办。"),
        "reply" => {
            let outcome = chosen(&REPLIES, f.get("outcome"))
                .ok_or_else(|| Problem::Input("outcome: choose 支持, 解释说明 or 不予支持".into()));
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => return Ok(back(&c, &visit, &format!("/cases/{id}"), e.flash())),
            };
            let mode = match f.get("served") {
                "post" => pb::ServiceMode::Post,
                "other" => pb::ServiceMode::Other,
                _ => pb::ServiceMode::InPerson,
            };
            // served on the day given, at the moment of the form if that is today, else at
            // noon Beijing: the review window counts whole days from it
            let now = c.clock.now();
            let served_at = match chrono::NaiveDate::parse_from_str(f.get("served_on"), "%Y-%m-%d")
            {
                Ok(d) if d == petition_domain::calendar::local_date(now) => now,
                Ok(d) => d
                    .and_hms_opt(12, 0, 0)
                    .and_then(|t| {
                        chrono::TimeZone::from_local_datetime(
                            &petition_domain::calendar::beijing(),
                            &t,
                        )
                        .single()
                    })
                    .map(|t| t.to_utc())
                    .unwrap_or(now),
                Err(_) => {
                    let e = Problem::Input(
                        "served_on: the date the reply was served (送达日期)".into(),
                    );
                    return Ok(back(&c, &visit, &format!("/cases/{id}"), e.flash()));
                }
            };
            routing
                .submit_reply(call(
                    token,
                    pb::SubmitReplyRequest {
                        case_id: id.clone(),
                        outcome: outcome as i32,
                        text: f.get("text").to_owned(),
                        legal_basis: f.get("legal_basis").to_owned(),
                        service: Some(pb::ServiceRecord {
                            mode: mode as i32,
                            served_at: Some(petition_grpc::convert::ts(served_at)),
                            signed: f.get("receipt") == "signed",
                            refused: f.get("receipt") == "refused",
                            view: pb::PetitionerView::Unspecified as i32,
                        }),
                        request_id,
                    },
                )?)
                .await
                .map(|_| "书面答复已出具并送达。")
        }
        "extension" => {
            let days = f.get("days").parse().unwrap_or(0);
            routing
                .request_extension(call(
                    token,
                    pb::RequestExtensionRequest {
                        case_id: id.clone(),
                        days,
                        reason: f.get("reason").to_owned(),
                        request_id,
                    },
                )?)
                .await
                .map(|_| "延期申请已提交，等待审批。")
        }
        "route" => routing
            .route_manually(call(
                token,
                pb::RouteManuallyRequest {
                    case_id: id.clone(),
                    organ: f.get("organ").to_owned(),
                    mode: if f.get("mode") == "assign" {
                        pb::HandlingMode::Assign
                    } else {
                        pb::HandlingMode::Forward
                    } as i32,
                    reason: f.get("reason").to_owned(),
                    request_id,
                },
            )?)
            .await
            .map(|_| "已人工分办。"),
        "resolve-objection" => routing
            .resolve_objection(call(
                token,
                pb::ResolveObjectionRequest {
                    case_id: id.clone(),
                    agree: f.get("agree") == "yes",
                    new_organ: f.get("new_organ").to_owned(),
                    reason: f.get("reason").to_owned(),
                    request_id,
                },
            )?)
            .await
            .map(|_| "异议已答复。"),
        "decide-extension" => c
            .supervision()
            .decide_extension(call(
                token,
                pb::DecideExtensionRequest {
                    case_id: id.clone(),
                    approve: f.get("approve") == "yes",
                    reason: f.get("reason").to_owned(),
                    request_id,
                },
            )?)
            .await
            .map(|_| "延期审批已记录，并告知信访人。"),
        "supervise" => c
            .supervision()
            .issue_supervision(call(
                token,
                pb::IssueSupervisionRequest {
                    case_id: id.clone(),
                    text: f.get("text").to_owned(),
                    request_id,
                    ..Default::default()
                },
            )?)
            .await
            .map(|_| "督办通知已发出。"),
        "report" => routing
            .submit_completion_report(call(
                token,
                pb::SubmitCompletionReportRequest {
                    case_id: id.clone(),
                    text: f.get("text").to_owned(),
                    request_id,
                },
            )?)
            .await
            .map(|_| "办结报告已报送。"),
        _ => {
            return Err(Problem::Input(format!(
                "{action}: no such action on a case"
            )));
        }
    };
    let flash = match done {
        Ok(words) => Flash::Done(words.to_owned()),
        Err(s) => Problem::from(s).flash(),
    };
    Ok(back(&c, &visit, &format!("/cases/{id}"), flash))
}
