//! Randomness from the operating system's CSPRNG, the one source for every id, token
//! and key the service makes.

/// Fill `bytes`; fails only when the OS source does.
pub fn fill(bytes: &mut [u8]) -> anyhow::Result<()> {
    getrandom::fill(bytes).map_err(|e| anyhow::anyhow!("the OS random source failed: {e}"))
}

pub fn u64() -> anyhow::Result<u64> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// `n` random bytes as lower-case hex (`2n` characters).
pub fn hex(n: usize) -> anyhow::Result<String> {
    let mut b = vec![0u8; n];
    fill(&mut b)?;
    Ok(::hex::encode(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_tokens_have_the_asked_length_and_differ() {
        let (a, b) = (super::hex(16).unwrap(), super::hex(16).unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
