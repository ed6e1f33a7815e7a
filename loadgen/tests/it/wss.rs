//! `wss://` runs against the real server on a TLS port: `--ca` trusting its
//! CA, `--insecure`, and the refusals (no trust given, a bad CA file, a
//! certificate the CA did not sign).

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tickforge_loadgen::{LoadConfig, LoadError};
use tickforge_protocol::Format;
use tickforge_server::tls::TlsSource;

/// A CA and a server certificate it signed, as PEM files in `dir`.
fn pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let paths = (dir.join("ca.pem"), dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn server(cert: PathBuf, key: PathBuf) -> tickforge_server::ServerHandle {
    let mut config = tickforge_server::ServerConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.shards = 1;
    config.pin = false;
    config.tls = Some(TlsSource::Files { cert, key });
    tickforge_server::start(config).unwrap()
}

fn config(url: String) -> LoadConfig {
    let mut cfg = LoadConfig::default();
    cfg.url = url;
    cfg.clients = 16;
    cfg.format = Format::Bin;
    cfg.connect_rate = 200.0;
    cfg.warmup = Duration::from_millis(300);
    cfg.duration = Duration::from_secs(1);
    cfg.decode_every = 1;
    cfg
}

#[test]
fn a_wss_run_trusting_the_ca_and_one_insecure() {
    let _one = crate::one_run();
    let dir = std::env::temp_dir().join(format!("tickforge-loadgen-wss-{}", std::process::id()));
    let (ca, cert, key) = pki(&dir);
    let server = server(cert, key);
    let url = format!("wss://127.0.0.1:{}/ws", server.local_addr().port());
    for insecure in [false, true] {
        let mut cfg = config(url.clone());
        if insecure {
            cfg.insecure = true;
        } else {
            cfg.ca = Some(ca.clone());
        }
        let report = tickforge_loadgen::run(cfg).unwrap();
        eprintln!("{}", report.table());
        assert_eq!(report.errors_total, 0, "insecure {insecure}: {}", report.table());
        assert_eq!(report.clients.joined, 16);
        assert!(report.state_messages > 0);
        assert!(report.input_latency_us.count > 0, "inputs answered over TLS");
    }
    let m = server.metrics().render();
    assert!(m.lines().any(|l| l.starts_with("tickforge_tls_handshakes_total") && !l.ends_with(" 0")), "{m}");
    server.shutdown();
    server.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn wss_refusals_name_the_problem() {
    let _one = crate::one_run();
    let dir = std::env::temp_dir().join(format!("tickforge-loadgen-wss-bad-{}", std::process::id()));
    let (_, cert, key) = pki(&dir);
    let (other_ca, _, _) = pki(&dir.join("other"));
    let server = server(cert, key);
    let url = format!("wss://127.0.0.1:{}/ws", server.local_addr().port());
    // A reconnect interval too short to mean anything.
    let mut cfg = config(url.clone());
    cfg.insecure = true;
    cfg.reconnect_every = Some(Duration::from_millis(10));
    let err = tickforge_loadgen::run(cfg).unwrap_err();
    assert!(err.to_string().contains("--reconnect-every must be at least 100ms"), "{err}");
    // No trust given.
    let err = tickforge_loadgen::run(config(url.clone())).unwrap_err();
    assert!(matches!(&err, LoadError::Config(m) if m.contains("--ca FILE") && m.contains("--insecure")), "{err}");
    // A CA file that is not one.
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "nothing here\n").unwrap();
    let mut cfg = config(url.clone());
    cfg.ca = Some(garbage);
    let err = tickforge_loadgen::run(cfg).unwrap_err();
    assert!(err.to_string().contains("no certificate in it"), "{err}");
    // A CA that did not sign the server's certificate: the probe fails.
    let mut cfg = config(url);
    cfg.ca = Some(other_ca);
    let err = tickforge_loadgen::run(cfg).unwrap_err();
    assert!(matches!(err, LoadError::Handshake { .. }), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");
    server.shutdown();
    server.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reconnect_every_drops_and_resumes_with_the_state_exact() {
    let _one = crate::one_run();
    let dir = std::env::temp_dir().join(format!("tickforge-loadgen-resume-{}", std::process::id()));
    let (ca, cert, key) = pki(&dir);
    let tls_server = server(cert, key);
    let mut plain = tickforge_server::ServerConfig::default();
    plain.listen = "127.0.0.1:0".parse().unwrap();
    plain.shards = 1;
    plain.pin = false;
    let plain_server = tickforge_server::start(plain).unwrap();
    let urls = [
        format!("ws://127.0.0.1:{}/ws", plain_server.local_addr().port()),
        format!("wss://127.0.0.1:{}/ws", tls_server.local_addr().port()),
    ];
    for url in urls {
        let mut cfg = config(url.clone());
        cfg.ca = Some(ca.clone());
        cfg.duration = Duration::from_secs(4);
        cfg.reconnect_every = Some(Duration::from_millis(700));
        let report = tickforge_loadgen::run(cfg).unwrap();
        eprintln!("{}", report.table());
        let r = &report.reconnects;
        assert!(r.drops >= 16, "{url}: {}", report.table());
        assert!(r.resumes + 16 >= r.drops && r.resumes > 0, "{url}: {}", report.table());
        assert_eq!((r.refused, r.state_errors_after_resume), (0, 0), "{url}: {}", report.table());
        assert_eq!(report.errors_total, 0, "{url}: {}", report.table());
        assert!(r.resume_latency_us.count > 0);
        assert_eq!(report.clients.joined, 16, "a resume is not a new join");
        assert!(report.table().contains("reconnects:"));
    }
    let m = plain_server.metrics().render();
    assert!(m.lines().any(|l| l.starts_with("tickforge_resumes_total ") && !l.ends_with(" 0")), "{m}");
    for s in [tls_server, plain_server] {
        s.shutdown();
        s.wait().unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
