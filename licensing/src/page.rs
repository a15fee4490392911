//! Pages of a list, by keyset: a page holds the items after the cursor in the list's own order,
//! so one taken while rows are added or removed never repeats or skips an item it already
//! passed (an offset would). The cursor is the last item's sort key, opaque to the caller
//! (base64url of its JSON); one that does not read as the list's kind of key is refused as bad
//! input. A cursor is only a place in the list: the caller's scope applies to every page.

use crate::{Error, Result};
use data_encoding::BASE64URL_NOPAD;
use protocol::input::InputError;
use protocol::page::{page_limit, PageQuery, MAX_CURSOR_LEN};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Which page of a list: `limit` items after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// `None`: the whole list (the portal's tables, which page in the browser).
    limit: Option<i64>,
    after: Option<String>,
}

/// A page of items, and the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Paged<T> {
    /// The same page of each item made into a `U`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paged<U> {
        Paged {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }

    /// The same page of each item made into a `U` by a step that may fail (a query per item,
    /// run only for the items the page keeps).
    pub(crate) async fn try_map_each<U, F>(self, mut f: impl FnMut(T) -> F) -> Result<Paged<U>>
    where
        F: std::future::Future<Output = Result<U>>,
    {
        let mut items = Vec::with_capacity(self.items.len());
        for item in self.items {
            items.push(f(item).await?);
        }
        Ok(Paged {
            items,
            next: self.next,
        })
    }
}

impl Page {
    /// The whole list at once.
    pub const ALL: Page = Page {
        limit: None,
        after: None,
    };

    /// The page a caller asked for, its size checked (`protocol::page::page_limit`).
    pub fn asked(q: PageQuery) -> Result<Page> {
        if q.after.as_ref().is_some_and(|a| a.len() > MAX_CURSOR_LEN) {
            return Err(bad_cursor());
        }
        Ok(Page {
            limit: Some(page_limit(q.limit)?),
            after: q.after.filter(|a| !a.is_empty()),
        })
    }

    /// The first `limit` items.
    pub fn first(limit: i64) -> Page {
        Page {
            limit: Some(limit),
            after: None,
        }
    }

    /// The sort key the page starts after, read as the list's key type `K`.
    pub(crate) fn after<K: DeserializeOwned>(&self) -> Result<Option<K>> {
        let Some(cursor) = &self.after else {
            return Ok(None);
        };
        let bytes = BASE64URL_NOPAD
            .decode(cursor.as_bytes())
            .map_err(|_| bad_cursor())?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| bad_cursor())
    }

    /// The rows to fetch: one more than the page holds, to learn whether another page follows.
    pub(crate) fn fetch(&self) -> i64 {
        self.limit.map_or(i64::MAX, |n| n.saturating_add(1))
    }

    /// The page made of `rows` (fetched in the list's order, at most `fetch()` of them): cut
    /// to the page's size, with the cursor of the last item kept when more follow.
    pub(crate) fn finish<T, K: Serialize>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> K,
    ) -> Paged<T> {
        let next = match self.limit {
            Some(n) if rows.len() as i64 > n => {
                rows.truncate(n as usize);
                rows.last().map(|last| cursor_of(&key(last)))
            }
            _ => None,
        };
        Paged { items: rows, next }
    }

    /// A page of a list built in memory (aggregates and small per-pool lists): sorted by `key`,
    /// the items after the cursor, cut to the page's size.
    pub fn slice<T, K>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> K) -> Result<Paged<T>>
    where
        K: Serialize + DeserializeOwned + Ord,
    {
        rows.sort_by_key(|r| key(r));
        if let Some(after) = self.after::<K>()? {
            rows.retain(|r| key(r) > after);
        }
        rows.truncate(usize::try_from(self.fetch()).unwrap_or(usize::MAX));
        Ok(self.finish(rows, key))
    }
}

fn cursor_of<K: Serialize>(key: &K) -> String {
    // A sort key (numbers and names) always serialises.
    BASE64URL_NOPAD.encode(serde_json::to_string(key).unwrap_or_default().as_bytes())
}

pub(crate) fn bad_cursor() -> Error {
    Error::Invalid(InputError::new(
        "after",
        "This cursor is not one this list gave: start from the first page (without `after`).",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn asked(limit: i64, after: Option<String>) -> Page {
        Page::asked(PageQuery {
            limit: Some(limit),
            after,
        })
        .expect("a good page")
    }

    /// Every page of `items` in turn, following the cursors.
    fn walk(items: &[(String, i64)], limit: i64) -> Vec<Vec<(String, i64)>> {
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = asked(limit, after)
                .slice(items.to_vec(), Clone::clone)
                .expect("a page");
            pages.push(page.items);
            match page.next {
                Some(n) => after = Some(n),
                None => return pages,
            }
        }
    }

    #[test]
    fn a_cursor_reads_back_as_the_key_it_was_made_of() {
        let key = ("Ünïcode & co".to_owned(), 42_i64);
        let page = asked(10, Some(cursor_of(&key)));
        assert_eq!(page.after::<(String, i64)>().expect("read"), Some(key));
    }

    #[test]
    fn a_cursor_the_list_did_not_give_is_refused_as_bad_input() {
        let made_up = [
            "not base64!".to_owned(),
            BASE64URL_NOPAD.encode(b"{not json"),
            cursor_of(&"a name"), // a text key where the list's key is a number
        ];
        for cursor in made_up {
            let e = asked(10, Some(cursor)).after::<i64>().expect_err("refused");
            assert!(
                matches!(e, Error::Invalid(ref i) if i.field == "after"),
                "{e:?}"
            );
        }
        let longest = cursor_of(&("𝄞".repeat(100), "𝄞".repeat(100), "X".repeat(20), i64::MAX));
        assert!(longest.len() <= MAX_CURSOR_LEN, "{}", longest.len());
        assert!(asked(10, Some(longest))
            .after::<(String, String, String, i64)>()
            .is_ok());
        let long = "A".repeat(MAX_CURSOR_LEN + 1);
        let e = Page::asked(PageQuery {
            limit: None,
            after: Some(long),
        })
        .expect_err("refused");
        assert!(matches!(e, Error::Invalid(ref i) if i.field == "after"));
    }

    #[test]
    fn the_last_page_has_no_next_and_an_exact_fit_does_not_promise_one() {
        let items: Vec<i64> = (1..=4).collect();
        let first = asked(2, None).slice(items.clone(), |i| *i).expect("page");
        assert_eq!(first.items, [1, 2]);
        let second = asked(2, first.next)
            .slice(items.clone(), |i| *i)
            .expect("page");
        assert_eq!(second.items, [3, 4]);
        assert_eq!(second.next, None, "four items in pages of two: two pages");
        assert_eq!(Page::ALL.slice(items, |i| *i).expect("all").items.len(), 4);
    }

    #[test]
    fn an_item_added_before_the_cursor_does_not_shift_the_next_page() {
        let mut items: Vec<i64> = vec![10, 20, 30, 40];
        let first = asked(2, None).slice(items.clone(), |i| *i).expect("page");
        items.push(5); // sorts first: an offset would show 20 again
        items.retain(|i| *i != 10);
        let second = asked(2, first.next).slice(items, |i| *i).expect("page");
        assert_eq!(second.items, [30, 40]);
    }

    proptest! {
        #[test]
        fn walking_the_pages_yields_every_item_once_in_order(
            mut items in proptest::collection::btree_set(("[a-zé]{0,3}", 0_i64..50), 0..40)
                .prop_map(|s| s.into_iter().collect::<Vec<_>>()),
            limit in 1_i64..7,
        ) {
            let pages = walk(&items, limit);
            prop_assert!(pages.iter().all(|p| p.len() as i64 <= limit));
            prop_assert!(pages.iter().rev().skip(1).all(|p| p.len() as i64 == limit));
            items.sort();
            prop_assert_eq!(pages.concat(), items);
        }
    }
}
