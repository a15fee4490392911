//! A pool's access rules as kept and edited: the rules and groups its owner writes (checked,
//! audited), and what checkouts, borrowing, heartbeats and the reclaimer judge by
//! (`protocol::access`, pure). A pool without rules costs no query: `PoolRow::access_rules`
//! counts them in the pool's own row read.

use super::lease::Only;
use super::*;
use protocol::access::{
    group_name, AccessGroup, AccessGroupInput, AccessRule, AccessRuleInput, Asker, Effect,
    GroupKind, Holder, PoolAccess, SubjectKind, MAX_GROUPS, MAX_RULES,
};

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    feature: Option<String>,
    effect: String,
    subject_kind: String,
    subject: String,
    seats: Option<i64>,
    note: String,
    created_at: i64,
}

impl RuleRow {
    /// `None` for a row the CHECK constraints would not let in.
    fn view(self) -> Option<AccessRule> {
        Some(AccessRule {
            id: self.id,
            feature: self.feature,
            effect: Effect::parse(&self.effect)?,
            subject_kind: SubjectKind::parse(&self.subject_kind)?,
            subject: self.subject,
            seats: self.seats,
            note: self.note,
            created_at: self.created_at,
        })
    }
}

const RULE_COLUMNS: &str = "id, feature, effect, subject_kind, subject, seats, note, created_at";

/// A group as kept: members one per line (a name may hold a comma).
fn group_of(name: String, kind: &str, members: &str) -> Option<AccessGroup> {
    Some(AccessGroup {
        name,
        kind: GroupKind::parse(kind)?,
        members: members.lines().map(str::to_owned).collect(),
    })
}

/// The name as rules compare it, what groups are unique by.
fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Licentia {
    /// A pool's rules (oldest first) and groups (by name), as its seats are judged.
    pub(super) async fn access_of(&self, pool_id: i64) -> Result<PoolAccess> {
        let rules: Vec<RuleRow> = sqlx::query_as(&format!(
            "SELECT {RULE_COLUMNS} FROM pool_access_rules WHERE pool_id = $1 ORDER BY id"
        ))
        .bind(pool_id)
        .fetch_all(self.db.pool())
        .await?;
        let groups: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT name, kind, members FROM pool_access_groups WHERE pool_id = $1 \
             ORDER BY name_key",
        )
        .bind(pool_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(PoolAccess {
            rules: rules.into_iter().filter_map(RuleRow::view).collect(),
            groups: groups
                .into_iter()
                .filter_map(|(name, kind, members)| group_of(name, &kind, &members))
                .collect(),
        })
    }

    /// `access_of`, read only when the pool has rules.
    pub(super) async fn access_for(&self, pool: &PoolRow) -> Result<PoolAccess> {
        self.access_if_any(pool.id, pool.access_rules).await
    }

    /// `access_of` for a pool known to have `rules` rules: nothing read when it has none.
    pub(super) async fn access_if_any(&self, pool_id: i64, rules: i64) -> Result<PoolAccess> {
        if rules == 0 {
            return Ok(PoolAccess::default());
        }
        self.access_of(pool_id).await
    }

    /// Refuses `who` a seat of `feature` when an allow or deny rule of the pool does, naming it.
    pub(super) fn check_access(access: &PoolAccess, feature: &str, who: Asker<'_>) -> Result<()> {
        match access.barred(feature, who) {
            None => Ok(()),
            Some(barred) => Err(Error::Refused(
                Refusal::AccessRule,
                barred.message(feature, who),
            )),
        }
    }

    /// `check_access` for a pool's row (no query for a pool without rules).
    pub(super) async fn check_pool_access(
        &self,
        pool: &PoolRow,
        feature: &str,
        who: Asker<'_>,
    ) -> Result<()> {
        Self::check_access(&self.access_for(pool).await?, feature, who)
    }

    /// The reserve rule that keeps `ask` from `who`, if one does (in words), judged on the
    /// feature's seats as `conn` sees them: in a checkout's transaction, with the feature's keys
    /// locked, right after it took `taken` of one of them (its seat not inserted yet), so two
    /// checkouts cannot both take the last seat a reservation leaves. The free seats are those
    /// of the keys that would serve this very request: a seat the asker cannot use is not one
    /// a reservation could leave them.
    pub(super) async fn reserved_against(
        &self,
        conn: &mut sqlx::AnyConnection,
        access: &PoolAccess,
        pool_id: i64,
        (ask, who): (&Ask, Asker<'_>),
        taken: i64,
    ) -> Result<Option<String>> {
        if !access.reserves(&ask.feature) {
            return Ok(None);
        }
        let keys: Vec<KeyRow> = sqlx::query_as(&format!(
            "SELECT {KEY_COLUMNS} FROM pool_keys WHERE pool_id = $1 AND feature = $2"
        ))
        .bind(pool_id)
        .bind(&ask.feature)
        .fetch_all(&mut *conn)
        .await?;
        let selectable: Vec<Key> = keys.iter().map(KeyRow::for_selection).collect();
        let plain = Ask {
            access: None,
            needed: 1,
            ..ask.clone()
        };
        let serving = selection::explain(&selectable, &plain, day_of(self.clock.now()));
        let free: i64 = selectable
            .iter()
            .filter(|k| {
                serving.iter().any(|(id, v)| {
                    *id == k.id
                        && matches!(
                            v,
                            Verdict::Ranked(_) | Verdict::Filtered(selection::Rule::NoneLeft)
                        )
                })
            })
            .map(|k| k.remaining().max(0))
            .sum::<i64>()
            + taken;
        let holders: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT user_name, host, amount FROM seats WHERE pool_id = $1 AND feature = $2 \
             AND released_at IS NULL AND amount > 0",
        )
        .bind(pool_id)
        .bind(&ask.feature)
        .fetch_all(&mut *conn)
        .await?;
        let holders: Vec<Holder> = holders
            .into_iter()
            .map(|(user, host, amount)| Holder { user, host, amount })
            .collect();
        Ok(access
            .reserved_against(&ask.feature, who, free, ask.needed, &holders)
            .map(AccessRule::describe))
    }

    /// Why the allow and deny rules refuse the holder of a seat now, if they do: its feature
    /// or a feature bundled with it (`bundled`, read here only for a pool with rules).
    pub(super) async fn seat_barred(
        &self,
        access: &PoolAccess,
        seat_id: i64,
        feature: &str,
        who: Asker<'_>,
    ) -> Result<Option<String>> {
        if access.rules.is_empty() {
            return Ok(None);
        }
        if let Some(barred) = access.barred(feature, who) {
            return Ok(Some(barred.reason()));
        }
        let bundled: Vec<String> = sqlx::query_scalar(
            "SELECT feature FROM seats WHERE bundle_of = $1 AND released_at IS NULL",
        )
        .bind(seat_id)
        .fetch_all(self.db.pool())
        .await?;
        Ok(access.barred_with(feature, &bundled, who))
    }

    /// The features checking out `feature` in a pool also takes, by name.
    pub(super) async fn bundles_of(&self, pool_id: i64, feature: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT also_feature FROM pool_bundles WHERE pool_id = $1 AND feature = $2 \
             ORDER BY also_feature",
        )
        .bind(pool_id)
        .bind(feature)
        .fetch_all(self.db.pool())
        .await?)
    }

    /// A pool's access rules and groups (its owner, an administrator).
    pub async fn pool_access(&self, actor: &CurrentUser, pool_id: i64) -> Result<PoolAccess> {
        self.pool(actor, pool_id).await?;
        self.access_of(pool_id).await
    }

    /// Adds a rule to a pool (its owner, an administrator). A rule naming a group needs the
    /// group. It applies from the next checkout and, for an allow or deny rule, ends the seats
    /// it refuses at their next heartbeat (silent held seats at the reclaimer's next round).
    pub async fn add_access_rule(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        input: AccessRuleInput,
    ) -> Result<AccessRule> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let mut input = input.checked()?;
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let rules: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pool_access_rules WHERE pool_id = $1")
                .bind(pool_id)
                .fetch_one(&mut *tx)
                .await?;
        if usize::try_from(rules).unwrap_or(usize::MAX) >= MAX_RULES {
            return Err(Error::refused(format!(
                "A pool keeps at most {MAX_RULES} access rules: remove some, or name a group \
                 instead of one rule per user."
            )));
        }
        if input.subject_kind == SubjectKind::Group {
            // The group's row locked until the rule is in: a removal of the group waits, then
            // sees the rule (`remove_access_group` deletes first, then looks for rules).
            let name: Option<String> = sqlx::query_scalar(
                "UPDATE pool_access_groups SET updated_at = updated_at \
                 WHERE pool_id = $1 AND name_key = $2 RETURNING name",
            )
            .bind(pool_id)
            .bind(name_key(&input.subject))
            .fetch_optional(&mut *tx)
            .await?;
            input.subject = name.ok_or_else(|| {
                InputError::new(
                    "subject",
                    format!(
                        "This pool has no group named {}: make the group first.",
                        input.subject
                    ),
                )
            })?;
        }
        // The same rule twice (a block clicked twice) would need removing twice.
        let existing: Vec<RuleRow> = sqlx::query_as(&format!(
            "SELECT {RULE_COLUMNS} FROM pool_access_rules WHERE pool_id = $1 AND effect = $2 \
             AND subject_kind = $3"
        ))
        .bind(pool_id)
        .bind(input.effect.code())
        .bind(input.subject_kind.code())
        .fetch_all(&mut *tx)
        .await?;
        if let Some(same) = existing.into_iter().filter_map(RuleRow::view).find(|r| {
            r.feature == input.feature
                && protocol::access::same_name(&r.subject, &input.subject)
                && (r.effect != Effect::Reserve || r.seats == input.seats)
        }) {
            return Err(Error::Conflict(format!(
                "The pool has this rule already: {}.",
                same.describe()
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pool_access_rules (pool_id, feature, effect, subject_kind, subject, \
             seats, note, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(pool_id)
        .bind(&input.feature)
        .bind(input.effect.code())
        .bind(input.subject_kind.code())
        .bind(&input.subject)
        .bind(input.seats)
        .bind(&input.note)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let rule = AccessRule {
            id,
            feature: input.feature,
            effect: input.effect,
            subject_kind: input.subject_kind,
            subject: input.subject,
            seats: input.seats,
            note: input.note,
            created_at: now,
        };
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolAccessRuleAdd)
                .detail(rule_detail("Added access", &rule)),
        )
        .await?;
        crate::db::commit(tx).await?;
        tracing::info!(pool_id, rule = id, by = actor.id, "access rule added");
        Ok(rule)
    }

    /// Denies the user or the machine (`kind`) of a live seat every feature of its pool (the
    /// pool's owner, an administrator, from the monitor): the seat and the others they hold end
    /// at their next heartbeat, told which rule.
    pub async fn block_seat_holder(
        &self,
        actor: &CurrentUser,
        seat_id: i64,
        kind: SubjectKind,
    ) -> Result<AccessRule> {
        let held: Option<(i64, String, String)> =
            sqlx::query_as("SELECT pool_id, user_name, host FROM seats WHERE id = $1")
                .bind(seat_id)
                .fetch_optional(self.db.pool())
                .await?;
        let (pool_id, user, host) = held.ok_or(Error::NotFound("The seat"))?;
        let pool = self.pool_row(pool_id).await?;
        // (Another organisation's seat is not found, rather than forbidden: its id says nothing.)
        self.require_pool_access(actor, &pool)
            .map_err(|_| Error::NotFound("The seat"))?;
        let subject = match kind {
            SubjectKind::User => user,
            SubjectKind::Host => host,
            SubjectKind::Group => {
                return Err(InputError::new("what", "Block the seat's user or its machine.").into())
            }
        };
        let input = AccessRuleInput {
            feature: None,
            effect: Effect::Deny,
            subject_kind: kind,
            subject,
            seats: None,
            note: format!("Blocked from the usage monitor (seat {seat_id})"),
        };
        self.add_access_rule(actor, pool_id, input).await
    }

    /// Removes a rule of a pool (its owner, an administrator).
    pub async fn remove_access_rule(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        rule_id: i64,
    ) -> Result<()> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let mut tx = self.db.pool().begin().await?;
        let removed: Option<RuleRow> = sqlx::query_as(&format!(
            "DELETE FROM pool_access_rules WHERE id = $1 AND pool_id = $2 \
             RETURNING {RULE_COLUMNS}"
        ))
        .bind(rule_id)
        .bind(pool_id)
        .fetch_optional(&mut *tx)
        .await?;
        let rule = removed
            .and_then(RuleRow::view)
            .ok_or(Error::NotFound("This pool's access rule"))?;
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolAccessRuleRemove)
                .detail(rule_detail("Removed access", &rule)),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(())
    }

    /// Makes or replaces a group of a pool (its owner, an administrator). Rules naming it
    /// judge by its new members from the next checkout or heartbeat.
    pub async fn save_access_group(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        name: &str,
        input: AccessGroupInput,
    ) -> Result<AccessGroup> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let name = group_name(name)?;
        let input = input.checked()?;
        let members = input.members.join("\n");
        let now = self.clock.now();
        let mut tx = self.db.pool().begin().await?;
        let before: Option<(String, String, String)> = sqlx::query_as(
            "SELECT name, kind, members FROM pool_access_groups \
             WHERE pool_id = $1 AND name_key = $2",
        )
        .bind(pool_id)
        .bind(name_key(&name))
        .fetch_optional(&mut *tx)
        .await?;
        let entry = match &before {
            Some((old_name, kind, old_members)) => {
                let changed = sqlx::query(
                    "UPDATE pool_access_groups SET kind = $1, members = $2, updated_at = $3 \
                     WHERE pool_id = $4 AND name_key = $5",
                )
                .bind(input.kind.code())
                .bind(&members)
                .bind(now)
                .bind(pool_id)
                .bind(name_key(&name))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if changed == 0 {
                    return Err(Error::Conflict(format!(
                        "Group {old_name} was removed at this very moment: save it again to \
                         make it anew."
                    )));
                }
                pool.entry(AuditAction::PoolAccessGroupSave)
                    .detail(format!("Changed access group {old_name}."))
                    .changes(changed_fields(
                        &[
                            ("kind", kind.clone()),
                            ("members", old_members.replace('\n', ", ")),
                        ],
                        &[
                            ("kind", input.kind.code().to_owned()),
                            ("members", input.members.join(", ")),
                        ],
                    ))
            }
            None => {
                let groups: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pool_access_groups WHERE pool_id = $1",
                )
                .bind(pool_id)
                .fetch_one(&mut *tx)
                .await?;
                if usize::try_from(groups).unwrap_or(usize::MAX) >= MAX_GROUPS {
                    return Err(Error::refused(format!(
                        "A pool keeps at most {MAX_GROUPS} access groups: remove some first."
                    )));
                }
                sqlx::query(
                    "INSERT INTO pool_access_groups (pool_id, name, name_key, kind, members, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(pool_id)
                .bind(&name)
                .bind(name_key(&name))
                .bind(input.kind.code())
                .bind(&members)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    Error::unique_as_conflict(
                        e,
                        format!(
                            "A group named {name} was made at this very moment: reload and \
                             edit it."
                        ),
                    )
                })?;
                pool.entry(AuditAction::PoolAccessGroupSave).detail(format!(
                    "Made access group {name} of {}s: {}.",
                    input.kind.code(),
                    input.members.join(", ")
                ))
            }
        };
        self.record(&mut *tx, Who::User(actor), entry).await?;
        crate::db::commit(tx).await?;
        Ok(AccessGroup {
            name: before.map_or(name, |(n, _, _)| n),
            kind: input.kind,
            members: input.members,
        })
    }

    /// Removes a group of a pool (its owner, an administrator); refused while a rule names it.
    pub async fn remove_access_group(
        &self,
        actor: &CurrentUser,
        pool_id: i64,
        name: &str,
    ) -> Result<()> {
        let pool = self.pool_row(pool_id).await?;
        self.require_pool_access(actor, &pool)?;
        let key = name_key(name);
        let mut tx = self.db.pool().begin().await?;
        // Deleted first (its row locked), then the rules looked for: a rule added meanwhile
        // either waited for this and finds no group, or is seen here and stops the removal.
        let group: Option<String> = sqlx::query_scalar(
            "DELETE FROM pool_access_groups WHERE pool_id = $1 AND name_key = $2 RETURNING name",
        )
        .bind(pool_id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let group = group.ok_or(Error::NotFound("This pool's access group"))?;
        // (A rule names a group as the group spells itself: see `add_access_rule`.)
        let naming: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM pool_access_rules WHERE pool_id = $1 AND subject_kind = 'group' \
             AND subject = $2 ORDER BY id",
        )
        .bind(pool_id)
        .bind(&group)
        .fetch_all(&mut *tx)
        .await?;
        if !naming.is_empty() {
            tx.rollback().await?;
            let ids: Vec<String> = naming.iter().map(i64::to_string).collect();
            return Err(Error::Conflict(format!(
                "Access rule{} {} name{} group {group}: remove {} first.",
                if ids.len() == 1 { "" } else { "s" },
                ids.join(", "),
                if ids.len() == 1 { "s" } else { "" },
                if ids.len() == 1 { "it" } else { "them" },
            )));
        }
        self.record(
            &mut *tx,
            Who::User(actor),
            pool.entry(AuditAction::PoolAccessGroupRemove)
                .detail(format!("Removed access group {group}.")),
        )
        .await?;
        crate::db::commit(tx).await?;
        Ok(())
    }

    /// Ends the silent seats a pool holds for applications (`SilentSeats::Held`) whose holders
    /// an allow or deny rule now refuses: no heartbeat will come to end them. Part of the
    /// reclaimer's round; safe in several processes at once.
    pub(super) async fn end_barred_silent_seats(&self, now: i64) -> Result<u64> {
        let mut ended = 0;
        let mut rules: std::collections::HashMap<i64, PoolAccess> = Default::default();
        let mut after = 0i64;
        loop {
            let silent: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
                "SELECT s.id, s.pool_id, s.feature, s.user_name, s.host FROM seats s \
                 JOIN pools p ON p.id = s.pool_id \
                 WHERE s.released_at IS NULL AND s.bundle_of IS NULL \
                 AND s.borrowed_until IS NULL AND s.lease_expires_at < $1 \
                 AND p.silent_seats = 'held' AND s.id > $2 \
                 AND EXISTS (SELECT 1 FROM pool_access_rules r WHERE r.pool_id = s.pool_id \
                   AND r.effect <> 'reserve') \
                 ORDER BY s.id LIMIT 1000",
            )
            .bind(now)
            .bind(after)
            .fetch_all(self.db.pool())
            .await?;
            let last_page = silent.len() < 1000;
            for (seat_id, pool_id, feature, user, host) in silent {
                after = seat_id;
                if let std::collections::hash_map::Entry::Vacant(e) = rules.entry(pool_id) {
                    e.insert(self.access_of(pool_id).await?);
                }
                let Some(access) = rules.get(&pool_id) else {
                    continue;
                };
                let who = Asker {
                    user: &user,
                    host: &host,
                };
                if let Some(reason) = self.seat_barred(access, seat_id, &feature, who).await? {
                    let why = ReleaseReason::Lost(reason);
                    if self
                        .release_seat_if(seat_id, &why, Only::SilentBefore(now))
                        .await?
                    {
                        ended += 1;
                    }
                }
            }
            if last_page {
                return Ok(ended);
            }
        }
    }
}

/// An audit entry's words for a rule added or removed.
fn rule_detail(done: &str, rule: &AccessRule) -> String {
    if rule.note.is_empty() {
        format!("{done} {}.", rule.describe())
    } else {
        format!("{done} {} — {}.", rule.describe(), rule.note)
    }
}
