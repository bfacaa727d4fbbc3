//! Sign or inspect an Apple Music developer token from the command line.
//!
//! ```text
//! cargo run --example developer-token -- sign --team-id TEAMID1234 --key-id ABC123DEFG \
//!     --key AuthKey_ABC123DEFG.p8 [--lifetime 180d] [--origin https://app.example]...
//! cargo run --example developer-token -- inspect <TOKEN> [--key AuthKey_ABC123DEFG.p8]
//! ```
//!
//! `sign` prints the token alone on one line, so `TOKEN=$(… sign …)` works. `inspect --key`
//! exits non-zero when the signature does not verify or the token has expired.

use std::process::ExitCode;
use std::time::Duration;

use actix_apple_music::developer_token::{DeveloperTokenConfig, SigningKey, UnverifiedToken};
use clap::{Parser, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Parser)]
#[command(
    name = "developer-token",
    about = "Sign or inspect Apple Music developer tokens"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a new developer token and print it.
    Sign {
        /// Your 10-character Team ID (the `iss` claim).
        #[arg(long)]
        team_id: String,
        /// The 10-character ID of your MusicKit key (the `kid` header).
        #[arg(long)]
        key_id: String,
        /// The private key file (`AuthKey_XXXXXXXXXX.p8`, PKCS#8 or SEC1 PEM).
        #[arg(long)]
        key: std::path::PathBuf,
        /// Lifetime: seconds (`15777000`) or a number with a unit (`s`, `m`, `h`, `d`).
        #[arg(long, default_value = "180d", value_parser = parse_lifetime)]
        lifetime: Duration,
        /// An origin allowed to use the token (repeat for several).
        #[arg(long = "origin")]
        origins: Vec<String>,
    },
    /// Show a token's header, claims and times; with --key, check its signature too.
    Inspect {
        /// The token.
        token: String,
        /// The private key whose public half should verify the signature.
        #[arg(long)]
        key: Option<std::path::PathBuf>,
    },
}

fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a lifetime: use seconds (15777000) or a number with s, m, h or d (180d)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit `{other}`: use s, m, h or d")),
    };
    number
        .checked_mul(factor)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long"))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Sign {
            team_id,
            key_id,
            key,
            lifetime,
            origins,
        } => {
            let key = SigningKey::from_pem_file(&key).map_err(|e| e.to_string())?;
            let signer = DeveloperTokenConfig::apple_music(team_id, key_id)
                .lifetime(lifetime)
                .origins(origins)
                .build(key)
                .map_err(|e| e.to_string())?;
            println!("{}", signer.token().as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { token, key } => {
            let parsed = UnverifiedToken::parse(&token).map_err(|e| e.to_string())?;
            let pretty = |map| serde_json::to_string_pretty(map).unwrap_or_default();
            println!("header: {}", pretty(parsed.header()));
            println!("claims: {}", pretty(parsed.claims()));
            let now = OffsetDateTime::now_utc();
            let fmt = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
            if let Some(iat) = parsed.issued_at() {
                println!("issued:  {}", fmt(iat));
            }
            let mut ok = true;
            match parsed.expires_at() {
                Some(exp) => {
                    println!("expires: {}", fmt(exp));
                    let left = exp - now;
                    if left.is_positive() {
                        println!(
                            "time left: {}d {}h {}m",
                            left.whole_days(),
                            left.whole_hours() % 24,
                            left.whole_minutes() % 60
                        );
                    } else {
                        println!("time left: none, expired {} days ago", (-left).whole_days());
                        ok = false;
                    }
                }
                None => {
                    println!("expires: (no exp claim)");
                    ok = false;
                }
            }
            let Some(key) = key else {
                return Ok(ExitCode::SUCCESS);
            };
            let key = SigningKey::from_pem_file(&key).map_err(|e| e.to_string())?;
            match UnverifiedToken::verify_signature(&token, &key) {
                Ok(()) => println!("signature: verifies with {}", key.source()),
                Err(e) => {
                    println!("signature: does NOT verify with {} ({e})", key.source());
                    ok = false;
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
