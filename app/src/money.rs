//! Money is integer cents with a currency; this module only formats it for people.

/// Formats integer cents as a currency amount with thousands separators,
/// e.g. `format_cents(123_456_78, "USD") == "$123,456.78"`.
pub fn format_cents(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let whole = group_thousands(abs / 100);
    let frac = abs % 100;
    match currency {
        "USD" => format!("{sign}${whole}.{frac:02}"),
        "EUR" => format!("{sign}€{whole}.{frac:02}"),
        other => format!("{sign}{whole}.{frac:02} {other}"),
    }
}

/// Groups an integer's digits by thousands: `1234567` → `"1,234,567"`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_usd_with_separators_and_two_decimals() {
        assert_eq!(format_cents(0, "USD"), "$0.00");
        assert_eq!(format_cents(5, "USD"), "$0.05");
        assert_eq!(format_cents(249, "USD"), "$2.49");
        assert_eq!(format_cents(12_345_678, "USD"), "$123,456.78");
        assert_eq!(format_cents(-100_000, "USD"), "-$1,000.00");
    }

    #[test]
    fn unknown_currencies_keep_their_code() {
        assert_eq!(format_cents(1_000_050, "CHF"), "10,000.50 CHF");
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(u64::MAX), "18,446,744,073,709,551,615");
    }
}
