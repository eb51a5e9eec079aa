//! The clerk's window: a petition from any channel, checked by intake before it is saved (the
//! repeat, leapfrog and group warnings, 诉访分离), then registered, and a receipt with the case
//! number and the query code (查询码) to hand the petitioner.

use crate::page::{CHANNELS, at, chosen, csrf, frame, options};
use crate::session::{Flash, Receipt};
use crate::{Console, Fields, Problem, Shared, Visit, call, checked, request_id};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Form;
use chrono::{NaiveDateTime, TimeZone, Utc};
use maud::{Markup, html};
use petition_domain::calendar::{beijing, local_date};
use petition_domain::org::OrgKind;
use petition_proto::v1 as pb;
use std::collections::BTreeMap;

const ID_TYPES: [(pb::IdType, &str); 3] = [
    (pb::IdType::ResidentId, "居民身份证"),
    (pb::IdType::Passport, "护照"),
    (pb::IdType::Other, "其他证件"),
];

pub async fn form(State(c): Shared, visit: Visit) -> Result<Response, Problem> {
    visit.user()?;
    let flash = c.sessions.take_flash(&visit.id);
    Ok(frame(
        "登记信访事项",
        &visit,
        flash,
        petition_form(&c, &visit, &Fields(vec![]), &[], None),
    )
    .into_response())
}

/// The places a petition can be about: every region code of the organisation tree, named by
/// the bureau or street office there.
fn regions(c: &Console) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for o in c.tree.organs() {
        if matches!(o.kind, OrgKind::Bureau | OrgKind::Street) {
            out.entry(o.region.to_string())
                .or_insert_with(|| o.name.trim_end_matches("信访局").to_owned());
        }
    }
    out
}

fn petition_form(
    c: &Console,
    visit: &Visit,
    f: &Fields,
    warnings: &[String],
    confirming: Option<&str>,
) -> Markup {
    let now = c
        .clock
        .now()
        .with_timezone(&beijing())
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let received_at = match f.get("received_at") {
        "" => now.as_str(),
        v => v,
    };
    let names = f.all("p_name");
    let rows = names.len().max(1);
    let at_row = |name: &str, i: usize| f.all(name).get(i).copied().unwrap_or("").to_owned();
    let mut categories: Vec<_> = c.taxonomy.categories().collect();
    categories.sort_by(|a, b| a.code.cmp(&b.code));
    let chosen_category = f.get("category");
    let chosen_region = f.get("location");
    html! {
        form.petition method="post" action="/register" novalidate {
            (csrf(visit))
            input type="hidden" name="form_id" value=(match f.get("form_id") { "" => request_id(), id => id.to_owned() });
            @if let Some(print) = confirming {
                section.warnings role="alert" aria-labelledby="warn-h" {
                    h2 #warn-h { "登记前请注意" }
                    ul { @for w in warnings { li { (w) } } }
                    p { "核实后仍要登记，请点击“确认登记”。" }
                    input type="hidden" name="confirm" value=(print);
                }
            }
            fieldset {
                legend { "来源" }
                label for="channel" { "信访形式 (channel)" }
                select #channel name="channel" required {
                    (options(&CHANNELS, f.get("channel")))
                }
                label for="received_at" { "收到时间 (北京时间)" }
                input #received_at name="received_at" type="datetime-local" required value=(received_at);
            }
            fieldset #petitioners {
                legend { "信访人" }
                @for i in 0..rows {
                    div.petitioner {
                        @let n = i + 1;
                        label for={"p_name_" (n)} { "姓名 (" (n) ")" }
                        input id={"p_name_" (n)} name="p_name" type="text" autocomplete="off" value=(at_row("p_name", i));
                        label for={"p_id_type_" (n)} { "证件类型" }
                        select id={"p_id_type_" (n)} name="p_id_type" {
                            (options(&ID_TYPES, &at_row("p_id_type", i)))
                        }
                        label for={"p_id_" (n)} { "证件号码" }
                        input id={"p_id_" (n)} name="p_id" type="text" inputmode="text" autocomplete="off"
                            data-check="resident-id" aria-describedby={"p_id_" (n) "_note"} value=(at_row("p_id", i));
                        p.note id={"p_id_" (n) "_note"} aria-live="polite" {}
                        label for={"p_phone_" (n)} { "联系电话" }
                        input id={"p_phone_" (n)} name="p_phone" type="tel" autocomplete="off" value=(at_row("p_phone", i));
                        label for={"p_address_" (n)} { "住址" }
                        input id={"p_address_" (n)} name="p_address" type="text" autocomplete="off" value=(at_row("p_address", i));
                    }
                }
                button.secondary type="button" data-add="petitioner" { "添加信访人" }
            }
            fieldset {
                legend { "事项" }
                label for="category" { "内容分类" }
                select #category name="category" required {
                    option value="" { "请选择" }
                    @for cat in &categories {
                        @let depth = cat.code.matches('.').count();
                        option value=(cat.code) selected[cat.code == chosen_category] {
                            @for _ in 0..depth { "　" }
                            (cat.code) " " (cat.name)
                        }
                    }
                }
                label for="location" { "问题属地 (region code)" }
                select #location name="location" required {
                    option value="" { "请选择" }
                    @for (code, name) in regions(c) {
                        option value=(code) selected[code == chosen_region] { (code) " " (name) }
                    }
                }
                label for="title" { "标题" }
                input #title name="title" type="text" required maxlength="200" value=(f.get("title"));
                label for="content" { "主要诉求和事实理由" }
                textarea #content name="content" rows="6" required { (f.get("content")) }
                div.numbers {
                    div {
                        label for="people_present" { "来访人数 (信访人数)" }
                        input #people_present name="people_present" type="number" min="0" value=(f.get("people_present"));
                    }
                    div {
                        label for="people_affected" { "涉及人数" }
                        input #people_affected name="people_affected" type="number" min="0" value=(f.get("people_affected"));
                    }
                    div {
                        label for="representatives" { "代表人数 (至多5人, Art. 20)" }
                        input #representatives name="representatives" type="number" min="0" max="5" value=(f.get("representatives"));
                    }
                }
            }
            fieldset {
                legend { "检举控告对象 (如有)" }
                label for="accused_name" { "被反映人" }
                input #accused_name name="accused_name" type="text" autocomplete="off" value=(f.get("accused_name"));
                label for="accused_organ" { "被反映单位" }
                select #accused_organ name="accused_organ" {
                    option value="" { "无" }
                    @for o in c.tree.organs() {
                        option value=(o.id) selected[o.id == f.get("accused_organ")] { (o.name) }
                    }
                }
            }
            button type="submit" { @if confirming.is_some() { "确认登记" } @else { "登记" } }
        }
    }
}

fn request(received_by: &str, f: &Fields) -> Result<pb::RegisterPetitionRequest, Problem> {
    let channel = chosen(&CHANNELS, f.get("channel")).ok_or_else(|| {
        Problem::Input("channel: choose how the petition came in (信访形式)".into())
    })?;
    let received_at = NaiveDateTime::parse_from_str(f.get("received_at"), "%Y-%m-%dT%H:%M")
        .ok()
        .and_then(|t| beijing().from_local_datetime(&t).single())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            Problem::Input("received_at: a date and time, Beijing time (收到时间)".into())
        })?;
    let rows = f.all("p_name").len();
    let (ids, types, phones, addresses) = (
        f.all("p_id"),
        f.all("p_id_type"),
        f.all("p_phone"),
        f.all("p_address"),
    );
    let petitioners = (0..rows)
        .filter_map(|i| {
            let name = f.all("p_name")[i];
            let id = ids.get(i).copied().unwrap_or("");
            (!name.is_empty() || !id.is_empty()).then(|| pb::PetitionerInput {
                name: name.to_owned(),
                id_type: chosen(&ID_TYPES, types.get(i).copied().unwrap_or(""))
                    .map(|t| t as i32)
                    .unwrap_or_default(),
                id_number: id.to_owned(),
                phone: phones.get(i).copied().unwrap_or("").to_owned(),
                address: addresses.get(i).copied().unwrap_or("").to_owned(),
                is_main: i == 0,
            })
        })
        .collect();
    let number = |name: &str| -> Result<u32, Problem> {
        match f.get(name) {
            "" => Ok(0),
            v => v
                .parse()
                .map_err(|_| Problem::Input(format!("{name}: a whole number of people"))),
        }
    };
    let accused =
        (!f.get("accused_name").is_empty() || !f.get("accused_organ").is_empty()).then(|| {
            pb::Accused {
                name: f.get("accused_name").to_owned(),
                organ_id: f.get("accused_organ").to_owned(),
            }
        });
    Ok(pb::RegisterPetitionRequest {
        channel: channel as i32,
        received_by: received_by.to_owned(),
        received_at: Some(petition_grpc::convert::ts(received_at)),
        petitioners,
        category: f.get("category").to_owned(),
        problem_location: f.get("location").to_owned(),
        title: f.get("title").to_owned(),
        content: f.get("content").to_owned(),
        people_present: number("people_present")?,
        people_affected: number("people_affected")?,
        representatives: number("representatives")?,
        accused,
        ..Default::default()
    })
}

/// What the clerk should know before saving, in words: the flags intake would set.
fn warnings(r: &pb::RegisterPetitionResponse) -> Vec<String> {
    let mut out = Vec::new();
    let f = r.flags.clone().unwrap_or_default();
    if f.repeat {
        out.push(match f.repeat_of_case_number.as_str() {
            "" => "重复信访：同一信访人就同一事项已有信访。".to_owned(),
            n => format!("重复信访：同一信访人就同一事项已有信访（{n}）。"),
        });
    }
    if f.repeat_of_open {
        out.push("该事项仍在办理中：登记后将并入在办案件 (并单)，不再重复交办。".into());
    }
    if f.open_below {
        out.push(match f.open_below_case_number.as_str() {
            "" => "下级机关正在办理同一事项 (Art. 19 ¶3)：不再重复受理。".to_owned(),
            n => format!("下级机关正在办理同一事项（{n}）(Art. 19 ¶3)：不再重复受理。"),
        });
    }
    if f.leapfrog {
        out.push("越级访：信访人越过有权处理的机关向上级机关提出 (Art. 20)。".into());
    }
    if f.group {
        out.push("集体访：来访人数达到集体访标准，请推选代表 (至多5人)。".into());
    }
    let legal = match pb::Diversion::try_from(r.diversion) {
        Ok(pb::Diversion::Litigation) => Some("诉讼"),
        Ok(pb::Diversion::Arbitration) => Some("仲裁"),
        Ok(pb::Diversion::Reconsideration) => Some("行政复议"),
        Ok(pb::Diversion::Discipline) => Some("纪检监察"),
        _ => None,
    };
    if let Some(way) = legal {
        out.push(format!(
            "诉访分离：该类事项应通过{way}途径处理，将告知信访人向有关机关提出。"
        ));
    }
    out
}

pub async fn submit(
    State(c): Shared,
    visit: Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    let f = checked(&visit, form)?;
    let user = visit.user()?.clone();
    let again = |message: String| {
        frame(
            "登记信访事项",
            &visit,
            Some(Flash::Refused(message)),
            petition_form(&c, &visit, &f, &[], None),
        )
        .into_response()
    };
    let mut req = match request(&user.principal.org, &f) {
        Ok(r) => r,
        Err(Problem::Input(m)) => return Ok(again(m)),
        Err(e) => return Err(e),
    };
    // A refusal, or a service that did not answer, is shown above the form as typed.
    let refused = |s: tonic::Status| match Problem::from(s) {
        Problem::SignIn => Err(Problem::SignIn),
        p => Ok(again(p.flash_words())),
    };
    // Saved without a second look only when the clerk confirms the very petition that was
    // checked: an edit after the warnings is checked again.
    let print = fingerprint(&req);
    if f.get("confirm") != print {
        req.validate_only = true;
        let checked = match c
            .intake()
            .register_petition(call(&user.token, req.clone())?)
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => return refused(s),
        };
        let told = warnings(&checked);
        if !told.is_empty() {
            return Ok(frame(
                "登记信访事项",
                &visit,
                None,
                petition_form(&c, &visit, &f, &told, Some(&print)),
            )
            .into_response());
        }
        req.validate_only = false;
    }
    // One form, one case: a second click or a resend of the same form shows the receipt.
    if !c.sessions.claim_form(&visit.id, f.get("form_id")) {
        return Ok(Redirect::to("/register/receipt").into_response());
    }
    let r = match c
        .intake()
        .register_petition(call(&user.token, req.clone())?)
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => {
            c.sessions.release_form(&visit.id, f.get("form_id"));
            return refused(s);
        }
    };
    let receipt = Receipt {
        warnings: warnings(&r),
        case_number: r.case_number,
        query_code: r.query_code,
        received_by: user.organ_name.clone(),
        registered_at: c.clock.now(),
        title: req.title,
    };
    c.sessions.update(&visit.id, |s| s.receipt = Some(receipt));
    Ok(Redirect::to("/register/receipt").into_response())
}

/// What the clerk confirms: the petition exactly as checked.
fn fingerprint(req: &pb::RegisterPetitionRequest) -> String {
    use prost::Message;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(req.encode_to_vec());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub async fn receipt(visit: Visit) -> Result<Response, Problem> {
    visit.user()?;
    let Some(r) = visit.session.receipt.clone() else {
        return Ok(Redirect::to("/register").into_response());
    };
    let body = html! {
        section.receipt aria-labelledby="receipt-h" {
            h2 #receipt-h { "信访事项受理回执 (登记)" }
            dl {
                dt { "案件编号" } dd #case-number { (r.case_number) }
                dt { "查询码" } dd #query-code { (r.query_code) }
                dt { "登记机关" } dd { (r.received_by) }
                dt { "登记时间" } dd { (at(r.registered_at)) }
                dt { "事项" } dd { (r.title) }
            }
            @if !r.warnings.is_empty() {
                ul.warnings { @for w in &r.warnings { li { (w) } } }
            }
            p { "请将查询码交给信访人：凭此码可在“信访人查询”页面查看办理进度、答复意见，并进行评价。" }
        }
        p { a href="/register" { "登记下一件" } }
    };
    Ok(frame("登记完成", &visit, None, body).into_response())
}

/// The resident-ID check the form runs as the clerk types: the same rule intake applies
/// (GB 11643: length, region, birth date, check digit), answered here so the clerk hears of a
/// mistyped digit before sending. The number is posted with the form token, not put in a URL,
/// so that it stays out of proxies' and servers' access logs.
pub async fn check_resident_id(
    State(c): Shared,
    visit: Visit,
    form: Form<Vec<(String, String)>>,
) -> Result<impl IntoResponse, Problem> {
    let f = checked(&visit, form)?;
    let today = local_date(c.clock.now());
    Ok(Json(
        match petition_domain::identity::ResidentId::parse(f.get("v"), today) {
            Ok(id) => serde_json::json!({
                "ok": true,
                "message": format!("号码有效：出生日期 {}", id.birth_date()),
            }),
            Err(e) => serde_json::json!({
                "ok": false,
                "message": format!("居民身份证号码有误 (resident ID: {e})"),
            }),
        },
    ))
}
