//! SIP over TLS: the certificate and key are checked at start-up, with the
//! same rules rsipstack's TLS listener applies later (PEM certificates, a
//! PKCS#8 or PKCS#1 key, the key fitting the certificate), so a bad file
//! stops `callrec serve` with the file named instead of leaving a server
//! without TLS and a warning in the SIP stack's log.

use std::net::SocketAddr;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer};

/// SIP over TLS, ready to serve: where, and the PEM files' contents.
#[derive(Clone)]
pub struct TlsListen {
    /// The listen address.
    pub addr: SocketAddr,
    /// The certificate chain, PEM.
    pub certificate: Vec<u8>,
    /// The private key, PEM.
    pub private_key: Vec<u8>,
}

impl std::fmt::Debug for TlsListen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TlsListen")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Which of the two files a problem is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// `tls_certificate`.
    Certificate,
    /// `tls_private_key`.
    Key,
}

/// What is wrong with the certificate or the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProblem {
    /// The file at fault.
    pub file: File,
    /// What is wrong, and what to do.
    pub why: String,
}

fn problem(file: File, why: impl Into<String>) -> TlsProblem {
    TlsProblem {
        file,
        why: why.into(),
    }
}

/// The crypto provider of callrec's TLS: aws-lc-rs (the storage clients
/// link it; rsipstack links ring, so rustls cannot choose by itself).
pub fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// Installs [`provider`] as the process-wide default (rsipstack's listener
/// takes the default); a provider already installed stays.
pub fn install_provider() {
    let _ = provider().install_default();
}

/// Checks a PEM certificate chain and its PEM private key.
pub fn check(certificate: &[u8], private_key: &[u8]) -> Result<(), TlsProblem> {
    let certs = CertificateDer::pem_slice_iter(certificate)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            problem(
                File::Certificate,
                format!("not a PEM certificate file: {e}"),
            )
        })?;
    if certs.is_empty() {
        return Err(problem(
            File::Certificate,
            "no '-----BEGIN CERTIFICATE-----' block in it",
        ));
    }
    let key = key(private_key)?;
    rustls::sign::CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        problem(
            File::Key,
            format!("does not fit the certificate (or the certificate is unusable): {e}"),
        )
    })?;
    Ok(())
}

/// The private key as rsipstack reads it: the first PKCS#8 key, else the
/// first PKCS#1 (RSA) key.
fn key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsProblem> {
    let bad = |e: rustls::pki_types::pem::Error| problem(File::Key, format!("not a PEM file: {e}"));
    if let Some(k) = PrivatePkcs8KeyDer::pem_slice_iter(pem).next() {
        return Ok(PrivateKeyDer::Pkcs8(k.map_err(bad)?));
    }
    if let Some(k) = PrivatePkcs1KeyDer::pem_slice_iter(pem).next() {
        return Ok(PrivateKeyDer::Pkcs1(k.map_err(bad)?));
    }
    let sec1 = String::from_utf8_lossy(pem).contains("BEGIN EC PRIVATE KEY");
    Err(problem(
        File::Key,
        if sec1 {
            "an 'EC PRIVATE KEY' (SEC1) key; convert it to PKCS#8 with \
             `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`"
        } else {
            "no '-----BEGIN PRIVATE KEY-----' (PKCS#8) or \
             '-----BEGIN RSA PRIVATE KEY-----' (PKCS#1) block in it"
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn a_matching_pair_passes() {
        let (cert, key) = pair();
        assert_eq!(check(cert.as_bytes(), key.as_bytes()), Ok(()));
    }

    #[test]
    fn each_problem_names_its_file() {
        let (cert, key) = pair();
        let (_, other_key) = pair();
        let e = check(b"hello", key.as_bytes()).unwrap_err();
        assert_eq!(e.file, File::Certificate);
        assert!(e.why.contains("BEGIN CERTIFICATE"), "{e:?}");
        let e = check(cert.as_bytes(), cert.as_bytes()).unwrap_err();
        assert_eq!(e.file, File::Key);
        assert!(e.why.contains("PKCS#8"), "{e:?}");
        let e = check(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert_eq!(e.file, File::Key);
        assert!(e.why.contains("does not fit"), "{e:?}");
        let sec1 = key.replace("PRIVATE KEY", "EC PRIVATE KEY");
        let e = check(cert.as_bytes(), sec1.as_bytes()).unwrap_err();
        assert!(e.why.contains("openssl pkcs8"), "{e:?}");
        // A truncated certificate block.
        let cut = &cert[..cert.len() / 2];
        let e = check(cut.as_bytes(), key.as_bytes()).unwrap_err();
        assert_eq!(e.file, File::Certificate, "{e:?}");
    }
}
