//! Exact money: amounts in billionths of a currency unit, unit prices in
//! trillionths, and currency codes. Pure, so the rules are tested natively.
//!
//! Amounts travel as JSON strings of decimals (`"12.345"`), never as JSON
//! numbers: a number would pass through a float somewhere on its way, and a
//! float cannot hold 0.1. The grammar is a JSON number's without exponent:
//! an optional `-`, the whole part (`0` or digits not starting with `0`),
//! and an optional `.` followed by 1 to 9 fraction digits (12 for a unit
//! price). An amount may be negative (a refund or a credit); a unit price
//! may not. Every sum is checked: an amount beyond `i64` billionths
//! (about 9.2 billion units of the currency) is refused, never wrapped.

use std::fmt;

/// Billionths in one unit of a currency.
pub const NANOS_PER_UNIT: i64 = 1_000_000_000;
/// Trillionths of a currency unit in one billionth.
const PICOS_PER_NANO: i128 = 1_000;

/// Why a decimal string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalError {
    /// Not a plain decimal (`1e3`, `+1`, `.5`, `01`, `1.`, `1,5`, …).
    Malformed,
    /// More fraction digits than the type holds.
    TooPrecise {
        /// The most fraction digits allowed.
        max: usize,
    },
    /// Too large for the type.
    OutOfRange,
    /// Negative where only zero or more is allowed.
    Negative,
}

impl DecimalError {
    /// A stable code for a field error.
    pub fn code(self) -> &'static str {
        match self {
            DecimalError::Malformed => "invalid_decimal",
            DecimalError::TooPrecise { .. } => "too_precise",
            DecimalError::OutOfRange => "out_of_range",
            DecimalError::Negative => "negative",
        }
    }

    /// What a client should send instead, naming the field.
    pub fn message(self, field: &str) -> String {
        match self {
            DecimalError::Malformed => format!(
                "{field} must be a decimal string such as \"12.30\" (no exponent, no sign but -, not a JSON number)"
            ),
            DecimalError::TooPrecise { max } => {
                format!("{field} may have at most {max} digits after the point")
            }
            DecimalError::OutOfRange => format!("{field} is too large"),
            DecimalError::Negative => format!("{field} must not be negative"),
        }
    }
}

/// A decimal read as an integer count of `10^-scale` units.
fn read_scaled(text: &str, scale: usize, signed: bool) -> Result<i64, DecimalError> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !plain(whole)
        || (whole.len() > 1 && whole.starts_with('0'))
        || fraction.is_some_and(|f| !plain(f))
    {
        return Err(DecimalError::Malformed);
    }
    let fraction = fraction.unwrap_or_default();
    if fraction.len() > scale {
        return Err(DecimalError::TooPrecise { max: scale });
    }
    if negative && !signed {
        return Err(DecimalError::Negative);
    }
    // Every digit is 0-9 and a whole part past 19 digits overflows below,
    // so no digit string is too long to fold.
    let mut value: i64 = 0;
    let padded = fraction.bytes().chain(std::iter::repeat(b'0')).take(scale);
    for digit in whole.bytes().chain(padded) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(digit - b'0')))
            .ok_or(DecimalError::OutOfRange)?;
    }
    Ok(if negative { -value } else { value })
}

/// `value` counted in `10^-scale` units as a decimal string: trailing
/// zeros dropped, at least two fraction digits kept (`12.30`, `0.000002`).
fn format_scaled(value: i128, scale: u32) -> String {
    let one = 10_i128.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let one = one.unsigned_abs();
    let whole = magnitude / one;
    let fraction = format!("{:0width$}", magnitude % one, width = scale as usize);
    let kept = fraction.trim_end_matches('0').len().max(2);
    format!("{sign}{whole}.{}", &fraction[..kept])
}

/// An exact amount of some currency, in billionths (10^-9) of its unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

impl Amount {
    /// Nothing.
    pub const ZERO: Amount = Amount(0);
    /// The largest amount: about 9.2 billion units of the currency.
    pub const MAX: Amount = Amount(i64::MAX);
    /// The most fraction digits an amount has.
    pub const FRACTION_DIGITS: usize = 9;

    /// The amount of `nanos` billionths.
    pub const fn from_nanos(nanos: i64) -> Amount {
        Amount(nanos)
    }

    /// Its billionths.
    pub const fn nanos(self) -> i64 {
        self.0
    }

    /// A decimal string (`"12.345"`, `"-0.5"`), or why it is not one.
    pub fn read(text: &str) -> Result<Amount, DecimalError> {
        read_scaled(text, Self::FRACTION_DIGITS, true).map(Amount)
    }

    /// A decimal string that is zero or more.
    pub fn read_non_negative(text: &str) -> Result<Amount, DecimalError> {
        read_scaled(text, Self::FRACTION_DIGITS, false).map(Amount)
    }

    /// A decimal string, if it is one.
    pub fn parse(text: &str) -> Option<Amount> {
        Amount::read(text).ok()
    }

    /// The amount of `picos` trillionths rounded to billionths, half away
    /// from zero (half-up for what prices produce, which is never
    /// negative); none beyond the range of an amount.
    pub fn from_picos_rounded(picos: i128) -> Option<Amount> {
        let whole = picos / PICOS_PER_NANO;
        let rest = picos % PICOS_PER_NANO;
        let rounded = if rest.abs() * 2 >= PICOS_PER_NANO {
            whole + picos.signum()
        } else {
            whole
        };
        i64::try_from(rounded).ok().map(Amount)
    }
}

impl fmt::Display for Amount {
    /// The canonical decimal: `12.30`, `0.000000001`, `-5.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_nanos(i128::from(self.0)))
    }
}

impl serde::Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A sum of billionths that may pass the range of one [`Amount`] (a total
/// over many records) as the canonical decimal string.
pub fn format_nanos(nanos: i128) -> String {
    format_scaled(nanos, 9)
}

/// The price of one unit of a meter: zero or more, in trillionths (10^-12)
/// of the currency's unit, so prices of fractions of a billionth per unit
/// (a token at 0.0000000015) are exact. At most about 9.2 million per unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitPrice(i64);

impl UnitPrice {
    /// The most fraction digits a unit price has.
    pub const FRACTION_DIGITS: usize = 12;

    /// Its trillionths.
    pub const fn picos(self) -> i64 {
        self.0
    }

    /// A decimal string of zero or more, or why it is not one.
    pub fn read(text: &str) -> Result<UnitPrice, DecimalError> {
        read_scaled(text, Self::FRACTION_DIGITS, false).map(UnitPrice)
    }

    /// What `units` cost in trillionths, exactly: i64 × i64 always fits.
    pub fn picos_for(self, units: i64) -> i128 {
        i128::from(self.0) * i128::from(units)
    }

    /// What `units` cost, rounded half-up to billionths; none past the
    /// range of an amount.
    pub fn checked_cost(self, units: i64) -> Option<Amount> {
        Amount::from_picos_rounded(self.picos_for(units))
    }
}

impl fmt::Display for UnitPrice {
    /// The canonical decimal: `0.000002`, `1.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_scaled(i128::from(self.0), 12))
    }
}

impl serde::Serialize for UnitPrice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A currency code shaped as ISO 4217's: three upper-case ASCII letters
/// (`USD`, `EUR`). Whether the code is assigned is not checked: codes
/// come and go, and an org may count its own unit (`XTS`, credits).
pub fn valid_currency(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str) -> Amount {
        Amount::parse(text).unwrap()
    }

    #[test]
    fn decimals_read_exactly_and_print_canonically() {
        assert_eq!(amount("12.345").nanos(), 12_345_000_000);
        assert_eq!(amount("0.000000001").nanos(), 1);
        assert_eq!(amount("-0.5").nanos(), -500_000_000);
        assert_eq!(amount("7").to_string(), "7.00");
        assert_eq!(amount("12.3").to_string(), "12.30");
        assert_eq!(amount("12.345000").to_string(), "12.345");
        assert_eq!(amount("0.000000001").to_string(), "0.000000001");
        assert_eq!(amount("-0.5").to_string(), "-0.50");
        assert_eq!(amount("-0").to_string(), "0.00");
        assert_eq!(Amount::ZERO.to_string(), "0.00");
    }

    #[test]
    fn a_tenth_and_two_tenths_are_three_tenths() {
        let sum = Amount::from_nanos(amount("0.1").nanos() + amount("0.2").nanos());
        assert_eq!(sum, amount("0.3"));
        assert_eq!(sum.to_string(), "0.30");
    }

    #[test]
    fn the_largest_amount_reads_and_one_billionth_more_does_not() {
        assert_eq!(amount("9223372036.854775807"), Amount::MAX);
        assert_eq!(
            Amount::read("9223372036.854775808"),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(
            Amount::read("99999999999999999999999"),
            Err(DecimalError::OutOfRange)
        );
        assert_eq!(Amount::MAX.to_string(), "9223372036.854775807");
        assert_eq!(
            format_nanos(i128::from(i64::MAX) * 4),
            "36893488147.419103228"
        );
    }

    #[test]
    fn anything_but_a_plain_decimal_is_refused() {
        for bad in [
            "", "-", ".5", "5.", "1e3", "1E3", "+1", "01", "-01.5", "1,5", " 1", "1 ", "0x10",
            "NaN", "1.2.3", "--1", "١",
        ] {
            assert_eq!(Amount::read(bad), Err(DecimalError::Malformed), "{bad:?}");
        }
        assert_eq!(
            Amount::read("0.0000000001"),
            Err(DecimalError::TooPrecise { max: 9 })
        );
        assert_eq!(Amount::read_non_negative("-1"), Err(DecimalError::Negative));
        assert!(DecimalError::Malformed.message("amount").contains("amount"));
    }

    #[test]
    fn a_unit_price_holds_twelve_digits_and_rounds_costs_half_up() {
        let price = |text| UnitPrice::read(text).unwrap();
        let token = price("0.0000000015");
        assert_eq!(token.picos(), 1_500);
        assert_eq!(token.to_string(), "0.0000000015");
        // 1.5 billionths rounds up to 2; 3 billionths is exact.
        assert_eq!(token.checked_cost(1), Some(Amount::from_nanos(2)));
        assert_eq!(token.checked_cost(2), Some(Amount::from_nanos(3)));
        // 1.499 billionths rounds down.
        assert_eq!(
            price("0.000000001499").checked_cost(1),
            Some(Amount::from_nanos(1))
        );
        assert_eq!(price("0.000002").checked_cost(1_000_000), Some(amount("2")));
        assert_eq!(price("1").to_string(), "1.00");
        assert_eq!(
            UnitPrice::read("0.0000000000001"),
            Err(DecimalError::TooPrecise { max: 12 })
        );
        assert_eq!(UnitPrice::read("-1"), Err(DecimalError::Negative));
    }

    #[test]
    fn a_cost_past_the_largest_amount_is_caught() {
        let dear = UnitPrice::read("1000").unwrap();
        assert_eq!(dear.checked_cost(i64::MAX), None);
        assert_eq!(dear.checked_cost(1_000).unwrap().to_string(), "1000000.00");
    }

    #[test]
    fn rounding_to_billionths_is_half_away_from_zero() {
        assert_eq!(Amount::from_picos_rounded(500), Some(Amount::from_nanos(1)));
        assert_eq!(Amount::from_picos_rounded(499), Some(Amount::ZERO));
        assert_eq!(
            Amount::from_picos_rounded(-500),
            Some(Amount::from_nanos(-1))
        );
        assert_eq!(Amount::from_picos_rounded(i128::MAX), None);
    }

    #[test]
    fn currencies_are_three_upper_case_letters() {
        assert!(valid_currency("USD") && valid_currency("XTS"));
        for bad in ["usd", "US", "USDT", "U5D", "", "ÜSD"] {
            assert!(!valid_currency(bad), "{bad}");
        }
    }
}
