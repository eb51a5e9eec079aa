//! What a petitioner does with the query code (查询码) on their receipt, through the window of a
//! bureau (a clerk's token): rate the handling (满意度评价) and request review (复查) or
//! re-examination (复核).

use crate::client::{Conn, Failure, request_id};
use crate::output::Format;
use petition_proto::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Satisfaction {
    /// 满意
    Satisfied,
    /// 基本满意
    BasicallySatisfied,
    /// 不满意 (give --reason)
    Dissatisfied,
}

impl Satisfaction {
    fn pb(self) -> i32 {
        let s = match self {
            Satisfaction::Satisfied => pb::Satisfaction::Satisfied,
            Satisfaction::BasicallySatisfied => pb::Satisfaction::BasicallySatisfied,
            Satisfaction::Dissatisfied => pb::Satisfaction::Dissatisfied,
        };
        s as i32
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example:
  petition rate 140213-2026-000001 --query-code K7Q2-M9XD-4TPA --bureau satisfied --organ satisfied")]
pub struct Rate {
    /// case number (or id)
    pub case: String,
    /// the petitioner's query code, from the receipt
    #[arg(long)]
    pub query_code: String,
    /// the bureau that registered and routed it
    #[arg(long, value_enum)]
    pub bureau: Satisfaction,
    /// the organ that handled it
    #[arg(long, value_enum)]
    pub organ: Satisfaction,
    /// required when either is dissatisfied
    #[arg(long, default_value = "")]
    pub reason: String,
    #[arg(long)]
    pub request_id: Option<String>,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Example:
  petition review 140213-2026-000001 --query-code K7Q2-M9XD-4TPA \\
      --reason '答复未解决屋顶漏水问题'")]
pub struct Review {
    pub case: String,
    #[arg(long)]
    pub query_code: String,
    /// the facts and reasons the petitioner gives; within 30 days of service (Art. 35), or of
    /// the review opinion for re-examination (Art. 36)
    #[arg(long)]
    pub reason: String,
    #[arg(long)]
    pub request_id: Option<String>,
}

pub async fn rate(conn: &Conn, a: &Rate, format: Format) -> Result<(), Failure> {
    let number = conn.case_number(&a.case).await?;
    let t = conn
        .supervision()
        .rate_case(pb::RateCaseRequest {
            case_number: number,
            query_code: a.query_code.clone(),
            bureau: a.bureau.pb(),
            organ: a.organ.pb(),
            reason: a.reason.clone(),
            request_id: request_id(a.request_id.as_deref()),
        })
        .await?
        .into_inner();
    crate::cases::print_timeline(&t, format);
    Ok(())
}

pub async fn review(conn: &Conn, a: &Review, format: Format) -> Result<(), Failure> {
    let number = conn.case_number(&a.case).await?;
    let t = conn
        .supervision()
        .request_review(pb::RequestReviewRequest {
            case_number: number,
            query_code: a.query_code.clone(),
            reason: a.reason.clone(),
            request_id: request_id(a.request_id.as_deref()),
        })
        .await?
        .into_inner();
    crate::cases::print_timeline(&t, format);
    Ok(())
}
