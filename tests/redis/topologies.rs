//! Redis Sentinel and Redis Cluster, real ones: Debian's `redis-server` started here on free
//! loopback ports (a sentinel is the same binary with `--sentinel`), each in its own
//! temporary directory, killed by PID at the end. Run by `.ci/run` with the other Redis tests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_apple_music::session_store::RedisTarget;
use actix_web::cookie::Key;
use actix_web::http::StatusCode;

use super::{accounts_instance_at, common, signed_in, Client};

/// A free loopback port below 55536 (a cluster node's bus port is its port + 10000).
fn free_port() -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < 55_536 {
            return port;
        }
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until `check` holds, at most `limit`; panics with `what` otherwise.
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `redis-server` process (a node or a sentinel); killed on drop.
struct Server {
    port: u16,
    child: Option<Child>,
}

impl Server {
    fn start(dir: &std::path::Path, port: u16, args: &[String]) -> Self {
        let child = Command::new("redis-server")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        let server = Server {
            port,
            child: Some(child),
        };
        wait_for(Duration::from_secs(10), "redis-server answers", || {
            cli(port, &["PING"]) == "PONG"
        });
        server
    }

    /// A data node; `extra` adds to its command line.
    fn node(dir: &std::path::Path, extra: &[&str]) -> Self {
        let port = free_port();
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        Self::start(dir, port, &args)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn keys(&self) -> Vec<String> {
        cli(self.port, &["KEYS", "*"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `GET {base}/account` with `cookie`: the status, `Retry-After`, and the account named.
async fn account_of(base: &str, cookie: &Option<String>) -> (StatusCode, Option<String>, String) {
    let mut client = Client::new();
    client.cookie = cookie.clone();
    let answer = client
        .get(&format!("{base}/account"), "application/json")
        .await;
    let account = match answer.status {
        StatusCode::OK => answer.json()["account"].as_str().unwrap().to_owned(),
        _ => String::new(),
    };
    (answer.status, answer.retry_after, account)
}

/// A three-primary Cluster: two instances share sign-ins, single-use states and sign out
/// everywhere across slots; with one node down, only the sessions whose keys live on it
/// answer `503` (with `Retry-After`), the others are served.
#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn a_three_primary_cluster_serves_every_slot_and_a_node_down_fails_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Server> = (0..3)
        .map(|i| {
            let conf = format!("nodes-{i}.conf");
            Server::node(
                dir.path(),
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &conf,
                    "--cluster-node-timeout",
                    "2000",
                ],
            )
        })
        .collect();
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli is installed");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
    for node in &nodes {
        wait_for(Duration::from_secs(20), "the cluster is ok", || {
            cli(node.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
        });
    }
    let target = RedisTarget::Cluster(nodes.iter().map(Server::url).collect());
    let (pem, key) = (common::fresh_pkcs8_pem(), Key::generate());
    let a = accounts_instance_at(&target, &pem, &key).await;
    let b = accounts_instance_at(&target, &pem, &key).await;

    // One state, two callbacks on two instances: one signs in.
    let mut browser = Client::new();
    let data = browser.login(&a).await;
    let mut copy = Client::new();
    copy.cookie = browser.cookie.clone();
    let first = browser.callback(&b, &data, "ada-1").await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let second = copy.callback(&a, &data, "eve-1").await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST, "{}", second.body);
    assert_eq!(second.json()["reason"], "state_mismatch");

    // Many sessions, spread over the slots; each reads on both instances.
    let mut people = Vec::new();
    for i in 0..12 {
        let person = format!("p{i}");
        let browser = signed_in(if i % 2 == 0 { &a } else { &b }, &format!("{person}-1")).await;
        people.push((person, browser));
    }
    for (person, browser) in &people {
        for base in [&a, &b] {
            let (status, _, account) = account_of(base, &browser.cookie).await;
            assert_eq!(
                (status, account.as_str()),
                (StatusCode::OK, person.as_str())
            );
        }
    }
    let holding: Vec<usize> = nodes.iter().map(|n| n.keys().len()).collect();
    assert!(
        holding.iter().all(|&n| n > 0),
        "every node holds keys: {holding:?}"
    );

    // Sign out everywhere on one instance holds on the other.
    let phone = signed_in(&a, "ada-2").await;
    let mut laptop = Client::new();
    laptop.cookie = browser.cookie.clone();
    let answer = laptop
        .send(
            "POST",
            &format!("{a}/account/sign-out-everywhere"),
            "application/json",
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    super::me_becomes(&b, &phone.cookie, StatusCode::UNAUTHORIZED).await;
    super::me_becomes(&b, &browser.cookie, StatusCode::UNAUTHORIZED).await;

    // One node down: the people whose session key lives there get 503 (never 500, never
    // someone else's session); everyone else is served.
    let down = nodes.remove(0);
    let on_down: Vec<String> = down.keys();
    let mut down = down;
    down.kill();
    let (mut served, mut refused) = (0, 0);
    for (person, browser) in &people {
        let (status, retry_after, account) = account_of(&a, &browser.cookie).await;
        match status {
            StatusCode::OK => {
                assert_eq!(&account, person);
                served += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after.is_some(), "a typed 503 says when to retry");
                refused += 1;
            }
            other => panic!("{person}: {other} with a node down"),
        }
    }
    assert!(served > 0, "the other nodes' slots are served");
    eprintln!("cluster, one node down: {served} people served, {refused} refused");
    // Session keys are the crate's only keys without its prefix.
    let sessions_on_down = on_down
        .iter()
        .filter(|k| !k.starts_with("actix-apple-music:"))
        .count();
    assert!(
        sessions_on_down == 0 || refused > 0,
        "the down node's {sessions_on_down} sessions are refused (served {served}, refused {refused})"
    );
}

/// One primary, one replica, three sentinels: single-use states and sign out everywhere hold
/// across two instances; a switchover (the primary demoted, still up) is followed; then the
/// primary is killed; requests meanwhile
/// answer `200` or a typed `503`, never a `500` or another person's session; the crate finds
/// the new primary without a restart, within the bound asserted below.
#[actix_web::test]
#[ignore = "needs redis-server; run by .ci/run"]
async fn after_a_sentinel_failover_the_crate_follows_the_new_primary() {
    let dir = tempfile::tempdir().unwrap();
    let mut primary = Server::node(dir.path(), &[]);
    let replica_of = primary.port.to_string();
    let mut replica = Server::node(dir.path(), &["--replicaof", "127.0.0.1", &replica_of]);
    wait_for(Duration::from_secs(10), "the replica is in sync", || {
        cli(replica.port, &["INFO", "replication"]).contains("master_link_status:up")
    });
    let sentinels: Vec<Server> = (0..3)
        .map(|i| {
            let port = free_port();
            let conf = dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\n\
                     sentinel monitor sessions 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds sessions 1000\n\
                     sentinel failover-timeout sessions 5000\n\
                     sentinel parallel-syncs sessions 1\n",
                    dir.path().display(),
                    primary.port
                ),
            )
            .unwrap();
            Server::start(
                dir.path(),
                port,
                &[conf.display().to_string(), "--sentinel".into()],
            )
        })
        .collect();
    for sentinel in &sentinels {
        wait_for(
            Duration::from_secs(30),
            "each sentinel knows the replica",
            || cli(sentinel.port, &["SENTINEL", "REPLICAS", "sessions"]).contains("slave"),
        );
    }
    let target = RedisTarget::Sentinel {
        sentinels: sentinels.iter().map(Server::url).collect(),
        master: "sessions".into(),
    };
    let (pem, key) = (common::fresh_pkcs8_pem(), Key::generate());
    let a = accounts_instance_at(&target, &pem, &key).await;
    let b = accounts_instance_at(&target, &pem, &key).await;

    // One state, two instances: one sign-in.
    let mut ada = Client::new();
    let data = ada.login(&a).await;
    let mut copy = Client::new();
    copy.cookie = ada.cookie.clone();
    assert_eq!(
        ada.callback(&b, &data, "ada-1").await.status,
        StatusCode::SEE_OTHER
    );
    let replay = copy.callback(&a, &data, "eve-1").await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
    let bob = signed_in(&b, "bob-1").await;
    // Sign out everywhere holds across the instances too.
    let dan = signed_in(&a, "dan-1").await;
    let mut dan_phone = signed_in(&b, "dan-2").await;
    let answer = dan_phone
        .send(
            "POST",
            &format!("{b}/account/sign-out-everywhere"),
            "application/json",
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    super::me_becomes(&a, &dan.cookie, StatusCode::UNAUTHORIZED).await;

    // A switchover first (`SENTINEL FAILOVER`): the primary becomes a replica and stays up,
    // so writes on the crate's connection to it answer READONLY; the crate asks the sentinels
    // again. Answers meanwhile: 200, 303 or a typed 503.
    assert_eq!(
        cli(sentinels[0].port, &["SENTINEL", "FAILOVER", "sessions"]),
        "OK"
    );
    wait_for(Duration::from_secs(30), "the switchover", || {
        cli(replica.port, &["ROLE"]).starts_with("master")
            && cli(primary.port, &["ROLE"]).starts_with("slave")
    });
    let switched = Instant::now();
    let took = loop {
        let mut browser = Client::new();
        let page = browser
            .get(&format!("{a}{}/login", super::PREFIX), super::HTML)
            .await;
        let status = match page.status {
            StatusCode::OK => {
                let data = common::page_data(&page.body, "apple-music-login");
                browser.callback(&a, &data, "erin-1").await.status
            }
            other => other,
        };
        match status {
            StatusCode::SEE_OTHER => break switched.elapsed(),
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("a sign-in during the switchover answered {other}"),
        }
        assert!(
            switched.elapsed() < Duration::from_secs(30),
            "the crate writes to the new primary within 30 s of a switchover"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("sentinel switchover: a sign-in was written {took:?} after the roles changed");
    for (person, browser) in [("ada", &ada), ("bob", &bob)] {
        let (status, _, account) = account_of(&b, &browser.cookie).await;
        assert_eq!((status, account.as_str()), (StatusCode::OK, person));
    }
    // The roles are swapped: kill the new primary next, the old one is promoted back.
    std::mem::swap(&mut primary, &mut replica);
    wait_for(
        Duration::from_secs(20),
        "the replica is in sync again",
        || {
            cli(replica.port, &["INFO", "replication"]).contains("master_link_status:up")
                && replica.keys().len() >= primary.keys().len()
        },
    );

    primary.kill();
    let killed = Instant::now();
    let mut unavailable = 0;
    let recovered = loop {
        let mut all_ok = true;
        for (person, browser) in [("ada", &ada), ("bob", &bob)] {
            for base in [&a, &b] {
                let (status, retry_after, account) = account_of(base, &browser.cookie).await;
                match status {
                    StatusCode::OK => assert_eq!(account, person, "never another's session"),
                    StatusCode::SERVICE_UNAVAILABLE => {
                        assert!(retry_after.is_some(), "a typed 503 says when to retry");
                        unavailable += 1;
                        all_ok = false;
                    }
                    other => panic!("{person} on {base}: {other} during the failover"),
                }
            }
        }
        if all_ok && killed.elapsed() > Duration::from_millis(200) {
            // Served again: was it by the new primary? (The old one is gone.)
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the crate follows the new primary within 30 s ({unavailable} answers were 503)"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "sentinel failover: served again {recovered:?} after the primary was killed \
         ({unavailable} typed 503s meanwhile)"
    );
    // The replica is the primary now, and new sign-ins are written to it.
    wait_for(Duration::from_secs(10), "the replica was promoted", || {
        cli(replica.port, &["ROLE"]).starts_with("master")
    });
    let carol = signed_in(&a, "carol-1").await;
    let (status, _, account) = account_of(&b, &carol.cookie).await;
    assert_eq!((status, account.as_str()), (StatusCode::OK, "carol"));
}
