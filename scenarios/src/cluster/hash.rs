//! The hashes the real components name things with: kube-proxy's chain names
//! (base32 of SHA-256) and Calico's veth names (hex of SHA-1).

use sha2::{Digest, Sha256};

/// SHA-1 (FIPS 180-4), for Calico's `cali` + 11 hex digits veth names.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 4648 base32 with padding (Go's `base32.StdEncoding`).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let v = buf.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
        let chars = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for i in 0..8 {
            if i < chars {
                out.push(ALPHABET[((v >> (35 - 5 * i)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// kube-proxy's `portProtoHash`: base32(sha256(name + protocol))[:16].
pub fn kube_proxy_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    base32(&digest)[..16].to_string()
}

/// Calico's `VethNameForWorkload`: "cali" + hex(sha1("namespace.pod"))[:11].
pub fn calico_veth_name(namespace: &str, pod: &str) -> String {
    let h = sha1(format!("{namespace}.{pod}").as_bytes());
    format!("cali{}", &hex(&h)[..11])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_answers() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(&sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }

    #[test]
    fn base32_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "MY======"),
            ("fo", "MZXQ===="),
            ("foo", "MZXW6==="),
            ("foob", "MZXW6YQ="),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI======"),
        ] {
            assert_eq!(base32(i.as_bytes()), o);
        }
    }

    /// Chain names every kubeadm cluster has (`iptables-save -t nat`).
    #[test]
    fn kube_proxy_chain_names_match_real_clusters() {
        assert_eq!(
            kube_proxy_hash("default/kubernetes:httpstcp"),
            "NPX46M4PTMTKRN6Y"
        );
        assert_eq!(
            kube_proxy_hash("kube-system/kube-dns:dnsudp"),
            "TCOU7JCQXEZGVUNU"
        );
        assert_eq!(
            kube_proxy_hash("kube-system/kube-dns:dns-tcptcp"),
            "ERIFXISQEP7F7OF4"
        );
        assert_eq!(
            kube_proxy_hash("kube-system/kube-dns:metricstcp"),
            "JD5MR3NA4I4DYORP"
        );
    }
}
