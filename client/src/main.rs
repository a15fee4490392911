//! `licentia-client`: a workstation's view of its licence, for people and for tests. Exit codes:
//! 0 success, 1 usage or local error, 2 the licence is refused or not valid, 3 the server cannot be
//! reached.

use clap::{Parser, Subcommand};
use licentia_client::{Error, Held, Licensing, Store};
use protocol::activation::Claims;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "licentia-client",
    version,
    about = "Activate, check and remove a Licentia licence on this machine"
)]
struct Cli {
    /// The licence server's URL, e.g. https://licences.example.com
    #[arg(long, env = "LICENTIA_SERVER", global = true)]
    server: Option<String>,
    /// The product code, e.g. ELEC-CALC
    #[arg(long, env = "LICENTIA_PRODUCT", global = true)]
    product: Option<String>,
    /// Where the licence state is kept [default: ~/.local/share/licentia]
    #[arg(long, env = "LICENTIA_STORE", global = true)]
    store: Option<PathBuf>,
    /// A stable identity for this machine instead of the OS machine id (containers, VMs).
    #[arg(
        long,
        env = "LICENTIA_MACHINE_ID",
        global = true,
        hide_env_values = true
    )]
    machine_id: Option<String>,
    /// A JWKS file with the server's public keys (e.g. shipped with the application), for
    /// verifying codes without asking the server.
    #[arg(long, env = "LICENTIA_JWKS", global = true)]
    jwks: Option<PathBuf>,
    /// The name shown for this machine in the portal [default: the host name]
    #[arg(long, global = true)]
    hostname: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Activate a licence on this machine through the server.
    Activate(Which),
    /// Offline activation, step 1: print a request code to paste into the portal.
    RequestCode(Which),
    /// Offline activation, step 2: import the response code from the portal (argument or stdin).
    Import { code: Option<String> },
    /// Check the licence offline and show what it grants.
    Status,
    /// Ask the server for the licence as it is now (extensions, feature changes, removal).
    Validate,
    /// Remove the licence from this machine and free it on the server.
    Remove,
    /// Print this machine's fingerprint for the product.
    Fingerprint,
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

fn run(cli: Cli) -> Result<(), Error> {
    let product = cli.product.ok_or_else(|| {
        Error::Io("the product code is required (--product or LICENTIA_PRODUCT)".into())
    })?;
    let store =
        Store::open(&cli.store.unwrap_or_else(default_store), &product).map_err(Error::Io)?;
    let mut lic = Licensing::new(
        cli.server.as_deref(),
        &product,
        cli.machine_id.as_deref(),
        store,
    )?;
    if let Some(path) = &cli.jwks {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))?;
        let keys = serde_json::from_str(&text)
            .map_err(|e| Error::Io(format!("{} is not a JWKS: {e}", path.display())))?;
        lic = lic.with_jwks(keys);
    }
    let host = cli.hostname.unwrap_or_else(hostname);
    match cli.command {
        Command::Activate(which) => {
            let claims = lic.activate(which.held(), &host)?;
            println!("Activated.");
            show(&claims);
        }
        Command::RequestCode(which) => {
            let code = lic.request_code(which.held(), &host)?;
            eprintln!("Paste this request code into the portal (Activation > Answer a request), then run `import` with the response:");
            println!("{code}");
        }
        Command::Import { code } => {
            let code = match code {
                Some(c) => c,
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| Error::Io(e.to_string()))?;
                    s
                }
            };
            let claims = lic.import(code.trim())?;
            println!("Activated (offline).");
            show(&claims);
        }
        Command::Status => {
            let claims = lic.status()?;
            println!("The licence is valid.");
            show(&claims);
        }
        Command::Validate => {
            let claims = lic.validate()?;
            println!("Validated with the server.");
            show(&claims);
        }
        Command::Remove => {
            lic.remove()?;
            println!("The licence was removed from this machine; it can be activated elsewhere.");
        }
        Command::Fingerprint => println!("{}", lic.fingerprint),
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
