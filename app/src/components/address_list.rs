//! Lists filtered, sorted and paged by the server, their filters in the address (a link, Back
//! or a reload keeps them): the address of a page or a sort, sorting column heads, the count
//! above the table, the pager, and the page-size and sort fields of their filter forms.

use super::tables::text_options;
use leptos::prelude::*;
use protocol::account::ClientFilter;
use protocol::catalog::{ActivationFilter, LicenceFilter, OrderFilter};

/// The filters of a list kept in the address.
pub trait AddressFilter: Clone + Send + Sync + 'static {
    fn sort(&self) -> Option<&str>;
    fn order(&self) -> Option<&str>;
    /// The same filters sorted by `key`, `ascending` or not.
    fn sorted(&self, key: &str, ascending: bool) -> Self;
}

macro_rules! address_filter {
    ($t:ty) => {
        impl AddressFilter for $t {
            fn sort(&self) -> Option<&str> {
                self.sort.as_deref()
            }
            fn order(&self) -> Option<&str> {
                self.order.as_deref()
            }
            fn sorted(&self, key: &str, ascending: bool) -> Self {
                let mut to = self.clone();
                to.sort = Some(key.to_owned());
                to.order = Some(if ascending { "asc" } else { "desc" }.to_owned());
                to
            }
        }
    };
}
address_filter!(ActivationFilter);
address_filter!(LicenceFilter);
address_filter!(OrderFilter);
address_filter!(ClientFilter);

/// The address of one page of a list: `here` with `query` (its filters), the page size and the
/// cursor of the rows before it.
pub fn list_address(here: &str, query: String, limit: Option<i64>, after: Option<&str>) -> String {
    let parts = std::iter::once(query)
        .chain(limit.map(|l| format!("limit={l}")))
        .chain(after.map(|a| format!("after={}", protocol::audit::percent_encode(a))))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>();
    if parts.is_empty() {
        here.to_owned()
    } else {
        format!("{here}?{}", parts.join("&"))
    }
}

/// How a list's column heads sort: the key it sorts by when the address names none, and the
/// direction the server takes for a key when the address names no `order`.
pub struct SortDefaults {
    pub key: &'static str,
    pub descending: fn(&str) -> bool,
}

impl SortDefaults {
    /// Newest or largest first whatever the key, unless the address says `asc`.
    pub const DESCENDING: fn(&str) -> bool = |_| true;
}

/// A column head sorting the list by `key`: again on the sorted column reverses it; a new
/// column starts with its natural order, A–Z for names (`ascending`), newest or largest first
/// otherwise. `to` gives the address of a sort.
pub fn sort_head<F: AddressFilter>(
    f: &F,
    defaults: &SortDefaults,
    key: &'static str,
    label: &'static str,
    ascending: bool,
    to: impl Fn(&F) -> String,
) -> impl IntoView {
    let (state, next_ascending) = sort_state(f, defaults, key, ascending);
    let arrow = match state {
        "ascending" => " ▲",
        "descending" => " ▼",
        _ => "",
    };
    let href = to(&f.sorted(key, next_ascending));
    view! { <th scope="col" aria-sort=state><a class="sort" href=href>{label}{arrow}</a></th> }
}

/// A column head's `aria-sort` (`none`, `ascending`, `descending`: what the list shows) and
/// whether its link sorts A–Z.
fn sort_state<F: AddressFilter>(
    f: &F,
    defaults: &SortDefaults,
    key: &str,
    ascending: bool,
) -> (&'static str, bool) {
    let on = f.sort().unwrap_or(defaults.key) == key;
    let descending = match f.order() {
        Some(order) => order != "asc",
        None => (defaults.descending)(key),
    };
    match (on, descending) {
        (false, _) => ("none", ascending),
        (true, true) => ("descending", true),
        (true, false) => ("ascending", false),
    }
}

/// The line above a paged list: how many rows match in all and how many this page shows.
pub fn match_count(total: i64, shown: usize, one: &str, many: &str) -> String {
    match total {
        0 => format!("No {one} matches."),
        1 => format!("1 {one}"),
        n if shown as i64 == n => format!("{n} {many}"),
        n => format!("{n} {many} match; {shown} on this page"),
    }
}

/// Links to a paged list's first page (when this is not it) and to the next (when there is
/// one).
#[component]
pub fn LinkPager(
    label: &'static str,
    first: Option<String>,
    next: Option<String>,
    next_testid: &'static str,
) -> impl IntoView {
    view! {
        <nav class="pager" aria-label=label>
            {first.map(|href| view! { <a href=href>"← First page"</a> })}
            {next.map(|href| view! { <a href=href data-testid=next_testid>"Next page →"</a> })}
        </nav>
    }
}

/// A filter form's page size (the address's `limit`, or `default`), and the list's sort kept
/// as it is when the form is sent.
#[component]
pub fn PageAndSortFields<F: AddressFilter>(
    id: &'static str,
    limit: Memo<Option<i64>>,
    default: i64,
    filter: Memo<F>,
) -> impl IntoView {
    let sort = move || filter.with(|f| f.sort().unwrap_or_default().to_owned());
    let order = move || filter.with(|f| f.order().unwrap_or_default().to_owned());
    view! {
        <div class="field">
            <label for=id>"Rows per page"</label>
            {move || {
                let current = limit.get().unwrap_or(default).to_string();
                let mut items: Vec<(String, String)> = ["25", "50", "100", "500"].iter().map(|n| (n.to_string(), n.to_string())).collect();
                if !items.iter().any(|(v, _)| *v == current) {
                    items.push((current.clone(), current.clone()));
                }
                view! { <select id=id name="limit" inner_html=text_options(&items, &current)/> }
            }}
        </div>
        <input type="hidden" name="sort" value=sort() prop:value=sort/>
        <input type="hidden" name="order" value=order() prop:value=order/>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_address_keeps_filters_size_and_cursor() {
        assert_eq!(
            list_address("/admin/licences", String::new(), None, None),
            "/admin/licences"
        );
        assert_eq!(
            list_address("/l", "q=a%20b".into(), Some(25), Some("x=1")),
            "/l?q=a%20b&limit=25&after=x%3D1"
        );
        assert_eq!(
            list_address("/l", String::new(), None, Some("c")),
            "/l?after=c"
        );
    }

    #[test]
    fn a_head_says_the_order_the_server_gives() {
        let newest = SortDefaults {
            key: "created",
            descending: SortDefaults::DESCENDING,
        };
        let by_client = OrderFilter {
            sort: Some("client".into()),
            ..OrderFilter::default()
        };
        // `?sort=client` alone: the server's Z–A (its default), and the head reverses it.
        assert_eq!(
            sort_state(&by_client, &newest, "client", true),
            ("descending", true)
        );
        assert_eq!(
            sort_state(&by_client, &newest, "created", false),
            ("none", false)
        );
        assert_eq!(
            sort_state(&OrderFilter::default(), &newest, "created", false),
            ("descending", true)
        );
        let names = SortDefaults {
            key: "name",
            descending: |key| key == "created",
        };
        let clients = ClientFilter::default();
        assert_eq!(
            sort_state(&clients, &names, "name", true),
            ("ascending", false)
        );
        let newest_clients = ClientFilter {
            sort: Some("created".into()),
            ..ClientFilter::default()
        };
        assert_eq!(
            sort_state(&newest_clients, &names, "created", false),
            ("descending", true)
        );
        let z_a = ClientFilter {
            order: Some("desc".into()),
            ..ClientFilter::default()
        };
        assert_eq!(sort_state(&z_a, &names, "name", true), ("descending", true));
    }

    #[test]
    fn the_count_says_what_this_page_shows() {
        assert_eq!(
            match_count(0, 0, "licence", "licences"),
            "No licence matches."
        );
        assert_eq!(match_count(1, 1, "licence", "licences"), "1 licence");
        assert_eq!(match_count(3, 3, "licence", "licences"), "3 licences");
        assert_eq!(
            match_count(80, 50, "licence", "licences"),
            "80 licences match; 50 on this page"
        );
    }
}
