//! TLS: a cluster whose every connection (replication and clients) is TLS,
//! with certificates made in the test; nodes verify each other (mutual
//! TLS), the CLI verifies the node, and a peer without TLS or with another
//! CA gets nothing.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA, and a certificate it signed for 127.0.0.1, written as PEM files
/// (`ca.pem`, `node.pem`, `node.key`) in `dir`.
fn make_pki(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Names of their own: with rcgen's default name on both, OpenSSL (curl)
    // takes the node's certificate for a self-signed one.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("replog test CA {name}"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("replog test node {name}"));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let path = |f: &str| dir.join(format!("{name}-{f}"));
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("node.pem"), cert.pem()).unwrap();
    std::fs::write(path("node.key"), key.serialize_pem()).unwrap();
    (path("ca.pem"), path("node.pem"), path("node.key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_replicates_and_serves_the_cli_over_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_pki(dir.path(), "good");
    let (other_ca, other_cert, other_key) = make_pki(dir.path(), "other");
    let cluster_key = dir.path().join("cluster.key");
    std::fs::write(&cluster_key, "tls-cluster-key-0123456789\n").unwrap();
    let s = |p: &PathBuf| p.display().to_string();
    let tls_flags = |cert: &PathBuf, key: &PathBuf, ca: &PathBuf| {
        let mut f = flags(FAST);
        f.extend([
            "--tls-cert".into(),
            s(cert),
            "--tls-key".into(),
            s(key),
            "--tls-ca".into(),
            s(ca),
            "--cluster-key-file".into(),
            s(&cluster_key),
            "--hello-timeout".into(),
            "2s".into(),
        ]);
        f
    };
    // Node 3 has a certificate of another CA (but the right cluster key).
    let mut c = Cluster::new(3, true, |i| {
        if i == 2 {
            tls_flags(&other_cert, &other_key, &other_ca)
        } else {
            tls_flags(&cert, &key, &ca)
        }
    });
    c.start_all();
    let m = c.master().to_string();
    let tls = ["--tls-ca", &s(&ca)];
    // The CLI over TLS: wait, append w=2 (master and node 2), list, health.
    let (code, out, err) = replog(
        &[
            &["health", "--node", &m, "--wait", "20s", "--json"][..],
            &tls[..],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (h["encrypted"].as_bool(), h["authenticated"].as_bool()),
        (Some(true), Some(true))
    );
    for i in 1..=3 {
        let msg = format!("tls-{i}");
        let (code, out, err) =
            replog(&[&["append", "--node", &m, "-w", "2", &msg][..], &tls[..]].concat());
        assert_eq!((code, out.trim()), (0, i.to_string().as_str()), "{err}");
    }
    let (code, out, err) = replog(&[&["list", "--node", &c.addrs[1]][..], &tls[..]].concat());
    assert_eq!((code, out.as_str()), (0, "tls-1\ntls-2\ntls-3\n"), "{err}");
    // Node 3's certificate is of another CA: the master does not replicate
    // to it, and shows it refused.
    let out = wait_for("node 3 to be shown refused", || async {
        let (code, out, _) = replog(&[&["health", "--node", &m][..], &tls[..]].concat());
        let node3 = out.lines().find(|l| l.starts_with("n3"))?.to_string();
        // Degraded: appends are taken, a node is refused (exit 7).
        (code == 7 && node3.contains("refused")).then_some(out)
    })
    .await;
    assert!(out.contains("cluster: authenticated, encrypted"), "{out}");
    assert!(
        c.logs(0).contains("TLS handshake with secondary n3 failed"),
        "{}",
        c.logs(0)
    );
    // A client without TLS gets nothing (exit 5: the node closes on it)...
    let (code, out, _) = replog(&["list", "--node", &m]);
    assert_eq!((code, out.as_str()), (5, ""));
    // ...nor does one that trusts another CA.
    let (code, _, err) = replog(&["list", "--node", &m, "--tls-ca", &s(&other_ca)]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("TLS handshake failed"), "{err}");
    // Plain TCP gets no replog frame at all, let alone a Welcome: at most a
    // TLS alert before the node closes.
    let mut raw = std::net::TcpStream::connect(&c.addrs[1]).unwrap();
    let _ = raw.write_all(&client_hello());
    raw.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut raw, &mut buf);
    let mut bytes = bytes::BytesMut::from(&buf[..]);
    let decoded =
        tokio_util::codec::Decoder::decode(&mut replog::wire::FrameCodec::new(1 << 20), &mut bytes);
    assert!(
        !matches!(decoded, Ok(Some(_))),
        "a frame over plain TCP: {decoded:?}"
    );
    // Clients that stall their handshakes half-way hold up nobody else's,
    // and are closed at --hello-timeout.
    let stalled: Vec<std::net::TcpStream> = (0..8)
        .map(|_| {
            let mut raw = std::net::TcpStream::connect(&m).unwrap();
            // A TLS handshake record's header, then none of its 128 bytes.
            raw.write_all(&[0x16, 0x03, 0x01, 0x00, 0x80]).unwrap();
            raw
        })
        .collect();
    let (code, out, err) = replog(&[&["list", "--node", &m][..], &tls[..]].concat());
    assert_eq!((code, out.as_str()), (0, "tls-1\ntls-2\ntls-3\n"), "{err}");
    for mut raw in stalled {
        raw.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut buf = Vec::new();
        // Closed by the node (end of stream, or a reset), not timed out here.
        match std::io::Read::read_to_end(&mut raw, &mut buf) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
}

/// `curl` with `args`: (exit code, stdout).
fn curl(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

/// With `--tls-cert`, the HTTP API speaks HTTPS with the node's certificate
/// and nothing else, and a secondary forwards over TLS.
#[test]
fn the_http_api_of_a_tls_node_speaks_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_pki(dir.path(), "good");
    let cluster_key = dir.path().join("cluster.key");
    std::fs::write(&cluster_key, "tls-cluster-key-0123456789\n").unwrap();
    let http: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let s = |p: &PathBuf| p.display().to_string();
    let h = http.clone();
    let mut c = Cluster::new(3, false, |i| {
        let mut f = flags(FAST);
        f.extend(
            [
                "--tls-cert",
                &s(&cert),
                "--tls-key",
                &s(&key),
                "--tls-ca",
                &s(&ca),
                "--cluster-key-file",
                &s(&cluster_key),
                "--http-listen",
                &h[i],
            ]
            .map(String::from),
        );
        f
    });
    c.start_all();
    let ca = s(&ca);
    let post = |node: &str, body: &str| {
        let url = format!("https://{node}/messages");
        curl(&["--cacert", &ca, "-d", body, &url])
    };
    wait_until("the master to take appends over HTTPS", || {
        let url = format!("https://{}/health", http[0]);
        let (_, out) = curl(&["--cacert", &ca, &url]);
        out.contains("\"accepting_appends\":true").then_some(())
    });
    assert_eq!(
        post(&http[0], r#"{"message":"a","w":3}"#),
        (0, r#"{"seq":1}"#.into())
    );
    // A secondary hands it to the master over TLS, presenting its certificate.
    assert_eq!(
        post(&http[1], r#"{"message":"b","w":3}"#),
        (0, r#"{"seq":2}"#.into())
    );
    let url = format!("https://{}/messages", http[2]);
    assert_eq!(
        curl(&["--cacert", &ca, &url]),
        (0, r#"{"messages":["a","b"]}"#.into())
    );
    // Plain HTTP to the same port gets no answer.
    let (code, out) = curl(&[
        "-d",
        r#"{"message":"c"}"#,
        &format!("http://{}/messages", http[0]),
    ]);
    assert!(
        code != 0 && !out.contains("seq"),
        "plain HTTP was answered: {code} {out}"
    );
    // Nor does a client that does not trust the node's CA.
    let (code, _) = curl(&[
        "-d",
        r#"{"message":"c"}"#,
        &format!("https://{}/messages", http[0]),
    ]);
    assert_ne!(code, 0);
}
