//! E-mail: the messages Licentia sends (invitations, password resets) and the SMTP server that
//! carries them. Plain text only; the words are plain functions so they can be read in tests.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long connecting to the SMTP server may take (lettre's own timeout covers only that).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long handing one message over may take in all: connecting, greeting, TLS, the message.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// The SMTP server and the sender's address. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub subject: String,
    pub body: String,
}

impl Mailer {
    /// `url`: `smtp://host:port` (plain, for a relay on the same machine or network),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or `smtps://…:465`; `from`: the
    /// sender, e.g. `Licentia <licences@example.com>`. Only checks: nothing is connected yet.
    /// A password in the URL must travel encrypted: `smtps://` or `?tls=required`, unless the
    /// server is on this machine.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        if sends_password_in_clear(url) {
            return Err(
                "the password in this URL would go over the network unencrypted: use \
                 smtps://…:465 or add ?tls=required (STARTTLS)"
                    .to_owned(),
            );
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                format!("not an SMTP URL ({e}); e.g. smtp://mail.example.com:587?tls=required")
            })?
            .timeout(Some(CONNECT_TIMEOUT))
            .build();
        let from = from.parse::<Mailbox>().map_err(|e| {
            format!("not a sender address ({e}); e.g. Licentia <licences@example.com>")
        })?;
        Ok(Self { transport, from })
    }

    /// Hands `letter` for `name <email>` to the SMTP server. The error says what the server (or
    /// the network) answered.
    pub async fn send(&self, name: &str, email: &str, letter: Letter) -> Result<(), String> {
        let to = Mailbox::new(
            Some(name.to_owned()),
            email
                .parse()
                .map_err(|e| format!("{email} is not an address mail can go to ({e})"))?,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(letter.body)
            .map_err(|e| format!("the message could not be put together: {e}"))?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the mail server did not take the message: {e}")),
            Err(_) => Err(format!(
                "the mail server did not take the message within {} s",
                SEND_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Whether `url` has credentials that would be sent without TLS to another machine: plain
/// `smtp://` without `tls=required`, to a host other than this one.
fn sends_password_in_clear(url: &str) -> bool {
    let Some(rest) = url.trim().strip_prefix("smtp://") else {
        return false;
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, q),
        None => (rest, ""),
    };
    let authority = authority.split('/').next().unwrap_or_default();
    let Some((_, host)) = authority.rsplit_once('@') else {
        return false;
    };
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    let local = matches!(host, "localhost" | "127.0.0.1" | "::1");
    let tls = query.split('&').any(|kv| kv == "tls=required");
    !local && !tls
}

/// The invitation to `name`, made by `inviter`, to an organisation's portal (`None`: as an
/// administrator of the whole server).
pub fn invitation(
    name: &str,
    inviter: &str,
    organisation: Option<&str>,
    link: &str,
    valid_days: i64,
) -> Letter {
    let what = match organisation {
        Some(org) => format!("to manage {org}'s licences in Licentia"),
        None => "to administer Licentia".to_owned(),
    };
    Letter {
        subject: "You are invited to Licentia".to_owned(),
        body: format!(
            "Hello {name},\n\n{inviter} invites you {what}.\n\nChoose your password here (the \
             link works once, for {valid_days} days):\n\n{link}\n\nIf you did not expect this, \
             you can ignore this message: nothing happens until the link is used.\n"
        ),
    }
}

/// A password reset link for `name`, asked for by them or made by an administrator.
pub fn password_reset(name: &str, link: &str, valid_minutes: i64) -> Letter {
    let valid = if valid_minutes % 60 == 0 {
        let hours = valid_minutes / 60;
        format!("{hours} hour{}", if hours == 1 { "" } else { "s" })
    } else {
        format!("{valid_minutes} minutes")
    };
    Letter {
        subject: "Reset your Licentia password".to_owned(),
        body: format!(
            "Hello {name},\n\nSomeone (you, we hope) asked to reset the password of your \
             Licentia account. Choose a new one here (the link works once, for {valid}):\n\n\
             {link}\n\nIf it was not you, ignore this message: your password stays as it is, \
             and the link dies when it expires or when your password changes.\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_letters_carry_the_link_and_how_long_it_works() {
        let link = "https://lic.example.com/password-link/abc";
        let i = invitation("Ann", "Bob Vendor", Some("Acme"), link, 7);
        assert!(
            i.body.contains(link) && i.body.contains("7 days"),
            "{}",
            i.body
        );
        assert!(i.body.contains("Acme's licences") && i.body.contains("Bob Vendor"));
        let a = invitation("Ann", "Bob", None, link, 7);
        assert!(a.body.contains("to administer Licentia"), "{}", a.body);
        let r = password_reset("Ann", link, 60);
        assert!(
            r.body.contains(link) && r.body.contains("1 hour)"),
            "{}",
            r.body
        );
        assert!(password_reset("Ann", link, 1440).body.contains("24 hours"));
        assert!(password_reset("Ann", link, 30).body.contains("30 minutes"));
    }

    #[test]
    fn a_password_goes_to_another_machine_only_encrypted() {
        for clear in [
            "smtp://user:pw@mail.example.com:587",
            "smtp://user:pw@mail.example.com:25?tls=opportunistic",
            "smtp://user:pw@10.0.0.5",
        ] {
            assert!(sends_password_in_clear(clear), "{clear}");
            assert!(Mailer::new(clear, "a@example.com").is_err(), "{clear}");
        }
        for fine in [
            "smtp://user:pw@mail.example.com:587?tls=required",
            "smtps://user:pw@mail.example.com:465",
            "smtp://user:pw@127.0.0.1:25",
            "smtp://user:pw@[::1]:25",
            "smtp://mail.example.com:25",
        ] {
            assert!(!sends_password_in_clear(fine), "{fine}");
        }
    }

    #[test]
    fn bad_settings_are_told_before_anything_is_sent() {
        assert!(Mailer::new("http://mail.example.com", "a@example.com").is_err());
        assert!(Mailer::new("smtp://127.0.0.1:2525", "not an address").is_err());
        assert!(Mailer::new("smtp://127.0.0.1:2525", "Licentia <a@example.com>").is_ok());
        assert!(Mailer::new(
            "smtp://user:pw@mail.example.com:587?tls=required",
            "a@example.com"
        )
        .is_ok());
    }
}
