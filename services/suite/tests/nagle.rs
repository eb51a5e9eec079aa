//! A reply of several kilobytes comes as fast as a small one to a client that, like Python's
//! grpcio, neither turns Nagle's algorithm off nor sends anything while it waits. If the server
//! left Nagle on, the last piece of a reply written in several pieces would wait for the
//! client's delayed acknowledgment (~40 ms on Linux). The test compares the two as a ratio, so
//! that a slow machine slows both sides alike.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::Utc;
mod common;

use common::Suite;
use petition_e2e::{clerk, load_request};
use petition_proto::v1 as pb;
use prost::Message;
use std::time::{Duration, Instant};

/// One unary call over a bare HTTP/2 connection; returns the grpc-status and the reply size.
async fn call(
    client: &mut h2::client::SendRequest<Bytes>,
    addr: std::net::SocketAddr,
    token: &str,
    request: &pb::GetCaseRequest,
) -> (String, usize) {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/petition.v1.IntakeService/GetCase"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", token)
        .body(())
        .unwrap();
    let message = request.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(message.len() as u32);
    frame.put_slice(&message);
    let mut ready = client.clone().ready().await.unwrap();
    let (response, mut body_out) = ready.send_request(req, false).unwrap();
    body_out.send_data(frame.freeze(), true).unwrap();
    let response = response.await.unwrap();
    let header_status = response
        .headers()
        .get("grpc-status")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut body = response.into_body();
    let mut size = 0;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        size += chunk.len();
        body.flow_control().release_capacity(chunk.len()).unwrap();
    }
    let trailer_status = body
        .trailers()
        .await
        .unwrap()
        .and_then(|t| t.get("grpc-status").map(|v| v.to_str().unwrap().to_owned()));
    (trailer_status.or(header_status).unwrap_or_default(), size)
}

fn p90(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() * 9 / 10]
}

#[tokio::test]
async fn a_reply_of_several_kilobytes_is_not_held_back_by_nagle() {
    let suite = Suite::embedded(Utc::now()).await;
    let clerk = clerk("pingcheng.bureau");
    let mut request = load_request(1);
    request.content = "信访人反映的问题、事实和理由。".repeat(300);
    let case_id = suite
        .intake(&clerk)
        .await
        .register_petition(request)
        .await
        .unwrap()
        .into_inner()
        .case_id;
    let token = format!(
        "Bearer {}",
        suite.token_keys.issue(&clerk, chrono::Duration::hours(1))
    );
    let addr = suite.grpc_addr;
    // Nagle left on at this end, as most clients leave it.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);

    let existing = pb::GetCaseRequest {
        case_id: case_id.clone(),
        ..Default::default()
    };
    let unknown = pb::GetCaseRequest {
        case_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    };
    let (status, size) = call(&mut client, addr, &token, &existing).await;
    assert_eq!(status, "0");
    assert!(size > 8_000, "the reply is several kilobytes: {size} bytes");
    let (status, _) = call(&mut client, addr, &token, &unknown).await;
    assert_eq!(status, "5", "NOT_FOUND, answered in one piece");

    let (mut big, mut small) = (Vec::new(), Vec::new());
    for _ in 0..25 {
        let t = Instant::now();
        call(&mut client, addr, &token, &existing).await;
        big.push(t.elapsed());
        let t = Instant::now();
        call(&mut client, addr, &token, &unknown).await;
        small.push(t.elapsed());
    }
    // With Nagle on, every other reply waits ~40 ms here (the client's delayed ACK), so the
    // 90th percentile shows it where the median may not. The work differs too (a case read,
    // its petitioners unsealed): a factor of ten allows for it, well below the twenty to forty
    // a delayed acknowledgment makes of it.
    let (big, small) = (p90(big), p90(small));
    assert!(
        big < small * 10,
        "a {size}-byte reply took {big:?} (90th percentile) where a small one took {small:?}"
    );
    suite.stop().await;
}
