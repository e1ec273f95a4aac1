//! Short content digests: the first 8 bytes of a SHA-256 as 16 lowercase hex digits. Template hashes, config and
//! pod-settings digests and Event names use them to name their inputs compactly and stably across processes.

use sha2::{Digest, Sha256};

/// The first 16 hex digits of the SHA-256 of `bytes`. Written digit by digit: a reconcile computes several, and
/// formatting each byte into its own `String` cost more than the hash.
pub fn short_sha256(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut text = String::with_capacity(16);
    for byte in &digest[..8] {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_sixteen_hex_digits_of_the_sha256() {
        // SHA-256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 …; SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 …
        assert_eq!(short_sha256(b""), "e3b0c44298fc1c14");
        assert_eq!(short_sha256(b"abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn equals_formatting_each_byte() {
        for input in [&b"{}"[..], b"sei:v6.3.0", &[0u8, 255, 16, 1][..]] {
            let formatted: String = Sha256::digest(input).iter().take(8).map(|byte| format!("{byte:02x}")).collect();
            assert_eq!(short_sha256(input), formatted);
        }
    }
}
