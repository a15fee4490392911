//! The CLI's mobile licence commands: borrow, return, extend, and the code exchange for a
//! workstation that cannot reach the server.

use crate::login_name;
use clap::Subcommand;
use licentia_client::borrow::Returned;
use licentia_client::floating::{Floating, PoolRef, Requester, SeatTerms};
use licentia_client::{Error, Licensing};
use protocol::borrow::BorrowClaims;
use std::io::Read;
use std::path::Path;

/// Which pool, and who asks.
#[derive(clap::Args)]
pub struct PoolArgs {
    /// A client's pool key, POOL-…
    #[arg(long, env = "LICENTIA_POOL_KEY", conflicts_with = "serial")]
    pub pool_key: Option<String>,
    /// A serial number whose pool to use (with --product).
    #[arg(long)]
    pub serial: Option<String>,
    /// The user the seat is for [default: the login name]
    #[arg(long)]
    pub user: Option<String>,
    /// The application's release number.
    #[arg(long, default_value_t = 0)]
    pub release_number: i64,
}

impl PoolArgs {
    /// The pool to check out of, as the application describes itself (`process`, `session`).
    pub fn floating(
        self,
        servers: Option<&str>,
        product: Option<&str>,
        store: &Path,
        host: String,
        (process, session): (String, String),
        application: SeatTerms,
    ) -> Result<Floating, Error> {
        let servers = licentia_client::server_list(servers);
        let access = match (self.pool_key, self.serial) {
            (Some(k), _) => PoolRef::Key(k),
            (None, Some(serial)) => PoolRef::Serial {
                product: product
                    .ok_or_else(|| Error::Io("--serial needs --product".into()))?
                    .to_owned(),
                serial,
            },
            (None, None) => return Err(Error::Io("give --pool-key or --serial".into())),
        };
        let who = Requester {
            user: self.user.unwrap_or_else(login_name),
            host,
            process,
            session,
            installation: None,
        };
        let application = SeatTerms {
            release_number: self.release_number,
            ..application
        };
        Ok(Floating::new(&servers, access, who, store).for_application(application))
    }
}

#[derive(Subcommand)]
pub enum MobileCommand {
    /// Borrow a floating seat for some days, to work without the server (a mobile licence).
    Borrow {
        #[arg(long)]
        feature: String,
        /// For how many days (up to the pool's longest borrowing).
        #[arg(long)]
        days: i64,
        #[command(flatten)]
        pool: PoolArgs,
    },
    /// Give a mobile licence back early (without a server, a return code is printed instead).
    Return {
        #[arg(long)]
        feature: String,
    },
    /// Extend a mobile licence by some days past its end (online).
    Extend {
        #[arg(long)]
        feature: String,
        #[arg(long)]
        days: i64,
    },
    /// Offline borrowing, step 1: print a borrow request code for a licence administrator
    /// (Assign a mobile licence in the portal). Asked again, the same code, until it is
    /// answered or cancelled.
    BorrowRequest {
        #[arg(long)]
        feature: String,
        #[arg(long, required_unless_present = "cancel")]
        days: Option<i64>,
        /// Drop the pending request instead.
        #[arg(long)]
        cancel: bool,
        #[command(flatten)]
        pool: PoolArgs,
    },
    /// Offline borrowing, step 2: import the response code from the portal (argument or
    /// stdin): a mobile licence, or its extension.
    BorrowImport { code: Option<String> },
    /// Give a mobile licence back by code: it is deleted here, and the printed return code,
    /// pasted in the portal (Release a mobile licence), returns the seat at once.
    ReturnCode {
        #[arg(long)]
        feature: String,
    },
}

/// A code given as the argument, or read from standard input.
pub fn code_or_stdin(code: Option<String>) -> Result<String, Error> {
    match code {
        Some(c) => Ok(c),
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Error::Io(e.to_string()))?;
            Ok(s)
        }
    }
}

pub fn show_borrow(feature: &str, claims: BorrowClaims) {
    println!(
        "Mobile licence of {feature}: valid until {}",
        protocol::time::format_utc(claims.exp)
    );
    println!(
        "  Key:      {} {} ({})",
        claims.editor, claims.feature, claims.model
    );
    if !claims.bundled.is_empty() {
        println!("  With:     {}", claims.bundled.join(", "));
    }
    println!("  Machine:  {} (user {})", claims.host, claims.user);
}

pub fn run(
    lic: &mut Licensing,
    command: MobileCommand,
    servers: Option<&str>,
    product: &str,
    store: &Path,
    host: String,
) -> Result<(), Error> {
    let pool = |pool: PoolArgs, host: String| {
        let session = "mobile".to_owned();
        pool.floating(
            servers,
            Some(product),
            store,
            host,
            ("licentia-client".into(), session),
            SeatTerms::default(),
        )
    };
    match command {
        MobileCommand::Borrow {
            feature,
            days,
            pool: p,
        } => {
            let floating = pool(p, host)?;
            let claims = lic.borrow(&floating, &feature, days)?;
            println!("Borrowed.");
            show_borrow(&feature, claims);
        }
        MobileCommand::Return { feature } => match lic.return_borrow(&feature)? {
            Returned::Online => println!("The mobile licence of {feature} was returned."),
            Returned::ByCode(code) => {
                eprintln!("The mobile licence of {feature} was given up here. Paste this return code into the portal (Release a mobile licence) to return the seat now; otherwise it returns at its end:");
                println!("{code}");
            }
        },
        MobileCommand::Extend { feature, days } => {
            let claims = lic.extend_borrow(&feature, days)?;
            println!("Extended.");
            show_borrow(&feature, claims);
        }
        MobileCommand::BorrowRequest {
            feature,
            cancel: true,
            ..
        } => {
            if lic.cancel_borrow_request(&feature)? {
                println!("The borrow request for {feature} was cancelled.");
                eprintln!("If it was answered already, that mobile licence stays out until its end: this machine can no longer import or return it.");
            } else {
                println!("There was no borrow request for {feature}.");
            }
        }
        MobileCommand::BorrowRequest {
            feature,
            days,
            pool: p,
            ..
        } => {
            let floating = pool(p, host)?;
            let code = lic.borrow_request(&floating, &feature, days.unwrap_or(1))?;
            eprintln!("Send this borrow request code to your licence administrator (Assign a mobile licence in the portal), then run `borrow-import` with the response code:");
            println!("{code}");
        }
        MobileCommand::BorrowImport { code } => {
            let code = code_or_stdin(code)?;
            let claims = lic.borrow_import(code.trim())?;
            let feature = claims.feature.clone();
            println!("Imported.");
            show_borrow(&feature, claims);
        }
        MobileCommand::ReturnCode { feature } => {
            let code = lic.return_code(&feature)?;
            eprintln!("The mobile licence of {feature} was given up here. Paste this return code into the portal (Release a mobile licence) to return the seat now:");
            println!("{code}");
        }
    }
    Ok(())
}
