//! TLS client certificate identification: the SHA-1 fingerprint of the
//! certificate (Crossbar's `certificate-sha1`) and the subject common name,
//! read with a small bounded DER walker (no full X.509 parsing: the TLS
//! stack has already verified the certificate chain).

use sha1::{Digest, Sha1};

/// SHA-1 fingerprint of a DER certificate, upper-case hex without colons.
pub fn sha1_fingerprint(der: &[u8]) -> String {
    crate::util::hex_encode(&Sha1::digest(der)).to_ascii_uppercase()
}

/// Normalizes a configured fingerprint (`AB:CD:..` or `abcd..`) to upper
/// case without colons.
pub fn normalize_fingerprint(s: &str) -> String {
    s.chars().filter(|c| *c != ':').collect::<String>().to_ascii_uppercase()
}

/// One DER TLV: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (len0 as usize, rest)
    } else {
        let n = (len0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | b as usize;
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// OID 2.5.4.3 (commonName), DER contents.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// The subject common name of a DER X.509 certificate (the last CN if there
/// are several), or `None` if absent or unparseable.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (0x30, cert, _) = tlv(der)? else { return None };
    let (0x30, tbs, _) = tlv(cert)? else { return None };
    let mut rest = tbs;
    // [0] version (optional), serial, signature alg, issuer, validity, subject.
    let mut fields = Vec::with_capacity(6);
    while fields.len() < 6 {
        let (tag, body, r) = tlv(rest)?;
        rest = r;
        if fields.is_empty() && tag != 0xa0 {
            fields.push((0xa0, &[][..])); // no explicit version
        }
        fields.push((tag, body));
    }
    let (0x30, subject) = fields[5] else { return None };
    let mut cn = None;
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (0x31, set, r) = tlv(rdns)? else { return None };
        rdns = r;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (0x30, atv, r) = tlv(atvs)? else { return None };
            atvs = r;
            let (0x06, oid, val) = tlv(atv)? else { return None };
            if oid == OID_CN {
                let (tag, s, _) = tlv(val)?;
                cn = match tag {
                    // UTF8String, PrintableString, IA5String, T61String
                    0x0c | 0x13 | 0x16 | 0x14 => std::str::from_utf8(s).ok().map(str::to_owned),
                    // BMPString (UTF-16BE)
                    0x1e if s.len() % 2 == 0 => {
                        let u: Vec<u16> = s.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                        String::from_utf16(&u).ok()
                    }
                    _ => None,
                };
            }
        }
    }
    cn
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny self-made "certificate" with the X.509 skeleton the walker
    /// needs: tbs = [0]{INTEGER 2}, serial, alg, issuer, validity, subject.
    pub(crate) fn fake_cert(cn: &str) -> Vec<u8> {
        fn wrap(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut v = vec![tag];
            if body.len() < 128 {
                v.push(body.len() as u8);
            } else {
                v.push(0x82);
                v.extend_from_slice(&(body.len() as u16).to_be_bytes());
            }
            v.extend_from_slice(body);
            v
        }
        let name = |cn: &str| {
            let mut atv = wrap(0x06, OID_CN);
            atv.extend(wrap(0x0c, cn.as_bytes()));
            let org = {
                let mut a = wrap(0x06, &[0x55, 0x04, 0x0a]);
                a.extend(wrap(0x13, b"Org"));
                wrap(0x31, &wrap(0x30, &a))
            };
            let mut n = org;
            n.extend(wrap(0x31, &wrap(0x30, &atv)));
            wrap(0x30, &n)
        };
        let mut tbs = wrap(0xa0, &wrap(0x02, &[2]));
        tbs.extend(wrap(0x02, &[1, 2, 3]));
        tbs.extend(wrap(0x30, &wrap(0x06, &[0x2a, 0x86, 0x48])));
        tbs.extend(name("Issuer CA"));
        tbs.extend(wrap(0x30, &[]));
        tbs.extend(name(cn));
        let mut cert = wrap(0x30, &tbs);
        cert.extend(wrap(0x30, &[]));
        cert.extend(wrap(0x03, &[0]));
        wrap(0x30, &cert)
    }

    #[test]
    fn common_name_and_fingerprint() {
        let der = fake_cert("client-1.example.com");
        assert_eq!(subject_common_name(&der).as_deref(), Some("client-1.example.com"));
        let fp = sha1_fingerprint(&der);
        assert_eq!(fp.len(), 40);
        assert_eq!(normalize_fingerprint(&fp.to_ascii_lowercase()), fp);
        let colons: String =
            fp.as_bytes().chunks(2).map(|c| std::str::from_utf8(c).unwrap_or("")).collect::<Vec<_>>().join(":");
        assert_eq!(normalize_fingerprint(&colons), fp);
        // Known SHA-1 value.
        assert_eq!(sha1_fingerprint(b"abc"), "A9993E364706816ABA3E25717850C26C9CD0D89D");
    }

    #[test]
    fn garbage_does_not_panic() {
        assert_eq!(subject_common_name(&[]), None);
        assert_eq!(subject_common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        let der = fake_cert("x");
        for cut in 0..der.len() {
            let _ = subject_common_name(&der[..cut]);
        }
        for i in 0..der.len() {
            let mut d = der.clone();
            d[i] ^= 0xff;
            let _ = subject_common_name(&d);
        }
    }
}
