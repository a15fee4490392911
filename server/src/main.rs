//! `server`: runs Licentia, or administers it from the command line.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use licensing::Clock;
use server::config::Config;
use server::{open_services, shutdown_signal, telemetry, Server};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "server",
    version,
    about = "Licentia: software licensing server, Activation Center and portal",
    after_help = "Configuration comes from environment variables (see README.md), over an optional TOML file."
)]
struct Cli {
    /// A TOML configuration file (also LICENTIA_CONFIG); environment variables win over it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (the default when no command is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage administrator accounts.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Print the Web API's OpenAPI document (the one served at /api/v1/openapi.json) and exit.
    Openapi,
    /// Manage the keys that sign activation codes.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write a consistent copy of the database to a new FILE, while the server keeps serving
    /// (SQLite; on PostgreSQL it says how to use pg_dump). The master key is not in it: keep
    /// that apart, and start a restored server with the same one.
    Backup {
        /// The backup file to create (never overwritten).
        file: std::path::PathBuf,
    },
    /// Put a backup in the database's place (DATABASE_URL), checked first. Stop the server
    /// using the database before; start it again with the master key of the backed-up server.
    Restore {
        /// The backup file `server backup` wrote.
        file: std::path::PathBuf,
        /// Replace a database that already holds data.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new signing key the active one. Codes signed with earlier keys keep verifying:
    /// their public keys stay in /.well-known/jwks.json.
    Rotate,
    /// List the published public keys, the active one first.
    List,
    /// Withdraw a compromised signing key: it is no longer published or endorsed, and codes it
    /// signed are refused at validation (`/problems/key-retired`), so applications activate
    /// again on the same machine. Retiring the active key makes a new one active first.
    Retire {
        /// The key id (`kid`), as `keys list` shows it.
        kid: String,
    },
    /// Print the root public key as a JWKS: ship this file inside the application (the client's
    /// `--root` / `LICENTIA_ROOT`), so it trusts only signing keys the root endorses.
    Root,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an administrator. The password is asked for on a terminal, or read as one line
    /// from standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Set a new password for any account (administrator or client user); its sessions end and
    /// any sign-in lock against it is lifted.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
    /// Take away an account's second factor (a lost phone and lost recovery codes): it signs in
    /// with its password alone until it sets one up again. Recorded in the audit log.
    ResetSecondFactor {
        #[arg(long)]
        email: String,
    },
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password (at least 12 characters): ")?;
        let again = rpassword::prompt_password("Repeat the password: ")?;
        if first != again {
            bail!("the two passwords do not match");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // What the admin commands change is recorded in the audit log as theirs, with who ran
    // them; the server's own changes (its first signing key) as the server's.
    let outcome = if matches!(
        cli.command,
        Some(Command::Keys { .. } | Command::Admin { .. })
    ) {
        let operator = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok();
        licensing::audit::Origin::cli(operator)
            .scope(run(cli))
            .await
    } else {
        run(cli).await
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config)?;
    telemetry::init(config.log_json);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Openapi => {
            println!("{}", server::openapi_json()?);
            Ok(())
        }
        Command::Backup { file } => {
            let bytes = licensing::backup::backup(&config.database_url, &file).await?;
            println!(
                "Backed up to {} ({} KiB). The master key is not in it: keep it apart.",
                file.display(),
                bytes.div_ceil(1024)
            );
            Ok(())
        }
        Command::Restore { file, force } => {
            licensing::backup::restore(&file, &config.database_url, force).await?;
            println!(
                "Restored {} into {}. Start the server with the master key of the server the \
                 backup came from: the signing keys are sealed with it.",
                file.display(),
                config.database_url
            );
            Ok(())
        }
        Command::Migrate => {
            open_services(&config, Clock::system()).await?;
            println!("The database is up to date.");
            Ok(())
        }
        Command::Keys { command } => {
            let services = open_services(&config, Clock::system()).await?;
            match command {
                KeysCommand::Rotate => {
                    let kid = services
                        .rotate_signing_key()
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!("New signing key {kid} is active; earlier keys stay published.");
                }
                KeysCommand::List => {
                    let set = services.jwks().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    for (i, k) in set.keys.iter().enumerate() {
                        println!("{}{}", k.kid, if i == 0 { "  (active)" } else { "" });
                    }
                }
                KeysCommand::Retire { kid } => {
                    let active = services
                        .retire_signing_key(kid.trim())
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!(
                        "Signing key {} is retired: codes it signed are refused at their next \
                         validation. The active key is {active}.",
                        kid.trim()
                    );
                }
                KeysCommand::Root => {
                    println!("{}", serde_json::to_string_pretty(&services.root_jwks())?);
                }
            }
            services.db().close().await;
            Ok(())
        }
        Command::Admin { command } => {
            let services = open_services(&config, Clock::system()).await?;
            match command {
                AdminCommand::Create { email, name } => {
                    let password = read_password()?;
                    services
                        .create_admin(&name, &email, &password)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!(
                        "Administrator {} created. Sign in at {}/login",
                        email.trim(),
                        config.public_url_for(config.listen)
                    );
                }
                AdminCommand::ResetPassword { email } => {
                    let password = read_password()?;
                    services
                        .reset_password_by_email(&email, &password)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!(
                        "Password changed for {}; its sessions were signed out.",
                        email.trim()
                    );
                }
                AdminCommand::ResetSecondFactor { email } => {
                    services
                        .reset_second_factor_by_email(&email)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    println!(
                        "{} signs in with the password alone now: ask them to set up a second \
                         factor again (My account).",
                        email.trim()
                    );
                }
            }
            services.db().close().await;
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let services = open_services(&config, Clock::system()).await?;
    let server = Server::bind(&config, services.clone()).await?;
    let url = config.public_url_for(server.addr);
    tracing::info!(address = %server.addr, database = services.db().backend().name(), "Licentia is listening");
    if let Some(warning) = config.plain_http_warning(server.addr) {
        tracing::warn!("{warning}");
    }
    println!("Licentia is running at {url}/  (stop with Ctrl-C)");
    match services.issue_setup_token().await {
        Ok(Some(token)) => {
            println!();
            println!(
                "No administrator exists yet. Create the first one by opening this one-time link:"
            );
            println!("    {url}/setup/{token}");
            println!("(or run: server admin create --email you@example.com --name \"Your Name\")");
            println!();
        }
        Ok(None) => println!("Sign in at {url}/login"),
        Err(e) => bail!("cannot prepare the first-administrator setup link: {e}"),
    }
    server.run(shutdown_signal()).await
}
