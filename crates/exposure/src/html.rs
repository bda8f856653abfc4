//! The human-readable exposure report: one self-contained, printable HTML page.
//!
//! Invariants: inline CSS only, no scripts, no external resources (a restrictive CSP meta tag says so
//! to the browser too), and every value that comes from the report (organization names, file names,
//! notes...) is escaped by `esc` at the point of output. Charts are inline SVG bars.

use std::collections::BTreeMap;

use crate::{
    Assessment, Basis, ExposureReport, HhsPortal, HhsRoute, KeysExposed, OrgReport, SubstitutePath,
};

/// Render the report as a standalone HTML document.
pub fn render_html(report: &ExposureReport) -> String {
    render_page(&page_from_report(report))
}

// ---------------------------------------------------------------------------------------------
// Report -> view model.
// ---------------------------------------------------------------------------------------------

fn basis_text(b: Basis) -> &'static str {
    match b {
        Basis::Present => "present: every file version on the server at any moment of the window (file lifecycle)",
        Basis::Accessed => "accessed: only file versions read during the window by matching sessions (verified audit log)",
    }
}

fn hhs_text(route: HhsRoute, date: Option<&str>) -> String {
    let by = date.map(|d| format!(" (by {d})")).unwrap_or_default();
    match route {
        HhsRoute::WithIndividualNotice => {
            format!("500 or more individuals: notify HHS at the same time as the individuals{by}")
        }
        HhsRoute::AnnualLog => {
            format!("fewer than 500: log it; report to HHS within 60 days after the end of the calendar year of discovery{by}")
        }
        HhsRoute::NotRequired => {
            "not required (PHI secured under the safe harbor, or nobody affected)".to_string()
        }
    }
}

fn substitute_text(p: SubstitutePath) -> &'static str {
    match p {
        SubstitutePath::None => "No substitute notice needed: everyone has a valid mailing address.",
        SubstitutePath::AlternativeFormOrPhone => {
            "Fewer than 10: substitute notice by another written form, telephone or other means."
        }
        SubstitutePath::WebPostingOrMediaWithTollFree => {
            "10 or more: conspicuous web-site posting for 90 days or major print/broadcast media where they live, plus a toll-free number for at least 90 days."
        }
    }
}

fn view_label(keys_exposed: bool) -> &'static str {
    if keys_exposed {
        "if keys were exposed"
    } else {
        "if keys were not exposed"
    }
}

/// The assessment shown on the cards: the operator's view, or the cautious one when it is unknown.
fn primary(org: &OrgReport) -> Option<&Assessment> {
    org.assessments
        .iter()
        .find(|a| a.keys_exposed)
        .or_else(|| org.assessments.first())
}

fn json_str(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn json_date(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::Array(parts)) => {
            let n: Vec<i64> = parts.iter().filter_map(serde_json::Value::as_i64).collect();
            match n.as_slice() {
                [y, m, d] => format!("{y:04}-{m:02}-{d:02}"),
                _ => String::new(),
            }
        }
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn obligation_view(v: &serde_json::Value) -> ObligationView {
    let deadline = json_date(v, "deadline");
    ObligationView {
        state: json_str(v, "state"),
        authority: json_str(v, "authority"),
        threshold: json_str(v, "threshold"),
        deadline: if deadline.is_empty() {
            "no fixed date".into()
        } else {
            deadline
        },
        note: json_str(v, "note"),
        hipaa_exempt: v
            .get("hipaa_exempt")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        verified: v
            .get("verified")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    }
}

fn page_from_report(r: &ExposureReport) -> Page {
    let mut p = Page {
        title: "Breach exposure report".into(),
        ..Page::default()
    };
    p.facts = vec![
        (
            "Window (UTC, inclusive)".into(),
            format!("{} \u{2192} {}", r.window.from, r.window.to),
        ),
        ("Basis".into(), basis_text(r.basis).into()),
        ("Scope".into(), r.scope.clone()),
        ("Discovered".into(), r.discovered.clone()),
        (
            "Business associate deadline".into(),
            format!("{} days after discovery (BAA)", r.ba_deadline_days),
        ),
        (
            "State rules table".into(),
            match (&r.state_rules.version, r.state_rules.applied) {
                (Some(v), true) => format!("version {v} (unverified entries are marked)"),
                (Some(v), false) => format!("version {v}, not applied: {}", r.state_rules.note),
                (None, _) => format!("not applied: {}", r.state_rules.note),
            },
        ),
        ("Generated".into(), r.generated_at.clone()),
    ];

    // Deadlines are counted from discovery, so they are the same for every organization that has them.
    let all = || r.organizations.iter().flat_map(|o| o.assessments.iter());
    let first = |f: fn(&Assessment) -> Option<&String>| all().find_map(|a| f(a).cloned());
    if let Some(d) = first(|a| a.deadlines.notify_covered_entity.as_ref()) {
        p.deadlines.push((
            "Business associate \u{2192} each covered entity".into(),
            d,
            format!(
                "discovery + {} days (BAA; HIPAA maximum 60)",
                r.ba_deadline_days
            ),
        ));
    }
    if let Some(d) = first(|a| a.deadlines.individual_notice.as_ref()) {
        p.deadlines.push((
            "Covered entity \u{2192} individuals".into(),
            d,
            "discovery + 60 days at most (164.404)".into(),
        ));
    }
    if let Some(d) = first(|a| a.deadlines.media_notice.as_ref()) {
        p.deadlines.push((
            "Media (a state with more than 500)".into(),
            d,
            "same 60-day limit (164.406)".into(),
        ));
    }
    let mut hhs: BTreeMap<String, HhsRoute> = BTreeMap::new();
    for a in all() {
        if let Some(d) = &a.deadlines.hhs_notice {
            hhs.entry(d.clone()).or_insert(a.hhs_route);
        }
    }
    for (d, route) in hhs {
        let why = match route {
            HhsRoute::WithIndividualNotice => "500 or more: with the individual notices (164.408)",
            HhsRoute::AnnualLog => {
                "fewer than 500: 60 days after the end of the calendar year (164.408)"
            }
            HhsRoute::NotRequired => "not required",
        };
        p.deadlines.push(("HHS".into(), d, why.into()));
    }

    match &r.audit {
        Some(a) => {
            p.audit = Some(a.verified);
            p.audit_line = format!(
                "{} records, head {}; {} file reads in the window, {} by sessions matching the scope.",
                num(u64::try_from(a.records).unwrap_or(0)),
                a.head_hash, a.file_reads_in_window, a.file_reads_matching_scope
            );
        }
        None => {
            p.audit = None;
            p.audit_line =
                "not consulted: the basis is 'present' (every stored version counts, read or not)."
                    .into();
        }
    }
    p.keys_exposed = match r.keys_exposed {
        KeysExposed::Yes => Some(true),
        KeysExposed::No => Some(false),
        KeysExposed::Unknown => None,
    };
    p.safe_harbor = format!(
        "{} {}",
        if r.safe_harbor.all_files_encrypted_at_rest {
            "Every stored file version is encrypted at rest."
        } else {
            "Not every stored file version is encrypted at rest."
        },
        r.safe_harbor.explanation
    );

    let t = &r.totals;
    p.summary = vec![
        ("covered entities".into(), num(t.organizations)),
        ("distinct individuals".into(), num(t.individuals)),
        (
            "individuals with unsecured PHI".into(),
            num(t.individuals_unsecured),
        ),
        (
            "individuals secured (safe harbor)".into(),
            num(t.individuals_secured),
        ),
        ("file versions".into(), num(t.files)),
        (
            "opaque or unscanned files".into(),
            num(t.files_opaque_or_unscanned),
        ),
    ];
    p.notes = r.notes.clone();
    let m = &r.mailing_list;
    p.mailing = if m.built {
        format!(
            "Mailing list built: {} files decrypted, {} unrecoverable (keys destroyed), {} failed; {} individuals with contact details, {} without plaintext.",
            m.files_decrypted, m.files_unrecoverable, m.files_failed, m.individuals_with_contact, m.individuals_without_plaintext
        )
    } else {
        "Mailing list not built (individuals are counted by keyed fingerprint only).".into()
    };

    p.entities = r
        .organizations
        .iter()
        .map(|o| entity_view(o, r.keys_exposed))
        .collect();
    p.footer = format!(
        "Lockbox exposure report, summary.json format {}, generated {}. Counts are de-duplicated per covered entity by keyed fingerprint; each covered entity notifies separately.",
        r.format_version, r.generated_at
    );
    p
}

/// The HHS breach portal's fields in the portal's order; blanks are for the operator.
fn portal_rows(h: &HhsPortal) -> Vec<(String, String)> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "(operator fills in)".into());
    let list = |v: &[String]| {
        if v.is_empty() {
            "(operator fills in)".to_string()
        } else {
            v.join(", ")
        }
    };
    vec![
        ("Covered entity name".into(), h.covered_entity_name.clone()),
        (
            "Covered entity address".into(),
            opt(&h.covered_entity_address),
        ),
        ("Covered entity type".into(), opt(&h.covered_entity_type)),
        (
            "Covered entity contact".into(),
            opt(&h.covered_entity_contact),
        ),
        (
            "Breach occurred at a business associate".into(),
            if h.breach_at_business_associate {
                "yes"
            } else {
                "no"
            }
            .into(),
        ),
        ("Business associate".into(), opt(&h.business_associate_name)),
        (
            "Breach start / end".into(),
            format!("{} / {}", h.breach_start_date, h.breach_end_date),
        ),
        (
            "Discovery start / end".into(),
            format!("{} / {}", h.discovery_start_date, h.discovery_end_date),
        ),
        ("Individuals affected".into(), num(h.individuals_affected)),
        ("Type of breach".into(), h.type_of_breach.clone()),
        (
            "Location of breached information".into(),
            h.location_of_breached_information.clone(),
        ),
        ("Type of PHI".into(), list(&h.type_of_phi)),
        (
            "Safeguards in place before the breach".into(),
            list(&h.safeguards_in_place),
        ),
        ("Actions taken in response".into(), opt(&h.actions_taken)),
    ]
}

fn entity_view(o: &OrgReport, stated: KeysExposed) -> EntityView {
    let a = primary(o);
    let mut e = EntityView {
        name: o.org_name.clone(),
        subtitle: format!(
            "Package directory {} \u{00b7} {} file versions{}",
            o.package_dir,
            o.files.len(),
            if stated == KeysExposed::Unknown && a.is_some() {
                " \u{00b7} key exposure unknown: cards show the view where keys were exposed"
            } else {
                ""
            }
        ),
        individuals: o.individuals,
        ..EntityView::default()
    };
    if let Some(a) = a {
        e.hhs = Some(a.hhs_route);
        e.hhs_route = hhs_text(a.hhs_route, a.deadlines.hhs_notice.as_deref());
        e.media_states = a.media_notice_states.clone();
        e.obligations = a.state_obligations.iter().map(obligation_view).collect();
        let mut notes = BTreeMap::new();
        for v in &a.state_obligations {
            let n = json_str(v, "rule_notes");
            if !n.is_empty() {
                notes.entry(json_str(v, "state")).or_insert(n);
            }
        }
        e.rule_notes = notes.into_iter().collect();
        e.hhs_portal = portal_rows(&a.hhs_portal);
    } else {
        e.hhs_route = "no assessment".into();
    }
    if e.media_states.is_empty() {
        e.media_states = o
            .by_state
            .iter()
            .filter(|(_, c)| c.media_notice_required)
            .map(|(s, _)| s.clone())
            .collect();
    }
    e.media_notice = !e.media_states.is_empty();
    e.assessments = o
        .assessments
        .iter()
        .map(|a| {
            vec![
                view_label(a.keys_exposed).to_string(),
                if a.reportable {
                    "yes".into()
                } else {
                    "no".into()
                },
                num(a.reportable_individuals),
                num(a.secured_individuals),
                hhs_text(a.hhs_route, None),
                a.deadlines
                    .notify_covered_entity
                    .clone()
                    .unwrap_or_else(|| "\u{2014}".into()),
                a.deadlines
                    .individual_notice
                    .clone()
                    .unwrap_or_else(|| "\u{2014}".into()),
            ]
        })
        .collect();

    let mut states: Vec<(String, u64)> = o
        .by_state
        .iter()
        .map(|(s, c)| (s.clone(), c.individuals))
        .collect();
    states.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    if o.state_unknown > 0 {
        states.push(("(unknown state)".into(), o.state_unknown));
    }
    e.by_state = states;
    let mut elements: Vec<(String, u64)> =
        o.by_element.iter().map(|(s, n)| (s.clone(), *n)).collect();
    elements.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    e.by_element = elements;

    e.no_address = o.without_valid_address;
    e.substitute = format!(
        "{} {}",
        substitute_text(o.substitute_notice.path),
        o.substitute_notice.description
    )
    .trim()
    .to_string();
    e.facts = vec![
        (
            "Address unrecoverable (keys destroyed)".into(),
            num(o.address_unrecoverable),
        ),
        ("Deceased (next of kin)".into(), num(o.deceased)),
        (
            "Minors (parent or guardian)".into(),
            o.minors
                .map(num)
                .unwrap_or_else(|| "unknown (mailing list not built)".into()),
        ),
    ];
    for id in &o.opaque_files {
        let (name, why) = match o.files.iter().find(|f| f.file_id == *id) {
            Some(f) => {
                let mut why = f.inventory_status.clone();
                if let Some(r) = &f.inventory_reason {
                    why.push_str(": ");
                    why.push_str(r);
                }
                if let Some(fmt) = &f.format {
                    why.push_str(&format!(" (format {fmt})"));
                }
                why.push_str(&format!("; {} bytes", num(f.size)));
                if f.key_destroyed {
                    why.push_str("; data key destroyed");
                }
                (
                    format!(
                        "{}/{}",
                        f.folder.trim_end_matches('/'),
                        f.path.trim_start_matches('/')
                    ),
                    why,
                )
            }
            None => (format!("file #{id}"), "not classified".into()),
        };
        e.opaque.push((name, why));
    }
    e
}

// ---------------------------------------------------------------------------------------------
// View model: plain strings and numbers, filled from the report, rendered below. Every string that
// reaches the page goes through `esc` at the point of output.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Page {
    title: String,
    /// Label/value pairs shown under the title (window, basis, discovery, rules version...).
    facts: Vec<(String, String)>,
    /// Label/date/notes of the main deadlines.
    deadlines: Vec<(String, String, String)>,
    /// `None`: the audit log was not consulted.
    audit: Option<bool>,
    audit_line: String,
    /// `None`: unknown, both views reported.
    keys_exposed: Option<bool>,
    safe_harbor: String,
    summary: Vec<(String, String)>,
    notes: Vec<String>,
    mailing: String,
    entities: Vec<EntityView>,
    footer: String,
}

#[derive(Debug, Default)]
struct EntityView {
    name: String,
    subtitle: String,
    individuals: u64,
    hhs: Option<HhsRoute>,
    hhs_route: String,
    media_notice: bool,
    media_states: Vec<String>,
    facts: Vec<(String, String)>,
    by_state: Vec<(String, u64)>,
    by_element: Vec<(String, u64)>,
    no_address: u64,
    substitute: String,
    opaque: Vec<(String, String)>,
    obligations: Vec<ObligationView>,
    rule_notes: Vec<(String, String)>,
    /// One row per safe-harbor view.
    assessments: Vec<Vec<String>>,
    hhs_portal: Vec<(String, String)>,
}

#[derive(Debug, Default)]
struct ObligationView {
    state: String,
    authority: String,
    threshold: String,
    deadline: String,
    note: String,
    hipaa_exempt: bool,
    verified: bool,
}

/// Escape text for HTML element content and quoted attribute values (also valid in SVG).
pub fn escape(s: &str) -> String {
    esc(s)
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (other than tab/newline) have no business on the page.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// 1234567 -> "1,234,567".
fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const CSS: &str = r#"
:root { --ink:#1b2430; --muted:#5b6675; --line:#d5dbe3; --band:#f4f6f9; --accent:#1f5fa8; --bad:#b42318; --badbg:#fdecea; --warn:#8a5a00; --warnbg:#fff4d6; --ok:#17663a; --okbg:#e6f4ea; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; padding: 28px 36px 48px; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", sans-serif; color: var(--ink); background: #fff; max-width: 1200px; }
h1 { font-size: 24px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 0 0 2px; }
h3 { font-size: 14px; margin: 18px 0 6px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
p { margin: 6px 0; }
.sub { color: var(--muted); margin-bottom: 14px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 10px 0 14px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.callout { border-left: 4px solid var(--line); background: var(--band); padding: 8px 12px; margin: 8px 0; border-radius: 3px; }
.callout.ok { border-color: var(--ok); background: var(--okbg); }
.callout.bad { border-color: var(--bad); background: var(--badbg); }
.callout.warn { border-color: #d4a017; background: var(--warnbg); }
.callout ul { margin: 4px 0 0; padding-left: 20px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 150px; }
.card .v { font-size: 22px; font-weight: 700; }
.card .l { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; overflow-wrap: anywhere; }
table.narrow { width: auto; min-width: 320px; }
.badge { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 11px; font-weight: 700; line-height: 18px; white-space: nowrap; }
.badge.bad { background: var(--badbg); color: var(--bad); }
.badge.warn { background: var(--warnbg); color: var(--warn); }
.badge.ok { background: var(--okbg); color: var(--ok); }
.badge.info { background: #e8f0fb; color: var(--accent); }
section.entity { border-top: 3px solid var(--accent); margin-top: 28px; padding-top: 12px; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 22px; }
.chart { margin: 4px 0 8px; }
.chart svg { display: block; max-width: 100%; height: auto; }
.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 30px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@page { size: letter; margin: 14mm 12mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 11.5px; }
  section.entity { break-before: page; page-break-before: always; margin-top: 0; }
  table, .chart, .callout, .cards { break-inside: avoid; page-break-inside: avoid; }
  tr { break-inside: avoid; }
  thead { display: table-header-group; }
}
"#;

fn facts_dl(out: &mut String, facts: &[(String, String)]) {
    if facts.is_empty() {
        return;
    }
    out.push_str("<dl class=\"facts\">");
    for (k, v) in facts {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(v)));
    }
    out.push_str("</dl>\n");
}

/// Horizontal bar chart as inline SVG (no scripts, no external resources).
fn bar_chart(out: &mut String, title: &str, rows: &[(String, u64)], highlight_over: Option<u64>) {
    if rows.is_empty() {
        return;
    }
    let label_w: u32 = 170;
    let bar_w: u32 = 330;
    let value_w: u32 = 80;
    let row_h: u32 = 20;
    let width = label_w + bar_w + value_w;
    let height = row_h * u32::try_from(rows.len()).unwrap_or(u32::MAX / 64) + 6;
    let max = rows.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    out.push_str(&format!(
        "<div class=\"chart\"><svg width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">",
        esc(title)
    ));
    for (i, (label, value)) in rows.iter().enumerate() {
        let y = u32::try_from(i).unwrap_or(0) * row_h + 3;
        // Integer scaling; a non-zero value always gets a visible sliver.
        let len = (u128::from(*value) * u128::from(bar_w) / u128::from(max)) as u32;
        let len = if *value > 0 { len.max(2) } else { 0 };
        let hot = highlight_over.is_some_and(|t| *value > t);
        let fill = if hot { "#c0392b" } else { "#3b7dd8" };
        let short: String = if label.chars().count() > 26 {
            label.chars().take(25).collect::<String>() + "\u{2026}"
        } else {
            label.clone()
        };
        out.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\" font-size=\"12\" fill=\"#1b2430\">{}</text>\
             <rect x=\"{bx}\" y=\"{y}\" width=\"{len}\" height=\"{bh}\" rx=\"2\" fill=\"{fill}\"><title>{}: {}</title></rect>\
             <text x=\"{vx}\" y=\"{ty}\" font-size=\"12\" fill=\"#5b6675\">{}</text>",
            esc(&short),
            esc(label),
            esc(&num(*value)),
            esc(&num(*value)),
            lx = label_w - 8,
            ty = y + 12,
            bx = label_w,
            bh = row_h - 6,
            vx = label_w + len + 6,
        ));
    }
    out.push_str("</svg></div>\n");
}

fn render_page(p: &Page) -> String {
    let mut o = String::with_capacity(32 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    o.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    o.push_str(&format!(
        "<title>{}</title>\n<style>{CSS}</style></head><body>\n",
        esc(&p.title)
    ));
    o.push_str(&format!("<header><h1>{}</h1>\n", esc(&p.title)));
    facts_dl(&mut o, &p.facts);

    let (cls, badge) = match p.audit {
        Some(true) => ("ok", "<span class=\"badge ok\">VERIFIED</span>"),
        Some(false) => ("bad", "<span class=\"badge bad\">NOT VERIFIED</span>"),
        None => ("", "<span class=\"badge info\">NOT USED</span>"),
    };
    o.push_str(&format!(
        "<div class=\"callout {cls}\"><strong>Audit chain:</strong> {badge} {}</div>\n",
        esc(&p.audit_line)
    ));
    let (cls, badge) = match p.keys_exposed {
        Some(true) => (
            "bad",
            "<span class=\"badge bad\">KEYS EXPOSED: PHI UNSECURED</span>",
        ),
        Some(false) => (
            "ok",
            "<span class=\"badge ok\">KEYS NOT EXPOSED: PHI SECURED</span>",
        ),
        None => (
            "warn",
            "<span class=\"badge warn\">KEY EXPOSURE UNKNOWN: BOTH VIEWS</span>",
        ),
    };
    o.push_str(&format!(
        "<div class=\"callout {cls}\"><strong>Encryption safe harbor:</strong> {badge} {}</div>\n",
        esc(&p.safe_harbor)
    ));
    o.push_str("</header>\n");

    if !p.deadlines.is_empty() {
        o.push_str("<h3>Deadlines</h3><table class=\"narrow\"><thead><tr><th>Notice</th><th>Due by</th><th>Basis</th></tr></thead><tbody>");
        for (k, d, n) in &p.deadlines {
            o.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\"><strong>{}</strong></td><td>{}</td></tr>",
                esc(k),
                esc(d),
                esc(n)
            ));
        }
        o.push_str("</tbody></table>\n");
    }

    o.push_str("<h3>Summary</h3><div class=\"cards\">");
    for (k, v) in &p.summary {
        o.push_str(&format!(
            "<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">{}</div></div>",
            esc(v),
            esc(k)
        ));
    }
    o.push_str("</div>\n");
    o.push_str(&format!("<p>{}</p>\n", esc(&p.mailing)));
    if !p.notes.is_empty() {
        o.push_str("<div class=\"callout warn\"><strong>Caveats</strong><ul>");
        for n in &p.notes {
            o.push_str(&format!("<li>{}</li>", esc(n)));
        }
        o.push_str("</ul></div>\n");
    }
    if !p.entities.is_empty() {
        o.push_str("<table><thead><tr><th>Covered entity</th><th class=\"n\">Individuals</th><th>HHS</th><th>Media notice</th><th class=\"n\">No valid address</th><th class=\"n\">Opaque files</th></tr></thead><tbody>");
        for e in &p.entities {
            o.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&e.name),
                esc(&num(e.individuals)),
                esc(&e.hhs_route),
                if e.media_notice { "<span class=\"badge bad\">REQUIRED</span>" } else { "no" },
                esc(&num(e.no_address)),
                esc(&num(u64::try_from(e.opaque.len()).unwrap_or(u64::MAX))),
            ));
        }
        o.push_str("</tbody></table>\n");
    } else {
        o.push_str(
            "<p class=\"empty\">No covered entity has affected individuals in this window.</p>\n",
        );
    }

    for e in &p.entities {
        render_entity(&mut o, e);
    }
    o.push_str(&format!(
        "<footer>{}</footer>\n</body></html>\n",
        esc(&p.footer)
    ));
    o
}

fn render_entity(o: &mut String, e: &EntityView) {
    o.push_str(&format!(
        "<section class=\"entity\"><h2>{}</h2>",
        esc(&e.name)
    ));
    if !e.subtitle.is_empty() {
        o.push_str(&format!("<div class=\"sub\">{}</div>", esc(&e.subtitle)));
    }
    o.push_str("<div class=\"cards\">");
    o.push_str(&format!("<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">distinct individuals</div></div>", esc(&num(e.individuals))));
    o.push_str(&format!(
        "<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">HHS notice</div></div>",
        match e.hhs {
            Some(HhsRoute::WithIndividualNotice) =>
                "<span class=\"badge bad\">WITH INDIVIDUALS</span>",
            Some(HhsRoute::AnnualLog) => "<span class=\"badge warn\">ANNUAL LOG</span>",
            Some(HhsRoute::NotRequired) => "<span class=\"badge ok\">NOT REQUIRED</span>",
            None => "<span class=\"badge info\">N/A</span>",
        }
    ));
    o.push_str(&format!(
        "<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">media notice (&gt;500 in a state)</div></div>",
        if e.media_notice { "<span class=\"badge bad\">REQUIRED</span>" } else { "<span class=\"badge ok\">NOT REQUIRED</span>" }
    ));
    o.push_str(&format!("<div class=\"card\"><div class=\"v\">{}</div><div class=\"l\">without valid mailing address</div></div>", esc(&num(e.no_address))));
    o.push_str("</div>\n");
    let mut facts = vec![("HHS route".to_string(), e.hhs_route.clone())];
    if e.media_notice {
        facts.push(("Media notice states".to_string(), e.media_states.join(", ")));
    }
    facts.extend(e.facts.iter().cloned());
    facts_dl(o, &facts);

    o.push_str("<div class=\"grid2\"><div>");
    o.push_str("<h3>Individuals per state</h3>");
    if e.by_state.is_empty() {
        o.push_str("<p class=\"empty\">No state recorded.</p>");
    } else {
        bar_chart(o, "Individuals per state", &e.by_state, Some(500));
        o.push_str("<table><thead><tr><th>State</th><th class=\"n\">Individuals</th><th>&gt; 500 (media notice)</th></tr></thead><tbody>");
        for (s, n) in &e.by_state {
            let flag = if *n > 500 {
                "<span class=\"badge bad\">&gt; 500</span>"
            } else {
                ""
            };
            o.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{flag}</td></tr>",
                esc(s),
                esc(&num(*n))
            ));
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</div><div>");
    o.push_str("<h3>Individuals per data element</h3>");
    if e.by_element.is_empty() {
        o.push_str("<p class=\"empty\">No data element recorded.</p>");
    } else {
        bar_chart(o, "Individuals per data element", &e.by_element, None);
        o.push_str("<table><thead><tr><th>Data element</th><th class=\"n\">Individuals</th></tr></thead><tbody>");
        for (s, n) in &e.by_element {
            o.push_str(&format!(
                "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(s),
                esc(&num(*n))
            ));
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("</div></div>\n");

    if !e.assessments.is_empty() {
        o.push_str("<h3>Safe-harbor assessment</h3><table><thead><tr><th>View</th><th>Reportable</th><th class=\"n\">Reportable individuals</th><th class=\"n\">Secured</th><th>HHS</th><th>Notify CE by</th><th>Individuals by</th></tr></thead><tbody>");
        for row in &e.assessments {
            o.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let cls = if (2..=3).contains(&i) || i >= 5 {
                    " class=\"n\""
                } else {
                    ""
                };
                o.push_str(&format!("<td{cls}>{}</td>", esc(cell)));
            }
            o.push_str("</tr>");
        }
        o.push_str("</tbody></table>\n");
    }

    o.push_str("<h3>Substitute notice</h3>");
    let cls = if e.no_address >= 10 { "warn" } else { "" };
    o.push_str(&format!(
        "<div class=\"callout {cls}\"><strong>{}</strong> individual(s) without a valid mailing address. {}</div>\n",
        esc(&num(e.no_address)),
        esc(&e.substitute)
    ));

    o.push_str("<h3>Opaque files that may hold PHI</h3>");
    if e.opaque.is_empty() {
        o.push_str("<p class=\"empty\">None: every exposed file was parsed.</p>\n");
    } else {
        o.push_str("<table><thead><tr><th>File</th><th>Why it is listed</th></tr></thead><tbody>");
        for (f, why) in &e.opaque {
            o.push_str(&format!(
                "<tr><td class=\"code\">{}</td><td>{}</td></tr>",
                esc(f),
                esc(why)
            ));
        }
        o.push_str("</tbody></table>\n");
    }

    o.push_str("<h3>State obligations</h3>");
    if e.obligations.is_empty() {
        o.push_str("<p class=\"empty\">No state obligations computed.</p>\n");
    } else {
        o.push_str("<table><thead><tr><th>State</th><th>Notify</th><th>Trigger</th><th>Due by</th><th>Status</th><th>Note</th></tr></thead><tbody>");
        for ob in &e.obligations {
            let mut status = String::new();
            if ob.verified {
                status.push_str("<span class=\"badge ok\">verified</span> ");
            } else {
                status.push_str("<span class=\"badge warn\">unverified</span> ");
            }
            if ob.hipaa_exempt {
                status.push_str("<span class=\"badge info\">HIPAA-exempt?</span>");
            }
            o.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{status}</td><td>{}</td></tr>",
                esc(&ob.state),
                esc(&ob.authority),
                esc(&ob.threshold),
                esc(&ob.deadline),
                esc(&ob.note)
            ));
        }
        o.push_str("</tbody></table>\n");
        if !e.rule_notes.is_empty() {
            o.push_str("<table><thead><tr><th>State</th><th>Rules table note (confirm with counsel)</th></tr></thead><tbody>");
            for (s, n) in &e.rule_notes {
                o.push_str(&format!("<tr><td>{}</td><td>{}</td></tr>", esc(s), esc(n)));
            }
            o.push_str("</tbody></table>\n");
        }
    }
    if !e.hhs_portal.is_empty() {
        o.push_str("<h3>HHS breach portal fields</h3><table><tbody>");
        for (k, v) in &e.hhs_portal {
            o.push_str(&format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(v)));
        }
        o.push_str("</tbody></table>\n");
    }
    o.push_str("</section>\n");
}
