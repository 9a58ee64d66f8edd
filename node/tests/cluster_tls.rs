//! Mutual TLS between nodes, with real processes: three `wani serve` whose
//! certificates share a CA form a cluster and route entity traffic to each
//! other; a node whose certificate comes from another CA, and one speaking
//! plain TCP, are refused even with the right cookie.
//!
//! The CA and node certificates are generated at test time (rcgen), for
//! 127.0.0.1, the host the seeds name. Skipped (with a note) when
//! `WANI_TEST_POSTGRES_URL` is not set: a cluster refuses SQLite.

mod common;

use common::cluster::{
    peers, post_ids, postgres_or_skip, states, until_view, view, write_config, Peer,
};
use common::process::Server;
use common::{form, png};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::Path;
use std::time::Duration;

/// A CA: its PEM certificate and what signs node certificates with it.
fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// Writes `dir/{cert,key,ca}.pem`: a node certificate for 127.0.0.1 signed
/// by `issuer`, usable both to serve and to dial, and `ca_pem` as the CA
/// the node trusts.
fn write_node_tls(dir: &Path, name: &str, issuer: &Issuer<'static, KeyPair>, ca_pem: &str) {
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_pem).unwrap();
}

/// Appends the TLS keys (to `[cluster]`, the last section) and a board.
fn finish_config(dir: &Path, tls: bool) {
    let path = dir.join("cluster.toml");
    let mut cfg = std::fs::read_to_string(&path).unwrap();
    if tls {
        for (key, file) in [("tls_cert", "cert"), ("tls_key", "key"), ("tls_ca", "ca")] {
            let p = dir.join(format!("{file}.pem"));
            cfg.push_str(&format!("{key} = {:?}\n", p.display().to_string()));
        }
    }
    cfg.push_str("[abuse]\nsame_content_secs = 0\n[[bootstrap.boards]]\nname = \"b\"\ntitle = \"Random\"\ncaptcha_threads = false\nthread_interval_secs = 0\nreply_interval_secs = 0\n");
    std::fs::write(path, cfg).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_the_cluster_ca_join_over_tls_and_others_are_refused() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (db, dbname) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    let (ca_pem, ca) = new_ca("wani test cluster CA");
    let (_, other_ca) = new_ca("some other CA");

    let all: Vec<Peer> = peers(&["a", "b", "c", "d", "e"]);
    let members = &all[..3];
    let dirs: Vec<tempfile::TempDir> = all.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    for (p, d) in members.iter().zip(&dirs) {
        write_config(d.path(), p, members, &db, "the right cookie");
        write_node_tls(d.path(), p.name, &ca, &ca_pem);
        finish_config(d.path(), true);
    }
    let mut servers: Vec<Server> = Vec::new();
    for d in &dirs[..3] {
        servers.push(Server::start(d.path()));
    }
    let all_up = states(&[("a", "up"), ("b", "up"), ("c", "up")]);
    for s in &servers {
        until_view(&s.1, all_up.clone(), "every TLS node sees three nodes up").await;
    }
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();

    // Entity traffic crosses the TLS sessions: a thread created through one
    // node is read, and replied to, through the others.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/thread/new", urls[0]))
        .multipart(form(
            &[("board", "b"), ("subject", "over tls"), ("body", "op")],
            Some(("a.png", png(32, 32, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let thread = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    for (i, url) in urls.iter().enumerate() {
        let res = reqwest::Client::new()
            .post(format!("{url}/api/v1/thread/{thread}/new"))
            .header("Idempotency-Key", format!("tls-{i}"))
            .multipart(form(&[("body", &format!("reply through node {i}"))], None))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "reply through node {i}");
    }
    let order = post_ids(&urls[1], thread).await.unwrap();
    assert_eq!(
        order.len(),
        4,
        "the thread created through a, read through b"
    );
    assert_eq!(post_ids(&urls[2], thread).await.unwrap(), order);

    // d has the right cookie and trusts the cluster's CA, but its own
    // certificate comes from another CA; e speaks plain TCP. Both dial
    // every member, and neither gets in.
    let intruders = [(3, Some(&other_ca)), (4, None)];
    let mut refused = Vec::new();
    for (i, issuer) in intruders {
        let (p, d) = (&all[i], dirs[i].path());
        // Its own address among the seeds is skipped: it dials the members.
        let mut seeds = members.to_vec();
        seeds.push(p.clone());
        write_config(d, p, &seeds, &db, "the right cookie");
        if let Some(issuer) = issuer {
            write_node_tls(d, p.name, issuer, &ca_pem);
        }
        finish_config(d, issuer.is_some());
        refused.push(Server::start(d));
    }
    // Long enough for several dial rounds (backoff starts at 100 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (s, name) in refused.iter().zip(["d", "e"]) {
        until_view(&s.1, states(&[(name, "up")]), "an intruder sees nobody").await;
    }
    for url in &urls {
        assert_eq!(view(url).await.unwrap(), all_up, "no intruder joins");
    }

    drop(refused);
    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}
