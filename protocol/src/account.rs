//! Accounts as the portal sees them: who is signed in, client organisations and their users.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The vendor's staff: sees and manages everything.
    Admin,
    /// A user of one client organisation: sees only that client's data.
    Client,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Client => "client",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "client" => Some(Role::Client),
            _ => None,
        }
    }
}

/// The signed-in user, as the portal needs it to choose navigation and pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub client: Option<ClientRef>,
    /// Signs in with a second factor (an authenticator app).
    #[serde(default)]
    pub second_factor: bool,
    /// An administrator on a server that requires a second factor, without one yet: until it is
    /// set up, setting it up is all they may do.
    #[serde(default)]
    pub must_set_up_second_factor: bool,
}

/// The caller's second factor as their account page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorState {
    pub on: bool,
    pub recovery_codes_left: i64,
    /// The server requires one and there is none yet.
    pub required: bool,
}

/// A second factor being set up: the secret to type into an authenticator app, or the URI it
/// imports (`otpauth://…`). Shown to its owner only, until confirmed with a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorSetup {
    pub secret: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientRef {
    pub id: i64,
    pub name: String,
}

/// One portal user in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSummary {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub client_id: Option<i64>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last successful sign-in, if any.
    pub last_sign_in_at: Option<i64>,
    /// Invited and not yet arrived: no password set yet (the invitation link sets it).
    #[serde(default)]
    pub invited: bool,
}

/// Which clients a list shows and in what order (the Web API's query parameters, the portal's
/// filters); everything optional. A page of them is asked for beside (`limit`, `after`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ClientFilter {
    /// Part of the client's name, contact address or notes (any case).
    #[cfg_attr(feature = "openapi", param(max_length = 100))]
    pub q: Option<String>,
    /// `name` (default, A–Z) or `created` (newest first).
    pub sort: Option<String>,
    /// `asc` or `desc` (default: the sort's natural order).
    pub order: Option<String>,
}

impl ClientFilter {
    /// The filters as a URL query string (empty ones left out), for links and the CSV export.
    pub fn query_string(&self) -> String {
        crate::catalog::query_string(
            &[("q", &self.q), ("sort", &self.sort), ("order", &self.order)],
            &[],
        )
    }
}

/// A page of the clients list.
pub type ClientTable = crate::catalog::Table<ClientSummary>;

/// One client organisation in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientSummary {
    pub id: i64,
    pub name: String,
    pub contact_email: String,
    pub notes: String,
    pub created_at: i64,
    pub user_count: i64,
    pub order_count: i64,
    /// Licences of the client's orders bound to a machine now.
    pub active_licences: i64,
}

/// A client record as written: by the portal's forms and `POST`/`PUT /api/v1/clients`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientBody {
    pub name: String,
    #[serde(default)]
    pub contact_email: String,
    #[serde(default)]
    pub notes: String,
}

/// A client with its users, for its detail page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientDetail {
    pub client: ClientSummary,
    pub users: Vec<UserSummary>,
}

/// Figures for the administrator's overview page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminOverview {
    pub clients: i64,
    pub client_users: i64,
    pub administrators: i64,
}

/// One of the caller's own portal sessions, as "My account" lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnSession {
    /// Names the session to end it (the start of its token's digest, never the token).
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The network address it was opened from.
    pub address: String,
    /// The session this list was asked from.
    pub current: bool,
}

/// What a one-time password link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LinkPurpose {
    /// An account made without a password: the link sets the first one.
    Invitation,
    /// A forgotten password: the link sets a new one.
    Reset,
}

impl LinkPurpose {
    pub fn code(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::Reset => "reset",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "invitation" => Some(Self::Invitation),
            "reset" => Some(Self::Reset),
            _ => None,
        }
    }
}

/// A usable password link, as its page shows it before the password is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordLinkInfo {
    pub purpose: LinkPurpose,
    pub name: String,
    pub email: String,
}

/// How a link made by an administrator reaches its person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum LinkDelivery {
    /// Sent by e-mail to this address.
    Mailed { to: String },
    /// Not sent (no mail server set up, or it refused: `why`): the administrator passes the
    /// link on.
    PassOn {
        link: String,
        expires_at: i64,
        why: String,
    },
}

/// An account invited, or a password link made for one, and how the link goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSent {
    pub user: UserSummary,
    pub purpose: LinkPurpose,
    pub delivery: LinkDelivery,
}

/// A user added to a client: with a first password (`invitation` none), or invited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAdded {
    #[serde(flatten)]
    pub user: UserSummary,
    pub invitation: Option<LinkDelivery>,
}
