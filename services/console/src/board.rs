//! The supervisor's due board: the clocks about to run out and those past their end, the
//! notices sent (提醒, 催办, 挂牌督办, 督办), the cases leaders took charge of (包案) and the
//! backlog (积案).

use crate::page::{frame, last_day, notice_label, when};
use crate::{Problem, Shared, Visit, call};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use petition_proto::v1 as pb;

const ROWS: u32 = 50;

pub async fn board(State(c): Shared, visit: Visit) -> Result<Response, Problem> {
    let user = visit.user()?;
    let token = user.token.as_str();
    let mut supervision = c.supervision();
    let due = |bucket: pb::DueBucket| {
        call(
            token,
            pb::ListDueRequest {
                bucket: bucket as i32,
                page_size: ROWS,
                within: true,
                ..Default::default()
            },
        )
    };
    let soon = supervision
        .list_due(due(pb::DueBucket::DueSoon)?)
        .await?
        .into_inner();
    let overdue = supervision
        .list_due(due(pb::DueBucket::Overdue)?)
        .await?
        .into_inner();
    let notices = supervision
        .list_notices(call(
            token,
            pb::ListNoticesRequest {
                page_size: ROWS,
                within: true,
                ..Default::default()
            },
        )?)
        .await?
        .into_inner();
    let backlog = supervision
        .list_backlog(call(
            token,
            pb::ListBacklogRequest {
                page_size: ROWS,
                ..Default::default()
            },
        )?)
        .await?
        .into_inner();
    let led: Vec<_> = backlog
        .items
        .iter()
        .filter(|b| b.leader.is_some())
        .collect();
    let flash = c.sessions.take_flash(&visit.id);
    let body = html! {
        div.board {
            section aria-labelledby="soon-h" {
                h2 #soon-h { "即将到期 (" (count(soon.items.len(), &soon.next_page_token)) ")" }
                (due_table(&c, &soon.items))
            }
            section aria-labelledby="overdue-h" {
                h2 #overdue-h { "已超期 (" (count(overdue.items.len(), &overdue.next_page_token)) ")" }
                (due_table(&c, &overdue.items))
            }
            section aria-labelledby="notices-h" {
                h2 #notices-h { "督办通知" }
                @if notices.notices.is_empty() { p.empty { "没有通知。" } } @else {
                    table.list {
                        thead { tr { th scope="col" { "类别" } th scope="col" { "案件" } th scope="col" { "发往" } th scope="col" { "发出" } th scope="col" { "反馈" } } }
                        tbody {
                            @for n in &notices.notices {
                                tr {
                                    td { (notice_label(n.kind)) }
                                    td { a href={"/cases/" (n.case_id)} { (n.case_number) } }
                                    td { (c.organ_name(&n.organ)) }
                                    td { (when(&n.issued_at)) }
                                    td {
                                        @if n.acknowledged_at.is_some() { "已反馈" }
                                        @else if n.feedback_due.is_some() { "待反馈，期限 " (last_day(&n.feedback_due)) }
                                        @else { "未反馈" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="leaders-h" {
                h2 #leaders-h { "领导包案" }
                @if led.is_empty() { p.empty { "没有领导包案的案件。" } } @else {
                    table.list {
                        thead { tr { th scope="col" { "案件" } th scope="col" { "包案领导" } th scope="col" { "目标日期" } th scope="col" { "承办单位" } } }
                        tbody {
                            @for b in &led {
                                @let l = b.leader.clone().unwrap_or_default();
                                tr {
                                    td { a href={"/cases/" (b.case_id)} { (b.case_number) } }
                                    td { (l.leader) " (" (c.organ_name(&l.organ)) ")" }
                                    td { (l.target_date) }
                                    td { (c.organ_name(&b.holder)) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="backlog-h" {
                h2 #backlog-h { "积案 (" (count(backlog.items.len(), &backlog.next_page_token)) ")" }
                @if backlog.items.is_empty() { p.empty { "没有积案。" } } @else {
                    table.list {
                        thead { tr { th scope="col" { "案件" } th scope="col" { "承办单位" } th scope="col" { "超期" } th scope="col" { "重复次数" } } }
                        tbody {
                            @for b in &backlog.items {
                                tr {
                                    td { a href={"/cases/" (b.case_id)} { (b.case_number) } }
                                    td { (c.organ_name(&b.holder)) }
                                    td { (if b.overdue { "是" } else { "否" }) }
                                    td { (b.repeats) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame("督办看板", &visit, flash, body).into_response())
}

/// How many a list holds, as far as the board shows it: "50+" when there is more.
fn count(shown: usize, next_page: &str) -> String {
    if next_page.is_empty() {
        shown.to_string()
    } else {
        format!("{shown}+")
    }
}

fn due_table(c: &crate::Console, items: &[pb::DueItem]) -> Markup {
    html! {
        @if items.is_empty() { p.empty { "没有。" } } @else {
            table.list {
                thead { tr { th scope="col" { "案件" } th scope="col" { "期限" } th scope="col" { "责任单位" } th scope="col" { "最后一天" } } }
                tbody {
                    @for d in items {
                        @let k = d.clock.clone().unwrap_or_default();
                        tr {
                            td { a href={"/cases/" (d.case_id)} { (d.case_number) } }
                            td data-label="期限" { (k.name) " (" (k.article) ")" }
                            td data-label="责任单位" { (if k.organ.is_empty() { "信访人".to_owned() } else { c.organ_name(&k.organ) }) }
                            td data-label="最后一天" { (k.last_day) }
                        }
                    }
                }
            }
        }
    }
}
