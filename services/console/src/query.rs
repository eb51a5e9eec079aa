//! The petitioner's page: the query code (查询码) from the receipt shows where the case is, its
//! steps with dates and the written reply; with it the petitioner rates the handling (two
//! targets: the bureau and the organ) and asks for review (复查) while the window is open.
//! The page calls as the platform the petitioner uses; the code is what proves the petitioner,
//! and the services check it.

use crate::page::{SATISFACTION, chosen, csrf, frame, options, status_label, step_label, when};
use crate::session::Flash;
use crate::{Console, Fields, Problem, Shared, Visit, back, call, checked, request_id};
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use maud::html;
use petition_proto::v1 as pb;

fn portal(c: &Console) -> Result<String, Problem> {
    c.portal.as_ref().map(crate::Portal::token).ok_or_else(|| {
        Problem::Input("信访人查询未在此部署开放 (the petitioner's page is not offered here: start the console with a portal token)".into())
    })
}

pub async fn ask(State(c): Shared, visit: Visit) -> Response {
    // a new look-up starts clean: the last person's code is forgotten
    c.sessions
        .update(&visit.id, |s| s.set_query_code(None, chrono::Utc::now()));
    let flash = c.sessions.take_flash(&visit.id);
    let body = html! {
        form.query method="post" action="/query" {
            (csrf(&visit))
            label for="query_code" { "查询码 (见受理回执)" }
            input #query_code name="query_code" type="text" required autocomplete="off" autocapitalize="characters"
                placeholder="例如 K7Q2-M9XD-4TPA";
            button type="submit" { "查询" }
        }
        p { "查询码只用于查询本人的信访事项，请妥善保管。" }
    };
    frame("信访人查询", &visit, flash, body).into_response()
}

pub async fn look_up(
    State(c): Shared,
    visit: Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    let f = checked(&visit, form)?;
    let code = f.get("query_code").to_uppercase();
    c.sessions.update(&visit.id, |s| {
        s.set_query_code(Some(code.clone()), chrono::Utc::now())
    });
    Ok(Redirect::to("/query/case").into_response())
}

async fn lookup(c: &Console, code: &str) -> Result<pb::LookupByQueryCodeResponse, Problem> {
    Ok(c.intake()
        .lookup_by_query_code(call(
            &portal(c)?,
            pb::LookupByQueryCodeRequest {
                query_code: code.to_owned(),
            },
        )?)
        .await
        .map_err(Problem::Api)?
        .into_inner())
}

pub async fn case(State(c): Shared, visit: Visit) -> Result<Response, Problem> {
    let Some(code) = visit
        .session
        .query_code(chrono::Utc::now())
        .map(str::to_owned)
    else {
        return Ok(Redirect::to("/query").into_response());
    };
    let r = match lookup(&c, &code).await {
        Ok(r) => r,
        Err(Problem::Api(s)) => {
            let words = match s.code() {
                tonic::Code::NotFound | tonic::Code::InvalidArgument => {
                    format!(
                        "没有找到这个查询码对应的信访事项，请核对后重新输入 ({})",
                        s.message()
                    )
                }
                _ => Problem::Api(s).flash_words(),
            };
            return Ok(back(&c, &visit, "/query", Flash::Refused(words)));
        }
        Err(e) => return Err(e),
    };
    let answered = r.status == pb::CaseStatus::Answered as i32;
    let has = |k: pb::StepKind| r.steps.iter().any(|s| s.kind == k as i32);
    let rated = has(pb::StepKind::Rated);
    // 复查 once, after the reply; 复核 once, after the review opinion (Arts. 35, 36); the
    // service still decides whether the 30 days have passed
    let next_request = if !answered {
        None
    } else if !has(pb::StepKind::ReviewRequested) {
        Some((
            "申请复查 (Art. 35)",
            "对处理意见不服的，可以自收到书面答复之日起30日内请求原办理机关的上一级机关复查。",
        ))
    } else if has(pb::StepKind::ReviewDecided) && !has(pb::StepKind::ReexaminationRequested) {
        Some((
            "申请复核 (Art. 36)",
            "对复查意见不服的，可以自收到复查意见之日起30日内向复查机关的上一级机关请求复核。",
        ))
    } else {
        None
    };
    let reply = r
        .steps
        .iter()
        .rev()
        .find(|s| s.kind == pb::StepKind::Answered as i32);
    let flash = c.sessions.take_flash(&visit.id);
    let rid = request_id();
    let body = html! {
        section aria-labelledby="case-h" {
            h2 #case-h { (r.title) }
            dl.facts {
                dt { "案件编号" } dd #case-number { (r.case_number) }
                dt { "办理状态" } dd #status { (status_label(r.status)) }
                dt { "登记机关" } dd { (r.received_by_name) }
                dt { "收到时间" } dd { (when(&r.received_at)) }
                dt { "承办单位" } dd { (if r.holder_name.is_empty() { "—" } else { &r.holder_name }) }
            }
        }
        @if let Some(reply) = reply {
            section.reply aria-labelledby="reply-h" {
                h2 #reply-h { "书面答复 (信访处理意见书)" }
                p { (reply.organ_name) "，" (when(&reply.at)) }
                p.content #reply-text { (reply.note) }
            }
        }
        section aria-labelledby="steps-h" {
            h2 #steps-h { "办理过程" }
            ol.steps {
                @for s in &r.steps {
                    li {
                        time { (when(&s.at)) }
                        " " strong { (step_label(s.kind)) } " · " (s.organ_name)
                        @if !s.note.is_empty() && s.kind != pb::StepKind::Answered as i32 { p.note { (s.note) } }
                    }
                }
            }
        }
        @if answered && !rated {
            section aria-labelledby="rate-h" {
                h2 #rate-h { "满意度评价" }
                form method="post" action="/query/rate" {
                    (csrf(&visit))
                    input type="hidden" name="request_id" value=(rid);
                    label for="bureau" { "对信访部门（登记、转送）的评价" }
                    select #bureau name="bureau" required { option value="" { "请选择" } (options(&SATISFACTION, "")) }
                    label for="organ" { "对承办单位（办理、答复）的评价" }
                    select #organ name="organ" required { option value="" { "请选择" } (options(&SATISFACTION, "")) }
                    label for="rate-reason" { "理由（不满意时必填）" }
                    textarea #rate-reason name="reason" rows="3" {}
                    button type="submit" #rate { "提交评价" }
                }
            }
        }
        @if let Some((what, why)) = next_request {
            section aria-labelledby="review-h" {
                h2 #review-h { (what) }
                p { (why) }
                form method="post" action="/query/review" {
                    (csrf(&visit))
                    input type="hidden" name="request_id" value=(rid);
                    label for="review-reason" { "事实和理由" }
                    textarea #review-reason name="reason" rows="4" required {}
                    button type="submit" { "提交申请" }
                }
            }
        }
        form method="get" action="/query" {
            button.secondary type="submit" { "退出查询" }
        }
    };
    Ok(frame("信访事项办理情况", &visit, flash, body).into_response())
}

/// A petitioner's request from the case page: the form checked, and the case the session's
/// query code names; `None` when the session holds no code (back to the query page).
async fn petitioners_request(
    c: &Console,
    visit: &Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<Option<(Fields, String, String)>, Problem> {
    let f = checked(visit, form)?;
    let Some(code) = visit
        .session
        .query_code(chrono::Utc::now())
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    let case_number = lookup(c, &code).await?.case_number;
    Ok(Some((f, code, case_number)))
}

/// Back to the case page, with what the service answered.
fn answered<T>(
    c: &Console,
    visit: &Visit,
    done: Result<T, tonic::Status>,
    words: &str,
) -> Response {
    let flash = match done {
        Ok(_) => Flash::Done(words.into()),
        Err(s) => Problem::Api(s).flash(),
    };
    back(c, visit, "/query/case", flash)
}

pub async fn rate(
    State(c): Shared,
    visit: Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    let Some((f, code, case_number)) = petitioners_request(&c, &visit, form).await? else {
        return Ok(Redirect::to("/query").into_response());
    };
    let grade = |name: &str| {
        chosen(&SATISFACTION, f.get(name))
            .map(|s| s as i32)
            .unwrap_or_default()
    };
    let done = c
        .supervision()
        .rate_case(call(
            &portal(&c)?,
            pb::RateCaseRequest {
                case_number,
                query_code: code,
                bureau: grade("bureau"),
                organ: grade("organ"),
                reason: f.get("reason").to_owned(),
                request_id: f.get("request_id").to_owned(),
            },
        )?)
        .await;
    Ok(answered(&c, &visit, done, "评价已提交，谢谢。"))
}

pub async fn review(
    State(c): Shared,
    visit: Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    let Some((f, code, case_number)) = petitioners_request(&c, &visit, form).await? else {
        return Ok(Redirect::to("/query").into_response());
    };
    let done = c
        .supervision()
        .request_review(call(
            &portal(&c)?,
            pb::RequestReviewRequest {
                case_number,
                query_code: code,
                reason: f.get("reason").to_owned(),
                request_id: f.get("request_id").to_owned(),
            },
        )?)
        .await;
    Ok(answered(&c, &visit, done, "复查申请已提交。"))
}
