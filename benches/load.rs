//! A load driver for the demo (`examples/demo`), used by `benches/compare.sh` and
//! `benches/soak.sh`; not a Criterion bench. Two modes:
//!
//! - `logins`: full sign-ins in a loop (login page, then the POST callback with a sandbox
//!   music user token and the page's state and developer token), timed per step;
//! - `soak`: a mixed load of sign-ins, guarded requests, re-logins after the token's end,
//!   logouts, and forged or malformed callbacks, over one or more instances, with an optional
//!   Redis fault schedule. Every answer is checked: an unexpected status, a request that got
//!   another user's identity, or a hang fails the run.
//!
//! `cargo bench --bench load -- soak --base http://127.0.0.1:8080 --seconds 60`

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};

const PREFIX: &str = "/auth/apple-music";
/// The longest a request may take before it counts as a hang (the store's deadline is 2 s).
const HANG: Duration = Duration::from_millis(2500);

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, global = true, hide = true)]
    bench: bool,
}

#[derive(Subcommand)]
enum Mode {
    /// Full sign-ins per second, with the time of each step.
    Logins {
        #[arg(long)]
        base: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// The mixed, checked load.
    Soak(SoakArgs),
}

#[derive(clap::Args, Clone)]
struct SoakArgs {
    /// An instance (repeat for several sharing one store; requests alternate between them).
    #[arg(long = "base", required = true)]
    bases: Vec<String>,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 24)]
    users: usize,
    /// The demo's music user token lifetime (`APPLE_MUSIC_USER_TOKEN_LIFETIME_SECS`).
    #[arg(long, default_value_t = 15)]
    token_lifetime: u64,
    /// Seconds of warm-up before the first RSS reading (longer than the login state's
    /// lifetime, so that the single-use ledger has reached its steady size).
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// Processes whose RSS is read after warm-up and at the end.
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// Redis port: run the fault schedule (stop 5 s, `DEBUG SLEEP 3`, restart) on it.
    #[arg(long)]
    redis_port: Option<u16>,
    /// Shell command that starts Redis again (daemonized, same port and data directory).
    #[arg(long)]
    redis_start: Option<String>,
    /// The port of a Sentinel group's primary: killed at 40 % of the run (the sentinels
    /// promote the replica); the answers until the instances serve again may be typed `503`s.
    #[arg(long)]
    kill_primary: Option<u16>,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.mode {
        Mode::Logins {
            base,
            seconds,
            concurrency,
        } => logins(base, seconds, concurrency).await,
        Mode::Soak(args) => soak(args).await,
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .disable_redirects()
        .finish()
}

/// One answer: status, body, the `id` cookie it set (`Some("")` when it removed it), time.
struct Answer {
    status: u16,
    body: String,
    cookie: Option<String>,
    took: Duration,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }

    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }
}

async fn send(
    request: awc::ClientRequest,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
    raw: Option<&'static str>,
) -> Result<Answer, String> {
    let request = match cookie {
        Some(c) if !c.is_empty() => request.insert_header(("Cookie", format!("id={c}"))),
        _ => request,
    };
    let started = Instant::now();
    let sent = match (form, raw) {
        (Some(form), _) => request.send_form(&form).await,
        (None, Some(raw)) => {
            request
                .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .send_body(raw)
                .await
        }
        (None, None) => request.send().await,
    };
    let mut response = sent.map_err(|e| format!("no answer: {e}"))?;
    let body = response
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| format!("no body: {e}"))?;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("id="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    Ok(Answer {
        status: response.status().as_u16(),
        body: String::from_utf8_lossy(&body).into_owned(),
        cookie,
        took: started.elapsed(),
    })
}

/// The login page's JSON block.
fn page_data(html: &str) -> Option<serde_json::Value> {
    let start = html.find(r#"id="apple-music-login">"#)? + r#"id="apple-music-login">"#.len();
    let end = start + html[start..].find("</script>")?;
    serde_json::from_str(&html[start..end]).ok()
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A signed-in (or not) browser.
#[derive(Default)]
struct Browser {
    cookie: Option<String>,
}

impl Browser {
    fn keep(&mut self, answer: &Answer) {
        if let Some(cookie) = &answer.cookie {
            self.cookie = (!cookie.is_empty()).then(|| cookie.clone());
        }
    }

    async fn get(&mut self, client: &awc::Client, url: &str) -> Result<Answer, String> {
        let request = client
            .get(url)
            .insert_header(("Accept", "application/json"));
        let answer = send(request, self.cookie.as_deref(), None, None).await?;
        self.keep(&answer);
        Ok(answer)
    }

    async fn post(
        &mut self,
        client: &awc::Client,
        base: &str,
        path: &str,
        form: Option<&[(&str, &str)]>,
        raw: Option<&'static str>,
    ) -> Result<Answer, String> {
        let request = client
            .post(format!("{base}{path}"))
            .insert_header(("Origin", base))
            .insert_header(("Accept", "application/json"));
        let answer = send(request, self.cookie.as_deref(), form, raw).await?;
        self.keep(&answer);
        Ok(answer)
    }

    /// The login page, then the callback with `token`: `(page, callback)`.
    async fn sign_in(
        &mut self,
        client: &awc::Client,
        base: &str,
        token: &str,
        hint: Option<&str>,
    ) -> Result<(Answer, Option<Answer>), String> {
        let page = self.get(client, &format!("{base}{PREFIX}/login")).await?;
        let Some(data) = (page.status == 200)
            .then(|| page_data(&page.body))
            .flatten()
        else {
            return Ok((page, None));
        };
        let state = data["state"].as_str().unwrap_or_default().to_owned();
        let developer_token = data["developerToken"].as_str().unwrap_or_default();
        let form = [
            ("code", token),
            ("state", &state),
            ("id_token_hint", hint.unwrap_or(developer_token)),
        ];
        let callback = self
            .post(
                client,
                base,
                &format!("{PREFIX}/callback"),
                Some(&form),
                None,
            )
            .await?;
        Ok((page, Some(callback)))
    }
}

/// Page times, callback times, failed sign-ins.
type LoginTimes = (Vec<Duration>, Vec<Duration>, u64);

async fn logins(base: String, seconds: u64, concurrency: usize) -> ExitCode {
    let client = client();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let times: Rc<RefCell<LoginTimes>> = Rc::default();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let (client, base, times) = (client.clone(), base.clone(), Rc::clone(&times));
        tasks.push(actix_web::rt::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let token = format!("sandbox.load-{worker}-{n}");
                let mut browser = Browser::default();
                let answer = browser.sign_in(&client, &base, &token, None).await;
                let mut times = times.borrow_mut();
                match answer {
                    Ok((page, Some(callback))) if callback.status == 303 => {
                        times.0.push(page.took);
                        times.1.push(callback.took);
                    }
                    _ => times.2 += 1,
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let (pages, callbacks, failed) = &*times.borrow();
    let mean =
        |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() * 1000.0 / v.len().max(1) as f64;
    println!(
        "logins/s {:.1} page_ms {:.2} callback_ms {:.2} failed {failed}",
        callbacks.len() as f64 / seconds as f64,
        mean(pages),
        mean(callbacks)
    );
    if *failed > 0 || callbacks.is_empty() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// What the soak saw.
#[derive(Default)]
struct Tally {
    outcomes: BTreeMap<String, Vec<Duration>>,
    latencies: Vec<Duration>,
    problems: Vec<String>,
    /// When store failures are expected (seconds since the start).
    windows: Vec<(f64, f64)>,
}

impl Tally {
    fn count(&mut self, outcome: impl Into<String>, took: Duration) {
        self.outcomes.entry(outcome.into()).or_default().push(took);
        self.latencies.push(took);
    }

    fn problem(&mut self, what: String) {
        if self.problems.len() < 50 {
            self.problems.push(what);
        }
        self.outcomes
            .entry("UNEXPECTED".into())
            .or_default()
            .push(Duration::ZERO);
    }
}

struct Soak {
    client: awc::Client,
    args: SoakArgs,
    started: Instant,
    deadline: Instant,
    tally: RefCell<Tally>,
}

impl Soak {
    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// A `503` from the store is expected only for a request that was under way during a
    /// fault window (or its tail).
    fn store_failure_expected(&self, asked_at: f64) -> bool {
        let answered_at = self.now();
        self.tally
            .borrow()
            .windows
            .iter()
            .any(|(from, to)| answered_at >= *from && asked_at <= *to + HANG.as_secs_f64())
    }

    /// Checks what every answer must satisfy; `true` when the answer is a store outage that
    /// was expected (the caller then starts over).
    fn outage(&self, answer: &Answer, what: &str, asked_at: f64) -> bool {
        if answer.took > HANG {
            self.tally
                .borrow_mut()
                .problem(format!("{what}: answered after {:?}", answer.took));
        }
        // Typed: the session store's own 503, or a sign-in refused because the ledger (in the
        // same store) did not answer.
        let typed = answer.error() == "session_store_unavailable"
            || answer.json()["reason"] == "session_store_unavailable";
        if answer.status == 503 && typed {
            if self.store_failure_expected(asked_at) {
                self.tally
                    .borrow_mut()
                    .count("503 store away (expected)", answer.took);
            } else {
                self.tally.borrow_mut().problem(format!(
                    "{what}: 503 outside a fault window at {asked_at:.1} s"
                ));
            }
            return true;
        }
        if answer.status >= 500 {
            self.tally.borrow_mut().problem(format!(
                "{what}: {} {}",
                answer.status,
                answer.body.chars().take(200).collect::<String>()
            ));
            return true;
        }
        false
    }

    async fn user(self: Rc<Self>, id: usize) {
        let lifetime = Duration::from_secs(self.args.token_lifetime);
        let instances = self.args.bases.len();
        let mut browser = Browser::default();
        let mut me: Option<(String, Instant)> = None; // (token sha-256, signed in at)
        let mut n = 0usize;
        while Instant::now() < self.deadline {
            n += 1;
            let base = &self.args.bases[(id + n) % instances];
            let at = self.now();
            let roll = (id * 7919 + n * 104_729) % 100;
            // One user in four logs out now and then; the others stay until their token ends.
            let roll = if (75..=81).contains(&roll) && !id.is_multiple_of(4) {
                0
            } else {
                roll
            };
            let result: Result<(), String> = async {
                let Some((sha, since)) = me.clone() else {
                    // Signed out: sign in (page and callback on one instance: sandbox instances
                    // each sign developer tokens with their own throwaway key).
                    let token = format!("sandbox.soak-{id}-{n}");
                    let (page, callback) = browser.sign_in(&self.client, base, &token, None).await?;
                    if self.outage(&page, "login page", at) {
                        return Ok(());
                    }
                    let Some(callback) = callback else {
                        self.tally.borrow_mut().problem(format!("login page: {}", page.status));
                        return Ok(());
                    };
                    if self.outage(&callback, "callback", at) {
                        return Ok(());
                    }
                    if callback.status != 303 {
                        self.tally
                            .borrow_mut()
                            .problem(format!("callback: {} {}", callback.status, callback.body));
                        return Ok(());
                    }
                    let mut tally = self.tally.borrow_mut();
                    tally.count("login page", page.took);
                    tally.count("sign-in", callback.took);
                    me = Some((sha256_hex(&token), Instant::now()));
                    return Ok(());
                };
                match roll {
                    0..=74 => {
                        let answer = browser.get(&self.client, &format!("{base}/me")).await?;
                        if self.outage(&answer, "guarded", at) {
                            return Ok(());
                        }
                        match (answer.status, answer.error().as_str()) {
                            (200, _) => {
                                let got = answer.json()["music_user_token_sha256"]
                                    .as_str()
                                    .unwrap_or_default()
                                    .to_owned();
                                if got != sha {
                                    self.tally.borrow_mut().problem(format!(
                                        "CROSS-IDENTITY: user {id} got {got}, is {sha}"
                                    ));
                                } else if since.elapsed() > lifetime + Duration::from_secs(2) {
                                    self.tally
                                        .borrow_mut()
                                        .problem("guarded: served past the token's end".into());
                                } else {
                                    self.tally.borrow_mut().count("guarded 200", answer.took);
                                }
                            }
                            (401, "reauthentication_required")
                                if since.elapsed() + Duration::from_secs(2) >= lifetime =>
                            {
                                self.tally.borrow_mut().count("guarded 401 re-login", answer.took);
                                // Sign in again: the next round takes the sign-in branch.
                                me = None;
                            }
                            (status, error) => {
                                self.tally.borrow_mut().problem(format!(
                                    "guarded: {status} {error} ({:.1} s after sign-in; a lost session?)",
                                    since.elapsed().as_secs_f64()
                                ));
                                me = None;
                                browser.cookie = None;
                            }
                        }
                    }
                    75..=81 => {
                        let answer = browser
                            .post(&self.client, base, &format!("{PREFIX}/logout"), Some(&[]), None)
                            .await?;
                        if self.outage(&answer, "logout", at) {
                            return Ok(());
                        }
                        if answer.status != 303 {
                            self.tally
                                .borrow_mut()
                                .problem(format!("logout: {}", answer.status));
                        }
                        me = None;
                        let after = browser.get(&self.client, &format!("{base}/me")).await?;
                        if self.outage(&after, "guarded after logout", at) {
                            return Ok(());
                        }
                        if after.status == 401 && after.error() == "unauthenticated" {
                            self.tally.borrow_mut().count("logout", answer.took);
                        } else {
                            self.tally.borrow_mut().problem(format!(
                                "after logout: {} {}",
                                after.status,
                                after.error()
                            ));
                        }
                    }
                    82..=87 => {
                        // A forged callback: a state this session never had.
                        let form = [
                            ("code", "sandbox.forged"),
                            ("state", "forged-state-0123456789abcdef"),
                            ("id_token_hint", "x"),
                        ];
                        let answer = browser
                            .post(&self.client, base, &format!("{PREFIX}/callback"), Some(&form), None)
                            .await?;
                        self.expect_refusal(&answer, "forged callback", at);
                    }
                    88..=93 => {
                        let answer = browser
                            .post(&self.client, base, &format!("{PREFIX}/callback"), None, Some("state=%zz&code=%&&=="))
                            .await?;
                        self.expect_refusal(&answer, "malformed callback", at);
                    }
                    _ => {
                        // A real login state with a forged developer token: refused, and the
                        // state is spent. The user is signed in again afterwards.
                        let (page, callback) = browser
                            .sign_in(&self.client, base, "sandbox.forged-hint", Some("eyJhbGciOiJFUzI1NiJ9.e30.AAAA"))
                            .await?;
                        if self.outage(&page, "login page", at) {
                            return Ok(());
                        }
                        if let Some(callback) = callback {
                            self.expect_refusal(&callback, "forged id_token_hint", at);
                        }
                    }
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                self.tally.borrow_mut().problem(format!("user {id}: {e}"));
                me = None;
                browser = Browser::default();
            }
        }
    }

    fn expect_refusal(&self, answer: &Answer, what: &str, at: f64) {
        if self.outage(answer, what, at) {
            return;
        }
        if (400..500).contains(&answer.status) && answer.status != 429 {
            self.tally.borrow_mut().count(
                format!("{what} refused ({} {})", answer.status, answer.error()),
                answer.took,
            );
        } else {
            self.tally
                .borrow_mut()
                .problem(format!("{what}: {} {}", answer.status, answer.body));
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn redis_cli(port: u16, args: &[&str]) -> bool {
    std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a blocking call (`redis-cli`, `sh`) off the driver's thread, so the simulated browsers
/// keep going meanwhile.
async fn off_thread(call: impl FnOnce() -> bool + Send + 'static) -> bool {
    actix_web::rt::task::spawn_blocking(call)
        .await
        .unwrap_or(false)
}

/// Stop 5 s, slow (`DEBUG SLEEP 3`), restart: each fault's window is recorded before it starts.
/// A fault that cannot be made fails the soak.
async fn faults(soak: Rc<Soak>, port: u16, start: String) {
    let total = soak.args.seconds as f64;
    let at = |fraction: f64| Duration::from_secs_f64(total * fraction);
    let wait_until = |when: Duration| {
        actix_web::rt::time::sleep_until(soak.started.checked_add(when).unwrap().into())
    };
    // SHUTDOWN SAVE: Redis keeps its sessions on disk and reads them back at start.
    let stop = || off_thread(move || redis_cli(port, &["shutdown", "save"]));
    let start_again = || {
        let start = start.clone();
        off_thread(move || {
            let started = std::process::Command::new("sh")
                .args(["-c", &start])
                .status()
                .is_ok_and(|s| s.success());
            let up = Instant::now() + Duration::from_secs(5);
            while started && Instant::now() < up {
                if redis_cli(port, &["ping"]) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };
    let check = |done: bool, what: &str| {
        if !done {
            soak.tally
                .borrow_mut()
                .problem(format!("fault: could not {what}"));
        }
    };

    wait_until(at(0.30)).await;
    let from = soak.now();
    soak.tally.borrow_mut().windows.push((from, f64::INFINITY));
    check(stop().await, "stop Redis");
    println!("fault at {from:.1} s: Redis stopped");
    actix_web::rt::time::sleep(Duration::from_secs(5)).await;
    check(start_again().await, "start Redis again");
    let back = soak.now();
    soak.tally.borrow_mut().windows.last_mut().unwrap().1 = back;
    println!("fault: Redis started again at {back:.1} s");

    wait_until(at(0.55)).await;
    let from = soak.now();
    soak.tally.borrow_mut().windows.push((from, from + 3.0));
    println!("fault at {from:.1} s: Redis sleeps 3 s");
    check(
        off_thread(move || redis_cli(port, &["debug", "sleep", "3"])).await,
        "make Redis sleep (DEBUG SLEEP needs --enable-debug-command yes)",
    );
    println!("fault: Redis awake at {:.1} s", soak.now());

    wait_until(at(0.75)).await;
    let from = soak.now();
    soak.tally.borrow_mut().windows.push((from, f64::INFINITY));
    check(stop().await, "stop Redis");
    check(start_again().await, "restart Redis");
    let back = soak.now();
    soak.tally.borrow_mut().windows.last_mut().unwrap().1 = back;
    println!("fault at {from:.1} s: Redis restarted, up at {back:.1} s");
}

/// Kills the Sentinel group's primary at 40 % of the run and measures, from the crate's side,
/// how long until the first instance serves a session-writing request (a login page) again.
async fn failover(soak: Rc<Soak>, port: u16) {
    let at = Duration::from_secs_f64(soak.args.seconds as f64 * 0.40);
    actix_web::rt::time::sleep_until(soak.started.checked_add(at).unwrap().into()).await;
    let from = soak.now();
    soak.tally.borrow_mut().windows.push((from, f64::INFINITY));
    if !off_thread(move || redis_cli(port, &["shutdown", "nosave"]) || !redis_cli(port, &["ping"]))
        .await
    {
        soak.tally
            .borrow_mut()
            .problem("failover: could not kill the primary".into());
    }
    println!("failover at {from:.1} s: the primary is killed");
    let login = format!("{}/auth/apple-music/login", soak.args.bases[0]);
    let mut typed_503s = 0;
    let back = loop {
        let answer = soak.client.get(&login).send().await;
        match answer.map(|a| a.status().as_u16()) {
            Ok(200) => break Some(soak.now()),
            Ok(503) => typed_503s += 1,
            Ok(other) => soak
                .tally
                .borrow_mut()
                .problem(format!("failover: the login page answered {other}")),
            Err(_) => {}
        }
        if soak.now() - from > 60.0 {
            break None;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    match back {
        Some(back) => {
            soak.tally.borrow_mut().windows.last_mut().unwrap().1 = back;
            println!(
                "failover: served again at {back:.1} s, {:.1} s after the kill, from the crate's side ({typed_503s} 503s on the probe meanwhile)",
                back - from
            );
        }
        None => soak
            .tally
            .borrow_mut()
            .problem("failover: not served again within 60 s".into()),
    }
}

async fn soak(args: SoakArgs) -> ExitCode {
    let started = Instant::now();
    let soak = Rc::new(Soak {
        client: client(),
        deadline: started + Duration::from_secs(args.seconds),
        started,
        tally: RefCell::default(),
        args: args.clone(),
    });
    let mut tasks: Vec<_> = (0..args.users)
        .map(|id| actix_web::rt::spawn(Rc::clone(&soak).user(id)))
        .collect();
    if let (Some(port), Some(start)) = (args.redis_port, args.redis_start.clone()) {
        tasks.push(actix_web::rt::spawn(faults(Rc::clone(&soak), port, start)));
    }
    if let Some(port) = args.kill_primary {
        tasks.push(actix_web::rt::spawn(failover(Rc::clone(&soak), port)));
    }
    // RSS every 5 s, to tell steady growth (a leak) from a step.
    let samples: Rc<RefCell<Vec<Vec<Option<u64>>>>> = Rc::default();
    let sampler = {
        let (samples, pids, deadline) = (Rc::clone(&samples), args.pids.clone(), soak.deadline);
        actix_web::rt::spawn(async move {
            while Instant::now() < deadline {
                samples
                    .borrow_mut()
                    .push(pids.iter().map(|&p| rss_kib(p)).collect());
                actix_web::rt::time::sleep(Duration::from_secs(5)).await;
            }
        })
    };
    actix_web::rt::time::sleep(Duration::from_secs(args.warmup)).await;
    let warm: Vec<Option<u64>> = args.pids.iter().map(|&p| rss_kib(p)).collect();
    for task in tasks {
        let _ = task.await;
    }
    let end: Vec<Option<u64>> = args.pids.iter().map(|&p| rss_kib(p)).collect();
    sampler.abort();

    let mut tally = soak.tally.borrow_mut();
    let total: usize = tally.outcomes.values().map(Vec::len).sum();
    fn pick(v: &[Duration], q: f64) -> f64 {
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
    println!(
        "| {:<50} | {:>8} | {:>8} | {:>8} |",
        "outcome", "count", "p50 ms", "p99 ms"
    );
    println!("| {:-<50} | {:->8} | {:->8} | {:->8} |", "", "", "", "");
    for (outcome, times) in tally.outcomes.iter_mut() {
        times.sort();
        println!(
            "| {outcome:<50} | {:>8} | {:>8.2} | {:>8.2} |",
            times.len(),
            pick(times, 0.5),
            pick(times, 0.99)
        );
    }
    tally.latencies.sort();
    let pick = |q: f64| pick(&tally.latencies, q);
    println!(
        "checked steps {total} in {} s ({:.0}/s) · latency p50 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
        args.seconds,
        total as f64 / args.seconds as f64,
        pick(0.50),
        pick(0.99),
        pick(1.0)
    );
    let mut failed = tally.outcomes.contains_key("UNEXPECTED");
    for ((pid, warm), end) in args.pids.iter().zip(&warm).zip(&end) {
        match (warm, end) {
            (Some(w), Some(e)) => {
                let ratio = *e as f64 / *w as f64;
                println!("RSS of {pid}: {w} KiB after warm-up, {e} KiB at the end ({ratio:.2}×)");
                if ratio > 1.2 {
                    println!("RSS grew more than 1.2×");
                    failed = true;
                }
            }
            _ => {
                println!("RSS of {pid}: the process is gone");
                failed = true;
            }
        }
    }
    for (i, pid) in args.pids.iter().enumerate() {
        let series: Vec<String> = samples
            .borrow()
            .iter()
            .map(|row| row[i].map_or("-".into(), |kib| format!("{:.1}", kib as f64 / 1024.0)))
            .collect();
        println!("RSS of {pid} every 5 s (MiB): {}", series.join(" "));
    }
    for problem in &tally.problems {
        println!("unexpected: {problem}");
    }
    if failed {
        println!("soak: FAILED");
        ExitCode::FAILURE
    } else {
        println!("soak: ok");
        ExitCode::SUCCESS
    }
}
