//! Trace and span ids: fixed-size byte arrays on the wire, lowercase hex in
//! storage, SQL and JSON (the form every tracing UI shows and users paste).

use std::fmt;
use std::str::FromStr;

/// Why a string is not an id.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("expected at most {max} hex characters, got {got}")]
    TooLong { max: usize, got: usize },
    #[error("an id must not be empty")]
    Empty,
    #[error("'{0}' is not hexadecimal")]
    NotHex(String),
    #[error("an id of all zeroes is invalid")]
    Zero,
    #[error("expected {expected} bytes, got {got}")]
    WrongLength { expected: usize, got: usize },
}

macro_rules! hex_id {
    ($name:ident, $len:literal, $what:literal) => {
        #[doc = concat!("A ", $what, " of ", stringify!($len), " bytes; never all zeroes.")]
        #[derive(
            Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Takes an id from OTLP bytes, refusing wrong lengths and all zeroes
            /// (both invalid per the OTLP specification).
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
                let arr: [u8; $len] = bytes.try_into().map_err(|_| IdError::WrongLength {
                    expected: $len,
                    got: bytes.len(),
                })?;
                if arr == [0u8; $len] {
                    return Err(IdError::Zero);
                }
                Ok(Self(arr))
            }

            /// Parses hex as a user types it: either case, and shorter ids
            /// left-padded with zeroes the way Jaeger accepts 64-bit trace ids.
            pub fn parse_hex(s: &str) -> Result<Self, IdError> {
                let s = s.trim();
                if s.is_empty() {
                    return Err(IdError::Empty);
                }
                if s.len() > 2 * $len {
                    return Err(IdError::TooLong {
                        max: 2 * $len,
                        got: s.len(),
                    });
                }
                let mut padded = [b'0'; 2 * $len];
                padded[2 * $len - s.len()..].copy_from_slice(s.as_bytes());
                let mut out = [0u8; $len];
                const_hex::decode_to_slice(padded, &mut out)
                    .map_err(|_| IdError::NotHex(s.to_owned()))?;
                if out == [0u8; $len] {
                    return Err(IdError::Zero);
                }
                Ok(Self(out))
            }

            /// Lowercase hex, the stored and displayed form.
            pub fn to_hex(&self) -> String {
                const_hex::encode(self.0)
            }

            /// [`Self::to_hex`] written into `buf`, for a caller that
            /// copies it on at once (into a column) and need not
            /// allocate a string per id.
            pub fn hex_in<'b>(&self, buf: &'b mut const_hex::Buffer<$len>) -> &'b str {
                buf.format(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse_hex(s)
            }
        }
    };
}

hex_id!(TraceId, 16, "trace id");
hex_id!(SpanId, 8, "span id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_lowercase() {
        let id = TraceId::parse_hex("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap();
        assert_eq!(id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn pads_short_ids() {
        let id = TraceId::parse_hex("a3ce929d0e0e4736").unwrap();
        assert_eq!(id.to_hex(), "0000000000000000a3ce929d0e0e4736");
    }

    #[test]
    fn refuses_bad_ids() {
        assert_eq!(TraceId::parse_hex(""), Err(IdError::Empty));
        assert_eq!(SpanId::parse_hex("0000"), Err(IdError::Zero));
        assert!(matches!(SpanId::parse_hex("xyz"), Err(IdError::NotHex(_))));
        assert!(matches!(
            SpanId::parse_hex("00f067aa0ba902b7aa"),
            Err(IdError::TooLong { .. })
        ));
        assert_eq!(
            TraceId::from_bytes(&[1; 8]),
            Err(IdError::WrongLength {
                expected: 16,
                got: 8
            })
        );
        assert_eq!(SpanId::from_bytes(&[0; 8]), Err(IdError::Zero));
        assert!(SpanId::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 1]).is_ok());
    }
}
