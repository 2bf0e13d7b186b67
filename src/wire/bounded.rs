//! Deserializers that never trust a length read from the wire.
//!
//! A length inside a frame is a claim. serde's own `String`, `Vec<u8>` and
//! `Vec<T>` implementations reserve memory for the claimed length before
//! they read a byte (bounded only by the decoder's limit, or for sequences
//! by serde's "cautious" 1 MiB). The fields of every frame therefore decode
//! through these helpers instead:
//!
//! - strings and byte strings are decoded *borrowed* from the frame's
//!   payload (bincode checks the claimed length against the bytes that are
//!   actually left before handing out the slice) and copied only then, so
//!   they never cost more than the bytes that came;
//! - sequences start small and grow only as elements actually decode.
//!
//! The codec also decodes with a bincode limit sized to the frame
//! (`codec.rs`), as a second line of defence.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serializer};

/// Most elements reserved up front when decoding a sequence, whatever its
/// length prefix claims; more are allocated only as they decode.
const SEQ_PREALLOC: usize = 16;

/// A `String` field.
pub mod string {
    use super::*;

    /// Decodes a string borrowed from the frame, then copies it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_str(StrVisitor)
    }
}

/// An `Option<String>` field.
pub mod opt_string {
    use super::*;

    /// Decodes `None` or a string borrowed from the frame.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_option(OptVisitor)
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an optional string")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(StrVisitor).map(Some)
        }
    }
}

/// A message: arbitrary bytes ([`Bytes`]).
pub mod bytes_field {
    use super::*;

    /// Encodes the bytes as one length-prefixed byte string.
    pub fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    /// Decodes a byte string borrowed from the frame, then copies it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_bytes(BytesVisitor)
    }
}

/// A `Vec<T>` field of any element type.
pub mod vec {
    use super::*;

    /// Decodes a sequence without reserving what its length prefix claims.
    pub fn deserialize<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        d.deserialize_seq(SeqVisitor(PhantomData))
    }

    struct SeqVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let hint = seq.size_hint().unwrap_or(0);
            let mut out = Vec::with_capacity(hint.min(SEQ_PREALLOC));
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
    }
}

/// `(seq, message)` pairs of a `Listed` answer.
pub mod listed {
    use super::*;
    use crate::entry::Seq;

    /// One pair, with the message as a byte string.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Pair(Seq, #[serde(with = "bytes_field")] Bytes);

    /// Encodes the pairs (cloning a `Bytes` only bumps a reference count).
    pub fn serialize<S: Serializer>(v: &[(Seq, Bytes)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|(n, b)| Pair(*n, b.clone())))
    }

    /// Decodes the pairs without trusting any length.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(Seq, Bytes)>, D::Error> {
        let pairs: Vec<Pair> = vec::deserialize(d)?;
        Ok(pairs.into_iter().map(|Pair(n, b)| (n, b)).collect())
    }
}

struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Bytes;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string")
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v.as_bytes()))
    }
}
