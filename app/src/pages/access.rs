//! A pool's access rules in the portal (DSLS authorization rules): the rules — allow, deny,
//! reserve — and the groups of users or hosts they name, for the pool's owner and administrators.

use crate::components::{or_dash, ActionDone, ActionError, ConfirmButton, LocalTime};
use crate::server_fns::floating::{
    AddAccessRule, RemoveAccessGroup, RemoveAccessRule, SaveAccessGroup,
};
use leptos::form::ActionForm;
use leptos::prelude::*;
use protocol::access::{AccessGroup, AccessRule, Effect, GroupKind, PoolAccess, SubjectKind};

/// The rule's effect in the owner's words.
fn effect_words(rule: &AccessRule) -> String {
    match (rule.effect, rule.seats) {
        (Effect::Allow, _) => "Allow (only those named)".into(),
        (Effect::Deny, _) => "Deny".into(),
        (Effect::Reserve, Some(n)) => format!("Reserve {n}"),
        (Effect::Reserve, None) => "Reserve".into(),
    }
}

/// The actions of the access rules card, made by the pool's page so that it reloads after each.
#[derive(Clone, Copy)]
pub struct AccessActions {
    add: ServerAction<AddAccessRule>,
    remove: ServerAction<RemoveAccessRule>,
    save_group: ServerAction<SaveAccessGroup>,
    remove_group: ServerAction<RemoveAccessGroup>,
}

impl AccessActions {
    pub fn new() -> Self {
        Self {
            add: ServerAction::new(),
            remove: ServerAction::new(),
            save_group: ServerAction::new(),
            remove_group: ServerAction::new(),
        }
    }

    /// Changes whenever one of them ran.
    pub fn version(&self) -> (usize, usize, usize, usize) {
        (
            self.add.version().get(),
            self.remove.version().get(),
            self.save_group.version().get(),
            self.remove_group.version().get(),
        )
    }
}

#[component]
pub fn AccessRules(
    pool_id: i64,
    features: Vec<String>,
    access: PoolAccess,
    actions: AccessActions,
) -> impl IntoView {
    let AccessActions {
        add,
        remove,
        save_group,
        remove_group,
    } = actions;
    let feature_list = format!("access-features-{pool_id}");
    view! {
        <section class="card" data-testid="access-rules">
            <h2>"Access rules"</h2>
            <p class="hint">"Who may take seats of which feature. A deny rule refuses whom it names, whatever else allows them; once a feature has allow rules, only those they name may take it; a reserve rule keeps seats free for its user, host or group (it never takes a seat from anyone). Seats an allow or deny rule now refuses end at their next heartbeat. Names are what the application reports, compared without regard to case."</p>
            <ActionError action=remove/>
            <ActionDone action=remove message="The rule was removed."/>
            <RuleTable rules=access.rules pool_id remove/>
            <h3>"Add a rule"</h3>
            <ActionForm action=add>
                <input type="hidden" name="pool_id" value=pool_id/>
                <div class="grid-3">
                    <div class="field">
                        <label for="rule-effect">"Rule"</label>
                        <select id="rule-effect" name="rule[effect]">
                            <option value=Effect::Deny.code()>"Deny"</option>
                            <option value=Effect::Allow.code()>"Allow only"</option>
                            <option value=Effect::Reserve.code()>"Reserve seats"</option>
                        </select>
                    </div>
                    <div class="field">
                        <label for="rule-kind">"For a"</label>
                        <select id="rule-kind" name="rule[subject_kind]">
                            <option value=SubjectKind::User.code()>"User"</option>
                            <option value=SubjectKind::Host.code()>"Host"</option>
                            <option value=SubjectKind::Group.code()>"Group"</option>
                        </select>
                    </div>
                    <div class="field">
                        <label for="rule-subject">"Name"</label>
                        <input id="rule-subject" name="rule[subject]" required=true maxlength="255" aria-describedby="rule-subject-hint"/>
                        <small id="rule-subject-hint" class="hint">"A user name, a host name, or one of the groups below."</small>
                    </div>
                    <div class="field">
                        <label for="rule-feature">"Feature"</label>
                        <input id="rule-feature" name="rule[feature]" list=feature_list.clone() maxlength="100" aria-describedby="rule-feature-hint"/>
                        <datalist id=feature_list.clone()>
                            {features.into_iter().map(|f| view! { <option value=f/> }).collect_view()}
                        </datalist>
                        <small id="rule-feature-hint" class="hint">"Empty: every feature of the pool."</small>
                    </div>
                    <div class="field">
                        <label for="rule-seats">"Seats kept"</label>
                        <input id="rule-seats" name="rule[seats]" type="number" min="1" max="100000" aria-describedby="rule-seats-hint"/>
                        <small id="rule-seats-hint" class="hint">"Reserve rules only: how many seats to keep free for them."</small>
                    </div>
                    <div class="field">
                        <label for="rule-note">"Note"</label>
                        <input id="rule-note" name="rule[note]" maxlength="200"/>
                    </div>
                </div>
                <ActionError action=add/>
                {move || add.value().get().and_then(|r| r.ok()).map(|r| view! {
                    <p class="notice" role="status">{format!("Added {}.", r.describe())}</p>
                })}
                <button type="submit" disabled=add.pending()>"Add rule"</button>
            </ActionForm>
            <h3>"Groups"</h3>
            <ActionError action=remove_group/>
            <ActionDone action=remove_group message="The group was removed."/>
            <GroupTable groups=access.groups pool_id remove_group/>
            <details>
                <summary>"Make or change a group"</summary>
                <ActionForm action=save_group>
                    <input type="hidden" name="pool_id" value=pool_id/>
                    <div class="grid-3">
                        <div class="field">
                            <label for="group-name">"Group name"</label>
                            <input id="group-name" name="group[name]" required=true maxlength="64" aria-describedby="group-name-hint"/>
                            <small id="group-name-hint" class="hint">"An existing group's name replaces its members."</small>
                        </div>
                        <div class="field">
                            <label for="group-kind">"Members are"</label>
                            <select id="group-kind" name="group[kind]">
                                <option value=GroupKind::User.code()>"Users"</option>
                                <option value=GroupKind::Host.code()>"Hosts"</option>
                            </select>
                        </div>
                        <div class="field">
                            <label for="group-members">"Members"</label>
                            <textarea id="group-members" name="group[members]" rows="4" required=true aria-describedby="group-members-hint"></textarea>
                            <small id="group-members-hint" class="hint">"One name per line (or separated by commas), up to 1000."</small>
                        </div>
                    </div>
                    <ActionError action=save_group/>
                    <ActionDone action=save_group message="The group was saved."/>
                    <button type="submit" disabled=save_group.pending()>"Save group"</button>
                </ActionForm>
            </details>
        </section>
    }
}

#[component]
fn RuleTable(
    rules: Vec<AccessRule>,
    pool_id: i64,
    remove: ServerAction<RemoveAccessRule>,
) -> impl IntoView {
    if rules.is_empty() {
        return view! { <p class="muted">"No access rule: everyone with the pool key may take any feature's free seats."</p> }
            .into_any();
    }
    view! {
        <table data-testid="access-rule-list">
            <caption class="visually-hidden">"Access rules"</caption>
            <thead><tr>
                <th scope="col">"Rule"</th><th scope="col">"Effect"</th><th scope="col">"Whom"</th>
                <th scope="col">"Feature"</th><th scope="col">"Note"</th><th scope="col">"Added"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {rules.into_iter().map(|r| {
                    let question = format!("Remove {}? It no longer applies from the next checkout.", r.describe());
                    view! {
                        <tr data-rule=r.id>
                            <td class="num">{r.id}</td>
                            <td>{effect_words(&r)}</td>
                            <td>{format!("{} {}", r.subject_kind.code(), r.subject)}</td>
                            <td>{r.feature.clone().unwrap_or_else(|| "every feature".into())}</td>
                            <td>{or_dash(r.note.clone())}</td>
                            <td><LocalTime unix_secs=r.created_at/></td>
                            <td class="actions">
                                <ActionForm action=remove>
                                    <input type="hidden" name="pool_id" value=pool_id/>
                                    <input type="hidden" name="rule_id" value=r.id/>
                                    <ConfirmButton question label="Remove rule"/>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

#[component]
fn GroupTable(
    groups: Vec<AccessGroup>,
    pool_id: i64,
    remove_group: ServerAction<RemoveAccessGroup>,
) -> impl IntoView {
    if groups.is_empty() {
        return view! { <p class="muted">"No group yet: rules can name a group of users or hosts instead of one rule per name."</p> }
            .into_any();
    }
    view! {
        <table data-testid="access-group-list">
            <caption class="visually-hidden">"Access groups"</caption>
            <thead><tr>
                <th scope="col">"Group"</th><th scope="col">"Of"</th><th scope="col">"Members"</th>
                <th scope="col"><span class="visually-hidden">"Actions"</span></th>
            </tr></thead>
            <tbody>
                {groups.into_iter().map(|g| {
                    let question = format!("Remove group {}? A group some rule names cannot be removed.", g.name);
                    let name = g.name.clone();
                    view! {
                        <tr data-group=g.name.clone()>
                            <td>{g.name.clone()}</td>
                            <td>{match g.kind { GroupKind::User => "users", GroupKind::Host => "hosts" }}</td>
                            <td class="wrap">{g.members.join(", ")}</td>
                            <td class="actions">
                                <ActionForm action=remove_group>
                                    <input type="hidden" name="pool_id" value=pool_id/>
                                    <input type="hidden" name="name" value=name/>
                                    <ConfirmButton question label="Remove group"/>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
