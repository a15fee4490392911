//! Tables: column heads (sorting or not), the search box, the count under a table, and the
//! wide table that scrolls sideways on a narrow screen.

use leptos::prelude::*;
use std::cmp::Ordering;

/// Column headings, in order; those named in `numeric` head columns of numbers (set right).
#[component]
pub fn ColumnHeads(
    names: &'static [&'static str],
    #[prop(optional)] numeric: &'static [&'static str],
) -> impl IntoView {
    names
        .iter()
        .map(|name| {
            let class = numeric.contains(name).then_some("num");
            view! { <th scope="col" class=class>{*name}</th> }
        })
        .collect_view()
}

/// A table of many columns, scrolling sideways where the screen is narrow: a caption for screen
/// readers, its column heads (and an "Actions" head when `actions`), and the rows it is given.
#[component]
pub fn WideTable(
    caption: &'static str,
    heads: &'static [&'static str],
    #[prop(optional)] numeric: &'static [&'static str],
    #[prop(optional)] actions: bool,
    children: Children,
) -> impl IntoView {
    view! {
        <div class="scroll">
            <table>
                <caption class="visually-hidden">{caption}</caption>
                <thead><tr>
                    <ColumnHeads names=heads numeric/>
                    {actions.then(|| view! { <th scope="col">"Actions"</th> })}
                </tr></thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}

/// Pages of a list that goes by a cursor, newest first: *Older* moves to the page after
/// `next` (keeping the way back), *Newer* goes back a page. `before` is the page shown (none:
/// the newest), `newer` the pages before it.
#[component]
pub fn CursorPager(
    label: &'static str,
    /// What the pages hold, in the plural ("entries", "sessions").
    noun: &'static str,
    newer: RwSignal<Vec<Option<i64>>>,
    before: RwSignal<Option<i64>>,
    next: Option<i64>,
    #[prop(optional)] older_testid: Option<&'static str>,
) -> impl IntoView {
    view! {
        <nav class="pager" aria-label=label>
            {move || (!newer.get().is_empty()).then(|| view! {
                <button type="button" class="link" on:click=move |_| {
                    let mut stack = newer.get();
                    let back = stack.pop().flatten();
                    newer.set(stack);
                    before.set(back);
                }>{format!("← Newer {noun}")}</button>
            })}
            {next.map(|n| view! {
                <button type="button" class="link" data-testid=older_testid on:click=move |_| {
                    newer.update(|s| s.push(before.get_untracked()));
                    before.set(Some(n));
                }>{format!("Older {noun} →")}</button>
            })}
        </nav>
    }
}

/// The line under a searchable table: how many rows there are and how many the search shows,
/// or what to do when there are none at all.
#[component]
pub fn TableCount(
    total: usize,
    #[prop(into)] shown: Signal<usize>,
    /// The rows' name in the plural, such as "orders".
    noun: &'static str,
    /// What to say when there is no row at all.
    empty: &'static str,
) -> impl IntoView {
    view! {
        <p class="muted">{move || table_count(total, shown.get(), noun, empty)}</p>
    }
}

fn table_count(total: usize, shown: usize, noun: &str, empty: &str) -> String {
    match (total, shown) {
        (0, _) => empty.to_owned(),
        (_, 0) => format!("No {noun} match."),
        (t, s) if s == t => format!("{t} {noun}"),
        (t, s) => format!("{s} of {t} {noun} match"),
    }
}

/// Which column a table is sorted on, and in which direction.
#[derive(Clone, Copy)]
pub struct Sort {
    pub key: RwSignal<&'static str>,
    pub ascending: RwSignal<bool>,
}

impl Sort {
    pub fn new(key: &'static str) -> Self {
        Self {
            key: RwSignal::new(key),
            ascending: RwSignal::new(true),
        }
    }

    /// Orders `rows` by the comparison `by` gives for the current key.
    pub fn apply<T>(&self, rows: &mut [T], by: impl Fn(&'static str, &T, &T) -> Ordering) {
        let key = self.key.get();
        let ascending = self.ascending.get();
        rows.sort_by(|a, b| {
            let o = by(key, a, b);
            if ascending {
                o
            } else {
                o.reverse()
            }
        });
    }
}

/// Sorting column headers in order: `(key, label)` each; keys named in `numeric` head columns of
/// numbers.
#[component]
pub fn SortHeads(
    sort: Sort,
    columns: &'static [(&'static str, &'static str)],
    #[prop(optional)] numeric: &'static [&'static str],
) -> impl IntoView {
    columns
        .iter()
        .map(|(key, label)| view! { <SortHeader sort key=*key label=*label numeric=numeric.contains(key)/> })
        .collect_view()
}

/// A column header that sorts the table on click (again to reverse).
#[component]
pub fn SortHeader(
    sort: Sort,
    key: &'static str,
    label: &'static str,
    /// Right-aligned, like the numbers below it.
    #[prop(optional)]
    numeric: bool,
) -> impl IntoView {
    let state = move || {
        if sort.key.get() != key {
            "none"
        } else if sort.ascending.get() {
            "ascending"
        } else {
            "descending"
        }
    };
    let arrow = move || match state() {
        "ascending" => " ▲",
        "descending" => " ▼",
        _ => "",
    };
    view! {
        <th scope="col" aria-sort=state class:num=numeric>
            <button
                type="button"
                class="sort"
                on:click=move |_| {
                    if sort.key.get_untracked() == key {
                        sort.ascending.update(|a| *a = !*a);
                    } else {
                        sort.key.set(key);
                        sort.ascending.set(true);
                    }
                }
            >
                {label}
                <span aria-hidden="true">{arrow}</span>
            </button>
        </th>
    }
}

/// A search box whose text filters a table as one types.
#[component]
pub fn SearchBox(query: RwSignal<String>, label: &'static str) -> impl IntoView {
    view! {
        <div class="search">
            <label for="table-search" class="visually-hidden">{label}</label>
            <input
                id="table-search"
                type="search"
                placeholder=label
                value=query.get_untracked()
                prop:value=move || query.get()
                on:input=move |ev| query.set(event_target_value(&ev))
            />
        </div>
    }
}

/// The link that downloads a list as CSV (the server writes it: every row the caller may read,
/// not only the page shown).
#[component]
pub fn CsvLink(#[prop(into)] href: Signal<String>, test_id: &'static str) -> impl IntoView {
    view! {
        <a class="button small" href=move || href.get() download="" data-testid=test_id>
            "Download CSV"
        </a>
    }
}

/// What a searchable, sortable table shows: the rows with a field containing the search (case
/// aside), in the order the sort chooses.
pub fn shown_rows<T>(
    all: Vec<T>,
    query: RwSignal<String>,
    sort: Sort,
    fields: impl Fn(&T) -> Vec<String> + Send + Sync + 'static,
    by: impl Fn(&'static str, &T, &T) -> Ordering + Copy + Send + Sync + 'static,
) -> Memo<Vec<T>>
where
    T: Clone + PartialEq + Send + Sync + 'static,
{
    Memo::new(move |_| {
        let needle = query.get().trim().to_lowercase();
        let mut rows: Vec<T> = all
            .iter()
            .filter(|row| {
                needle.is_empty()
                    || fields(row)
                        .iter()
                        .any(|f| f.to_lowercase().contains(&needle))
            })
            .cloned()
            .collect();
        sort.apply(&mut rows, by);
        rows
    })
}

/// Text in alphabetical order, case aside.
pub fn by_text(a: &str, b: &str) -> Ordering {
    a.to_lowercase().cmp(&b.to_lowercase())
}

/// `<option>`s as HTML. Chromium's parser treats text inside `<select>` differently from the
/// hydration walk (names with quotes broke it), so options are set as inner HTML, escaped here.
pub fn options(items: impl Iterator<Item = (i64, String)>) -> String {
    items
        .map(|(id, label)| format!("<option value=\"{id}\">{}</option>", escape_html(&label)))
        .collect()
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// A labelled `<select>` of fixed `(value, label)` choices, `current` selected.
#[component]
pub fn ChoiceField(
    id: &'static str,
    label: &'static str,
    name: &'static str,
    choices: &'static [(&'static str, &'static str)],
    current: String,
) -> impl IntoView {
    let items: Vec<(String, String)> = choices
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .collect();
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <select id=id name=name inner_html=text_options(&items, &current)/>
        </div>
    }
}

/// `<option>`s of `(value, label)` as HTML, `current` selected (see `options`).
pub fn text_options(items: &[(String, String)], current: &str) -> String {
    items
        .iter()
        .map(|(value, label)| {
            let on = if value == current { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{on}>{}</option>",
                escape_html(value),
                escape_html(label)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::table_count;

    #[test]
    fn the_table_count_says_what_the_search_left() {
        let count = |total, shown| table_count(total, shown, "orders", "No orders yet.");
        assert_eq!(count(0, 0), "No orders yet.");
        assert_eq!(count(3, 0), "No orders match.");
        assert_eq!(count(3, 3), "3 orders");
        assert_eq!(count(3, 1), "1 of 3 orders match");
    }
}
