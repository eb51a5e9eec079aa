//! Generated code for the `petition.v1` protobuf package, its codec, and the encoded descriptor
//! set that server reflection serves.

pub mod codec;

#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("petition.v1");
}

pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/petition_descriptor.bin"));

pub use prost_types::Timestamp;
