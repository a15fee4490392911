//! CSV lines for the exports (serial batches, the audit log), as spreadsheets read them safely.

/// One CSV line (RFC 4180 quoting, CRLF). A field a spreadsheet would run as a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading apostrophe and
/// quotes, so it stays text: an e-mail address typed at the sign-in form lands in the audit log's
/// export, and must not become a formula on an administrator's machine.
pub(crate) fn line<S: AsRef<str>>(fields: &[S]) -> String {
    let mut out = fields
        .iter()
        .map(|f| {
            let f = f.as_ref();
            if f.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("\"'{}\"", f.replace('"', "\"\""))
            } else if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_needs_quoting() {
        assert_eq!(line(&["a", "b c"]), "a,b c\r\n");
        assert_eq!(
            line(&["x,y", "say \"hi\""]),
            "\"x,y\",\"say \"\"hi\"\"\"\r\n"
        );
    }

    #[test]
    fn formulas_stay_text() {
        assert_eq!(line(&["=1+1", "-x"]), "\"'=1+1\",\"'-x\"\r\n");
        assert_eq!(
            line(&["=HYPERLINK(\"http://evil\")"]),
            "\"'=HYPERLINK(\"\"http://evil\"\")\"\r\n"
        );
        assert_eq!(
            line(&["@SUM(A1)", "+1", "\tx"]),
            "\"'@SUM(A1)\",\"'+1\",\"'\tx\"\r\n"
        );
    }
}
