//! JWKS over https from a real TLS listener on loopback whose certificate comes from a test CA:
//! trusted only when that CA is given as the CA file (added to the system's store).

mod common;

use common::*;
use jwtguard::{Clock, Config, Keys, Policy, Status, Verifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is required (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn make_certificates() -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=jwtguard test CA",
    ]);
    openssl(&dir, &ca);
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&dir, &csr);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    dir
}

/// An https server on 127.0.0.1 answering every request with `body`.
fn serve_https(dir: &Path, body: String) -> (String, Arc<AtomicUsize>) {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://127.0.0.1:{}/.well-known/jwks.json",
        listener.local_addr().unwrap().port()
    );
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (config, body, count) = (config.clone(), body.clone(), count.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, stream);
                let mut reader = BufReader::new(&mut tls);
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes());
                let _ = tls.write_all(body.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (url, served)
}

fn verifier(url: &str, ca_file: Option<PathBuf>) -> jwtguard::Result<Verifier> {
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(url.to_string()));
    config.clock = Clock::manual(NOW);
    config.cache.fetch.ca_file = ca_file;
    Verifier::new(config)
}

#[test]
fn https_jwks_with_a_private_ca() {
    let dir = make_certificates();
    let signer = Signer::rs256();
    let (url, served) = serve_https(&dir, jwks(&[signer.jwk(true)]));
    let token = signer.token(&good_claims());

    // The test CA is not in the system's store: the fetch fails the TLS handshake.
    let untrusted = verifier(&url, None).unwrap();
    assert_eq!(
        untrusted.verify(&token).unwrap_err().status(),
        Status::KeysUnavailable
    );
    assert_eq!(served.load(Ordering::SeqCst), 0);

    // With the CA file, the same URL works (the URL's cache entry is shared, so it refetches
    // after the failure's backoff).
    let trusted = verifier(&format!("{url}?trusted"), Some(dir.join("ca.pem"))).unwrap();
    assert!(trusted.verify(&token).is_ok());
    assert_eq!(served.load(Ordering::SeqCst), 1);

    // A CA file that cannot be read, or holds no certificate, is a configuration error.
    for bad in [dir.join("missing.pem"), dir.join("san.ext")] {
        let err = verifier(&url, Some(bad)).err().unwrap();
        assert_eq!(err.status(), Status::ConfigInvalid);
    }
}
