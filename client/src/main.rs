//! `licentia-client`: a workstation's view of its licence, for people and for tests. Exit codes:
//! 0 success, 1 usage or local error, 2 the licence is refused or not valid, 3 the server cannot be
//! reached.

mod borrow_cli;

use clap::{Parser, Subcommand};
use licentia_client::floating::SeatTerms;
use licentia_client::{Error, Held, Licensing, Store};
use protocol::activation::Claims;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "licentia-client",
    version,
    about = "Activate, check and remove a Licentia licence on this machine, and hold floating seats"
)]
struct Cli {
    /// The licence server's URL, e.g. https://licences.example.com; or several, separated by
    /// commas, tried in order: a server that cannot be reached or answers 5xx is passed over
    /// for the next (a refusal is not). `srv:_licentia._tcp.example.com` (or `srv+http:`)
    /// stands for the servers a DNS SRV record names
    #[arg(long, env = "LICENTIA_SERVER", global = true)]
    server: Option<String>,
    /// The product code, e.g. ELEC-CALC
    #[arg(long, env = "LICENTIA_PRODUCT", global = true)]
    product: Option<String>,
    /// Where the licence state is kept [default: ~/.local/share/licentia]
    #[arg(long, env = "LICENTIA_STORE", global = true)]
    store: Option<PathBuf>,
    /// Where the witness of the licence state is kept, away from the store, so that a store
    /// restored from an older copy is noticed [default: ~/.local/state/licentia]
    #[arg(long, env = "LICENTIA_WITNESS_DIR", global = true)]
    witness_dir: Option<PathBuf>,
    /// A stable identity for this machine instead of the OS machine id (containers, VMs).
    #[arg(
        long,
        env = "LICENTIA_MACHINE_ID",
        global = true,
        hide_env_values = true
    )]
    machine_id: Option<String>,
    /// The vendor's root key (the JWKS `server keys root` prints), shipped with the
    /// application: codes are trusted when signed by a key this root endorses.
    #[arg(long, env = "LICENTIA_ROOT", global = true)]
    root: Option<PathBuf>,
    /// The vendor's signing keys (a JWKS), shipped with the application: only these are
    /// trusted (a key rotation then needs a new file; --root does not).
    #[arg(long, env = "LICENTIA_JWKS", global = true)]
    jwks: Option<PathBuf>,
    /// Development only: trust whatever keys the server publishes, kept in the state file.
    /// Anyone who can edit that file can then forge a licence; never ship an application so.
    #[arg(long, env = "LICENTIA_TRUST_SERVER_KEYS", global = true)]
    trust_server_keys: bool,
    /// The name shown for this machine in the portal [default: the host name]
    #[arg(long, global = true)]
    hostname: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Licence(LicenceCommand),
    /// Check out a floating seat; with --hold, keep it until interrupted.
    ///
    /// The seat comes from the pool of --pool-key, or of --serial for --product. With --hold it
    /// is kept (heartbeats) until SIGINT or SIGTERM, then released; without, it is released at
    /// once (a check that a seat is available). A release that reaches no server is done at
    /// the next start.
    Checkout(Box<CheckoutArgs>),
}

/// The commands about this machine's activated licence.
#[derive(Subcommand)]
enum LicenceCommand {
    /// Activate a licence on this machine through the server.
    Activate(Which),
    /// Offline activation, step 1: print a request code to paste into the portal.
    RequestCode(Which),
    /// Offline activation, step 2: import the response code from the portal (argument or stdin).
    Import { code: Option<String> },
    /// Check the licence (and the mobile licences held here) offline and show what they grant.
    Status {
        /// Check only the mobile licence of this feature (exit 2 if it is not valid here).
        #[arg(long)]
        feature: Option<String>,
    },
    /// Ask the server for the licence as it is now (extensions, feature changes, removal).
    Validate,
    /// Remove the licence from this machine and free it on the server.
    Remove,
    /// Offline transfer: give the licence up on this machine and print a removal code to paste
    /// into the portal (Offline activation), which frees the licence at once.
    RemovalCode,
    /// Print this machine's fingerprint for the product.
    Fingerprint,
    #[command(flatten)]
    Mobile(borrow_cli::MobileCommand),
}

#[derive(clap::Args)]
struct CheckoutArgs {
    /// The feature to check out.
    #[arg(long)]
    feature: String,
    #[command(flatten)]
    pool: borrow_cli::PoolArgs,
    /// The process shown in the usage monitor.
    #[arg(long, default_value = "licentia-client")]
    process: String,
    /// The machine session (terminal-server sessions are seats of their own).
    #[arg(long, default_value = "")]
    session: String,
    /// The application's editor (publisher).
    #[arg(long)]
    editor: Option<String>,
    /// The application's release date, YYYY-MM-DD.
    #[arg(long)]
    release_date: Option<String>,
    /// Tokens to take from a Token key.
    #[arg(long)]
    tokens: Option<i64>,
    /// Only keys of this commercial type: STD, EDU or DEMO.
    #[arg(long)]
    commercial_type: Option<String>,
    /// Only keys of this customer ID.
    #[arg(long)]
    customer_id: Option<String>,
    /// Only keys of this pricing structure (PLC, TBL, ALC, YLC, QLC).
    #[arg(long)]
    pricing_structure: Option<String>,
    /// Keep the seat until interrupted (SIGINT/SIGTERM), then release it.
    #[arg(long)]
    hold: bool,
}

/// The licence to activate: a licence key, or a serial number (web licensing).
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct Which {
    /// A licence key, XXXXX-XXXXX-XXXXX-XXXXX
    #[arg(long)]
    key: Option<String>,
    /// A serial number, XXXX-XXXX-… (for the product given with --product)
    #[arg(long)]
    serial: Option<String>,
}

impl Which {
    fn held(&self) -> Held<'_> {
        match (&self.key, &self.serial) {
            (Some(k), _) => Held::Key(k),
            (None, Some(s)) => Held::Serial(s),
            // clap requires exactly one of the two.
            (None, None) => Held::Key(""),
        }
    }
}

fn default_store() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("licentia");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/licentia"),
        None => PathBuf::from(".licentia"),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

fn show(claims: &Claims) {
    println!("Licence:    {}", claims.sub);
    println!("Product:    {}", claims.prd);
    println!("Machine:    {}", claims.host);
    let features = if claims.feat.is_empty() {
        "(none)".to_owned()
    } else {
        claims.feat.join(", ")
    };
    println!("Features:   {features}");
    for (k, v) in &claims.cnt {
        println!("Counter:    {k} = {v}");
    }
    match (&claims.start, &claims.end) {
        (Some(s), Some(e)) => println!("Valid:      {s} to {e}"),
        _ => println!("Valid:      no end date"),
    }
    println!("Validate by {}", protocol::time::format_utc(claims.next));
}

pub(crate) fn login_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown-user".into())
}

/// `checkout`: a seat, held or released at once.
fn checkout(
    servers: Option<&str>,
    product: Option<&str>,
    store: &std::path::Path,
    host: String,
    args: Box<CheckoutArgs>,
) -> Result<(), Error> {
    let args = *args;
    let application = SeatTerms {
        editor: args.editor,
        release_date: args.release_date,
        commercial_type: args.commercial_type,
        customer_id: args.customer_id,
        pricing_structure: args.pricing_structure,
        ..SeatTerms::default()
    };
    let floating = args.pool.floating(
        servers,
        product,
        store,
        host,
        (args.process, args.session),
        application,
    )?;
    let seat = floating.checkout(&args.feature, args.tokens)?;
    println!(
        "Seat {} of {} granted (key {}, {}){}.",
        seat.seat_id(),
        seat.feature,
        seat.key_id(),
        seat.model,
        if seat.bundled.is_empty() {
            String::new()
        } else {
            format!(", with {}", seat.bundled.join(", "))
        }
    );
    if !args.hold {
        seat.release()?;
        println!("Released.");
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| Error::Io(e.to_string()))?;
    }
    println!("Holding the seat; interrupt (Ctrl-C) to release it.");
    while !stop.load(Ordering::SeqCst) {
        if let Some(why) = seat.lost() {
            return Err(Error::Refused {
                kind: licentia_client::ProblemKind::Gone,
                status: 410,
                detail: why,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    match seat.release() {
        Ok(()) => println!("Released."),
        Err(e @ Error::Unreachable { .. }) => {
            eprintln!("{e}; the release will be done at the next start.");
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), Error> {
    let host = cli.hostname.clone().unwrap_or_else(hostname);
    let store_dir = cli.store.clone().unwrap_or_else(default_store);
    let command = match cli.command {
        Command::Checkout(args) => {
            return checkout(
                cli.server.as_deref(),
                cli.product.as_deref(),
                &store_dir,
                host,
                args,
            )
        }
        Command::Licence(command) => command,
    };
    let product = cli.product.ok_or_else(|| {
        Error::Io("the product code is required (--product or LICENTIA_PRODUCT)".into())
    })?;
    let store = match &cli.witness_dir {
        Some(witness) => Store::open_with_witness(&store_dir, &product, witness),
        None => Store::open(&store_dir, &product),
    }
    .map_err(Error::Io)?;
    let mut lic = Licensing::new(
        cli.server.as_deref(),
        &product,
        cli.machine_id.as_deref(),
        store,
    )?;
    if let Some(path) = &cli.root {
        lic = lic.with_root(read_jwks(path)?);
    } else if let Some(path) = &cli.jwks {
        lic = lic.with_jwks(read_jwks(path)?);
    } else if cli.trust_server_keys {
        lic = lic.trusting_server_keys();
    }
    match command {
        LicenceCommand::Activate(which) => {
            let claims = lic.activate(which.held(), &host)?;
            println!("Activated.");
            show(&claims);
        }
        LicenceCommand::RequestCode(which) => {
            let code = lic.request_code(which.held(), &host)?;
            eprintln!("Paste this request code into the portal (Offline activation), then run `import` with the response code it gives:");
            println!("{code}");
        }
        LicenceCommand::Import { code } => {
            let code = borrow_cli::code_or_stdin(code)?;
            let claims = lic.import(code.trim())?;
            println!("Activated (offline).");
            show(&claims);
        }
        LicenceCommand::Status { feature: Some(f) } => {
            borrow_cli::show_borrow(&f, lic.borrowed(&f)?)
        }
        LicenceCommand::Status { feature: None } => {
            let licence = lic.status();
            let borrows = lic.borrows();
            match licence {
                Ok(claims) => {
                    println!("The licence is valid.");
                    show(&claims);
                }
                Err(e) if borrows.is_empty() => return Err(e),
                Err(e) => println!("No licence here: {e}"),
            }
            for (feature, held) in borrows {
                match held {
                    Ok(claims) => borrow_cli::show_borrow(&feature, claims),
                    Err(e) => println!("Mobile licence of {feature}: not valid here: {e}"),
                }
            }
        }
        LicenceCommand::Validate => {
            let claims = lic.validate()?;
            println!("Validated with the server.");
            show(&claims);
        }
        LicenceCommand::Remove => {
            lic.remove()?;
            println!("The licence was removed from this machine; it can be activated elsewhere.");
        }
        LicenceCommand::RemovalCode => {
            let code = lic.removal_code(&host)?;
            eprintln!("The licence was given up on this machine. Paste this removal code into the portal (Offline activation, Transfer) to free it for another machine:");
            println!("{code}");
        }
        LicenceCommand::Fingerprint => println!("{}", lic.fingerprint),
        LicenceCommand::Mobile(command) => {
            let servers = cli.server.as_deref();
            borrow_cli::run(&mut lic, command, servers, &product, &store_dir, host)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A JWKS file the application ships (the vendor's root or signing keys).
fn read_jwks(path: &std::path::Path) -> Result<protocol::activation::JwkSet, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Io(format!("{} is not a JWKS: {e}", path.display())))
}
