//! E-mail: the messages Licentia sends (invitations, password resets) and the SMTP server that
//! carries them. Plain text only; the words are plain functions so they can be read in tests.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one message may take to hand to the SMTP server.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

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
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| {
                format!("not an SMTP URL ({e}); e.g. smtp://mail.example.com:587?tls=required")
            })?
            .timeout(Some(SEND_TIMEOUT))
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
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("the mail server did not take the message: {e}"))
    }
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
