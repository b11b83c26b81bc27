//! The hash functions behind the kubelet's checkpoint checksums.
//!
//! * Legacy formats (CPU/memory manager, device manager): FNV-1a 32 over the go-spew `%#v`
//!   rendering of a Go value ([`crate::spew`]), stored as a uint64 JSON number.
//! * Allocation state and the 1.36 `dataChecksum` fields: the same hash over a Go *string*, which
//!   spew renders as `(string)` followed by the raw bytes.
//! * DRA: CRC-32/IEEE over the `Data` string.

use crate::spew::{GoRender, render};

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

/// An incremental FNV-1a 32-bit hasher (xor, then multiply).
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a32(u32);

impl Default for Fnv1a32 {
    fn default() -> Self {
        Fnv1a32(FNV32_OFFSET)
    }
}

impl Fnv1a32 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u32::from(b);
            h = h.wrapping_mul(FNV32_PRIME);
        }
        self.0 = h;
    }

    /// The hash so far.
    pub fn finish(&self) -> u32 {
        self.0
    }
}

/// FNV-1a 32 of `bytes`.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    let mut h = Fnv1a32::new();
    h.write(bytes);
    h.finish()
}

/// The kubelet's `checksum.New(value)`: FNV-1a 32 over the spew rendering of `value`, widened to
/// the uint64 the files store.
pub fn go_checksum<T: GoRender + ?Sized>(value: &T) -> u64 {
    u64::from(fnv32a(
        render(&value.go_type(), &value.go_value()).as_bytes(),
    ))
}

/// `checksum.New(s)` for a Go string `s`: `fnv32a("(string)" + s)`, without building the
/// concatenation.
pub fn string_checksum(data: &str) -> u64 {
    let mut h = Fnv1a32::new();
    h.write(b"(string)");
    h.write(data.as_bytes());
    u64::from(h.finish())
}

/// CRC-32/IEEE (`crc32.ChecksumIEEE`), used by `dra_manager_state`.
pub fn crc32_ieee(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_values() {
        // Offset basis for empty input; published FNV-1a 32 test vectors.
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn string_checksum_is_prefixed_hash() {
        assert_eq!(string_checksum("{}"), u64::from(fnv32a(b"(string){}")));
        // Empty allocation data (state.md 12.5, derived).
        assert_eq!(string_checksum("{}"), 694_314_937);
    }

    #[test]
    fn cpu_v4_data_checksum_vectors() {
        // 1.36-dev `dataChecksum` values (state.md 12.1): fnv32a("(string)" + data).
        for (data, want) in [
            (
                r#"{"policyName":"none","defaultCPUSet":"4-6"}"#,
                657_950_972,
            ),
            (
                r#"{"policyName":"static","defaultCPUSet":"7-9","entries":{"pod":{"container1":"4-6","container2":"1-3"}}}"#,
                1_420_829_534,
            ),
            (
                r#"{"policyName":"static","defaultCPUSet":"1-3","entries":{"pod":{"container1":"4-6","container2":"7-9"}},"podEntries":{"pod":{"cpuSet":"4-10"}},"baselines":{"pod":{"container1":{"baseline":"4-5"},"container2":{"baseline":"7-8"}}}}"#,
                1_032_795_074,
            ),
        ] {
            assert_eq!(string_checksum(data), want, "{data}");
            assert_ne!(string_checksum(&data.replacen('4', "5", 1)), want);
        }
    }

    #[test]
    fn crc32_reference_value() {
        assert_eq!(crc32_ieee(b"123456789"), 0xcbf4_3926);
    }
}
