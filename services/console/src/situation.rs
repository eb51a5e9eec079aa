//! The director's situation page (形势分析): the figures of a period with their comparisons
//! (同比, 环比), the trend, the channels and fields, the scorecards, and the report to
//! download — all as the analytics service counts them.

use crate::page::frame;
use crate::{Problem, Shared, Visit, call};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use petition_charts::{bars, change, pct, rate, trend};
use petition_domain::calendar::beijing;
use petition_proto::v1 as pb;

#[derive(serde::Deserialize, Default)]
pub struct PeriodQuery {
    #[serde(default)]
    period: String,
}

/// The period asked for, or this month (Beijing).
fn period(c: &crate::Console, q: &PeriodQuery) -> String {
    match q.period.trim() {
        "" => c
            .clock
            .now()
            .with_timezone(&beijing())
            .format("%Y-%m")
            .to_string(),
        p => p.to_owned(),
    }
}

fn figure(name: &str, id: &str, f: &Option<pb::Figure>) -> Markup {
    let f = f.unwrap_or_default();
    html! {
        div.figure {
            dt { (name) }
            dd id=(id) { (f.count) }
            dd.change { "环比 " (change(f.count, f.previous)) "，同比 " (change(f.count, f.year_ago)) }
        }
    }
}

/// A chart drawn as SVG, labelled by its caption, with its figures as a table beside it for
/// those who do not see the picture.
fn chart(
    caption: &str,
    svg: Result<String, petition_charts::ChartError>,
    rows: &[(String, u64)],
) -> Markup {
    match svg {
        Ok(svg) => html! {
            figure.chart {
                div role="img" aria-label=(caption) { (PreEscaped(svg)) }
                figcaption { (caption) }
                details {
                    summary { "数据表" }
                    table.list {
                        thead { tr { th scope="col" { "项目" } th scope="col" { "件次" } } }
                        tbody { @for (k, v) in rows { tr { th scope="row" { (k) } td { (v) } } } }
                    }
                }
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "a chart of the situation page could not be drawn");
            html! { p.empty { (caption) "：图表无法绘制" } }
        }
    }
}

pub async fn situation(
    State(c): Shared,
    visit: Visit,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, Problem> {
    let user = visit.user()?;
    let period = period(&c, &q);
    let mut analytics = c.analytics();
    let organ = user.principal.org.clone();
    let s = analytics
        .get_situation(call(
            &user.token,
            pb::SituationRequest {
                period: period.clone(),
                organ: organ.clone(),
            },
        )?)
        .await?
        .into_inner();
    let cards = analytics
        .get_scorecards(call(
            &user.token,
            pb::ScorecardsRequest {
                period: period.clone(),
                organ: organ.clone(),
                ..Default::default()
            },
        )?)
        .await?
        .into_inner();
    let months = analytics
        .get_trend(call(
            &user.token,
            pb::TrendRequest {
                organ,
                ..Default::default()
            },
        )?)
        .await?
        .into_inner();
    let flash = c.sessions.take_flash(&visit.id);
    let body = html! {
        form.period method="get" action="/situation" {
            label for="period" { "期间 (YYYY-MM, YYYY-Qn 或 YYYY)" }
            input #period name="period" type="text" value=(period);
            button type="submit" { "查看" }
            a.button href={"/situation/report?period=" (period)} download { "下载分析报告" }
        }
        section aria-labelledby="figures-h" {
            h2 #figures-h { "主要数据 (" (s.from_month) " — " (s.to_month) ")" }
            dl.figures {
                (figure("件次", "cases", &s.cases))
                (figure("人次", "persons", &s.persons))
                (figure("网上信访", "online", &s.online))
                (figure("越级访", "leapfrog", &s.leapfrog))
                (figure("集体访", "group", &s.group))
                (figure("重复信访", "repeat", &s.repeat))
            }
            p { "网信占比 " (pct(s.online_share)) }
        }
        section aria-labelledby="charts-h" {
            h2 #charts-h { "趋势与分布" }
            (chart(
                "近十二个月件次与网上信访",
                trend(&months.points),
                &months.points.iter().map(|p| (format!("{} (网上信访 {})", p.month, p.online), p.cases)).collect::<Vec<_>>(),
            ))
            (chart("按信访形式", bars(&s.by_channel), &share_rows(&s.by_channel)))
            (chart("按内容分类", bars(&s.by_category_l1), &share_rows(&s.by_category_l1)))
        }
        section aria-labelledby="cards-h" {
            h2 #cards-h { "考核指标" }
            (scorecards("信访部门", &cards.bureaux))
            (scorecards("责任单位", &cards.organs))
        }
    };
    Ok(frame("形势分析", &visit, flash, body).into_response())
}

fn share_rows(shares: &[pb::Share]) -> Vec<(String, u64)> {
    shares.iter().map(|s| (s.label.clone(), s.cases)).collect()
}

fn scorecards(caption: &str, cards: &[pb::Scorecard]) -> Markup {
    html! {
        table.list.scorecards {
            caption { (caption) }
            thead { tr {
                th scope="col" { "单位" } th scope="col" { "件数" } th scope="col" { "及时受理率" }
                th scope="col" { "按期办结率" } th scope="col" { "参评率" } th scope="col" { "满意率" }
            } }
            tbody {
                @for s in cards {
                    tr data-organ=(s.organ) {
                        th scope="row" { (s.organ_name) }
                        td { (s.cases) }
                        td { (rate(&s.timely_acceptance)) }
                        td { (rate(&s.on_time_completion)) }
                        td.rated { (rate(&s.rated)) }
                        td.satisfied { (rate(&s.satisfied)) }
                    }
                }
            }
        }
    }
}

/// The situation report of the period, as analytics renders it, to save.
pub async fn report(
    State(c): Shared,
    visit: Visit,
    Query(q): Query<PeriodQuery>,
) -> Result<Response, Problem> {
    let user = visit.user()?;
    let r = c
        .analytics()
        .render_report(call(
            &user.token,
            pb::RenderReportRequest {
                period: period(&c, &q),
                organ: user.principal.org.clone(),
            },
        )?)
        .await?
        .into_inner();
    // the name analytics gives is ASCII (period and organ id); anything else is dropped
    let name: String = r
        .file_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    // only the kinds of document the report is written as are passed on
    let kind = match r.content_type.as_str() {
        "text/html; charset=utf-8" | "text/csv; charset=utf-8" | "application/pdf" => {
            r.content_type
        }
        _ => "application/octet-stream".to_owned(),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        r.content,
    )
        .into_response())
}
