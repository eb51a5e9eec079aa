//! The situation report (形势分析报告) of a month, quarter or year: one self-contained HTML page
//! whose charts are SVG drawn here with plotters, carrying what Art. 41 asks of the yearly
//! report — the statistics, the fields petitions concern, the organs most complained about,
//! forwarding, assignment and supervision, and the suggestions made and whether they were
//! adopted.

use crate::figures::{Labels, channel_label};
use crate::period::Months;
use crate::queries::Figures;
use crate::tally::Basis;
use petition_auth::FigureScope;
use petition_charts::{bars, change, grid, pct};
use petition_domain::beijing_time;
use petition_proto::v1 as pb;
use std::fmt::Write;
use tonic::Status;

/// Escapes text for HTML and SVG.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn chart_error(e: petition_charts::ChartError) -> Status {
    tracing::error!(error = %e, "drawing a chart failed");
    Status::internal("drawing a chart of the report failed")
}

fn rate(r: &Option<pb::Rate>) -> String {
    match r {
        Some(pb::Rate {
            numerator,
            denominator,
            value: Some(v),
        }) => format!("{} <small>({numerator}/{denominator})</small>", pct(*v)),
        _ => "—".into(),
    }
}

fn figure_row(out: &mut String, name: &str, f: &Option<pb::Figure>) {
    let f = f.unwrap_or_default();
    let _ = write!(
        out,
        "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        f.count,
        change(f.count, f.previous),
        change(f.count, f.year_ago)
    );
}

fn share_table(out: &mut String, caption: &str, shares: &[pb::Share]) {
    let _ = write!(
        out,
        "<table><caption>{}</caption><thead><tr><th>#</th><th>名称</th><th>件次</th><th>人次</th><th>占比</th></tr></thead><tbody>",
        esc(caption)
    );
    for (i, s) in shares.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            esc(&s.label),
            s.cases,
            s.persons,
            pct(s.share)
        );
    }
    out.push_str("</tbody></table>");
}

pub async fn render(g: &Figures, m: Months, scope: &FigureScope) -> Result<String, Status> {
    let labels = Labels {
        tree: &g.shared.reference.tree,
        taxonomy: &g.shared.reference.taxonomy,
    };
    let s = g.situation(m, scope).await?;
    let cards = g.scorecards(m, Basis::Petition, scope).await?;
    let trend = g
        .trend(m.last, 12.max(m.len() as u32).min(36), scope)
        .await?;
    let hot = g.hotspots(m.last, scope).await?;
    let suggestions = g
        .store
        .suggestions(m, scope.organs.as_deref())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading suggestions failed");
            Status::internal("storage failure; retry later")
        })?;
    let who = if scope.organ.is_empty() {
        "全辖区".to_owned()
    } else {
        labels.organ(&scope.organ)
    };
    let title = format!("{who}{}信访形势分析报告", m.label());
    let cases = s.cases.unwrap_or_default();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{css}</style></head><body><main>",
        t = esc(&title),
        css = CSS
    );
    let _ = write!(
        h,
        "<header><h1>{}</h1><p class=\"meta\">统计期间 {} 至 {}（按信访日期，北京时间）· 生成于 {} · Petition Pipeline</p></header>",
        esc(&title),
        m.first,
        m.last,
        beijing_time(g.shared.clock.now())
    );
    // 一、总体情况
    let _ = write!(
        h,
        "<section><h2>一、总体情况</h2><p class=\"lead\">本期登记信访事项 <b>{}</b> 件次、<b>{}</b> 人次，环比 {}，同比 {}；其中网上信访 {} 件次，网信占比 <b>{}</b>。越级访 {} 件次，集体访 {} 件次，重复信访 {} 件次。</p>",
        cases.count,
        s.persons.unwrap_or_default().count,
        change(cases.count, cases.previous),
        change(cases.count, cases.year_ago),
        s.online.unwrap_or_default().count,
        pct(s.online_share),
        s.leapfrog.unwrap_or_default().count,
        s.group.unwrap_or_default().count,
        s.repeat.unwrap_or_default().count,
    );
    h.push_str("<table><caption>主要数据及变化</caption><thead><tr><th>指标</th><th>本期</th><th>环比</th><th>同比</th></tr></thead><tbody>");
    figure_row(&mut h, "件次", &s.cases);
    figure_row(&mut h, "人次", &s.persons);
    figure_row(&mut h, "网上信访", &s.online);
    figure_row(&mut h, "越级访", &s.leapfrog);
    figure_row(&mut h, "集体访", &s.group);
    figure_row(&mut h, "重复信访", &s.repeat);
    h.push_str("</tbody></table>");
    let _ = write!(
        h,
        "<figure><figcaption>近{}个月信访件次走势</figcaption>{}</figure></section>",
        trend.len(),
        petition_charts::trend(&trend).map_err(chart_error)?
    );
    // 二、渠道
    let _ = write!(
        h,
        "<section><h2>二、信访渠道</h2><figure><figcaption>各渠道件次及占比</figcaption>{}</figure></section>",
        bars(&s.by_channel).map_err(chart_error)?
    );
    // 三、领域
    let _ = write!(
        h,
        "<section><h2>三、反映问题的领域</h2><figure><figcaption>按内容分类（一级）</figcaption>{}</figure>",
        bars(&s.by_category_l1).map_err(chart_error)?
    );
    share_table(&mut h, "十大热点问题（按最细一级分类）", &s.hot_issues);
    h.push_str("</section>");
    // 四、地域
    let _ = write!(
        h,
        "<section><h2>四、问题发生地</h2><figure><figcaption>按问题属地（色深者多）</figcaption>{}</figure></section>",
        grid(&s.by_location).map_err(chart_error)?
    );
    // 五、被反映较多的单位
    h.push_str("<section><h2>五、被反映问题较多的单位</h2>");
    share_table(&mut h, "按责任单位", &s.most_complained);
    h.push_str("</section>");
    // 六、转送、交办、督办
    let _ = write!(
        h,
        "<section><h2>六、转送、交办、督办情况</h2><table><caption>本期信访事项的办理方式</caption><tbody><tr><th scope=\"row\">转送</th><td>{}</td></tr><tr><th scope=\"row\">交办</th><td>{}</td></tr><tr><th scope=\"row\">诉访分离（导入法定途径）</th><td>{}</td></tr><tr><th scope=\"row\">并入在办事项</th><td>{}</td></tr><tr><th scope=\"row\">督办（件）</th><td>{}</td></tr><tr><th scope=\"row\">催办、挂牌督办、通报（件）</th><td>{}</td></tr></tbody></table></section>",
        s.forwarded, s.assigned, s.diverted, s.linked, s.supervised, s.urged
    );
    // 七、考核
    h.push_str("<section><h2>七、考核指标</h2><table><caption>按信访日期统计（分子/分母）</caption><thead><tr><th>单位</th><th>件次</th><th>及时受理率</th><th>按期办结率</th><th>参评率</th><th>满意率</th><th>重复信访率</th><th>包案化解率</th></tr></thead><tbody>");
    for c in cards.bureaux.iter().chain(&cards.organs) {
        let _ = write!(
            h,
            "<tr><th scope=\"row\">{}{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.organ_name),
            if c.bureau { "（信访部门）" } else { "" },
            c.cases,
            rate(&c.timely_acceptance),
            rate(&c.on_time_completion),
            rate(&c.rated),
            rate(&c.satisfied),
            rate(&c.repeat),
            rate(&c.leader_resolution)
        );
    }
    h.push_str("</tbody></table></section>");
    // 八、热点预警
    let _ = write!(h, "<section><h2>八、热点预警（{}）</h2>", m.last);
    if hot.is_empty() {
        h.push_str("<p>本月没有明显高于自身历史水平的问题。</p>");
    } else {
        h.push_str("<table><caption>问题类别×属地，本月件次明显高于前12个月（z ≥ 3 且不少于5件）</caption><thead><tr><th>问题</th><th>属地</th><th>本月</th><th>前12月均值</th><th>z</th></tr></thead><tbody>");
        for x in &hot {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td></tr>",
                esc(&x.category_label),
                esc(&x.location_label),
                x.cases,
                x.mean,
                x.z
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");
    // 九、建议
    h.push_str("<section><h2>九、向党委、政府提出的建议及采纳情况</h2>");
    if suggestions.is_empty() {
        h.push_str("<p>本期未登记建议。</p>");
    } else {
        h.push_str("<table><thead><tr><th>日期</th><th>报送</th><th>建议</th><th>采纳情况</th></tr></thead><tbody>");
        for x in &suggestions {
            let adopted = match x.adoption.as_str() {
                "adopted" => "已采纳",
                "partly" => "部分采纳",
                "declined" => "未采纳",
                _ => "待反馈",
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><b>{}</b><br>{}</td><td>{}{}</td></tr>",
                x.made_on,
                esc(&x.addressee),
                esc(&x.title),
                esc(&x.body),
                adopted,
                if x.outcome.is_empty() {
                    String::new()
                } else {
                    format!("：{}", esc(&x.outcome))
                }
            );
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</section>");
    let _ = write!(
        h,
        "<footer><p>口径说明：件次为登记的信访事项数；人次为来访人数，书信、网上等渠道按信访人数计，至少1人。网信占比＝网上信访件次÷件次。各项考核指标的分子、分母见接口文档（analytics.proto）。渠道：{}。</p></footer></main></body></html>",
        ["visit", "letter", "online", "phone", "fax", "upstream"]
            .map(channel_label)
            .join("、")
    );
    Ok(h)
}

const CSS: &str = "body{font-family:'Noto Sans CJK SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif;color:#1b1b1b;background:#f4f5f7;margin:0}main{max-width:820px;margin:0 auto;background:#fff;padding:24px 32px}h1{font-size:26px;color:#8b1a1a;text-align:center;margin:8px 0}h2{font-size:19px;border-left:5px solid #8b1a1a;padding-left:8px;margin-top:28px}.meta{text-align:center;color:#555;font-size:13px}.lead{font-size:16px;line-height:1.8}table{border-collapse:collapse;width:100%;margin:10px 0;font-size:14px}caption{text-align:left;font-weight:bold;padding:4px 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}thead th{background:#eef1f5}td small{color:#666}figure{margin:10px 0}figcaption{font-weight:bold;font-size:14px;margin-bottom:4px}svg{max-width:100%;height:auto}footer{font-size:12px;color:#555;margin-top:24px;border-top:1px solid #ddd}";
