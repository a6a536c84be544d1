//! The fast path of [`super::parse_post`]: one forward pass over the post that decodes the
//! fields of [`PostView`] and skips everything else, checking as it goes that the skipped
//! bytes are JSON.
//!
//! Why by hand rather than a crate: a post is mostly fields matching never reads (the
//! author's profile colours and image URLs, counts, edit history), and serde's generic
//! skipping walks each of them value by value, while this pass jumps over string contents
//! sixteen bytes at a time and never allocates for a string without escapes. On realistic
//! posts it takes half of serde_json's instructions, where sonic-rs and simd-json driven
//! through the same derive take as many (`docs/performance.md`, "Post parse").
//!
//! Exactness comes from a narrow contract: [`parse`] either returns exactly the view that
//! serde_json's derived deserializer builds from the same text, or [`Bail`]. It bails on
//! everything outside the plain shape of real posts (escaped keys, a field given twice, a
//! field of an unexpected JSON type, numbers it would have to convert the way serde does,
//! lone surrogates, nesting deeper than [`MAX_DEPTH`], any syntax error), and the caller
//! then runs serde_json, whose answer (value or error text) stands. Inputs that bail cost
//! both passes; real posts do not bail. The differential tests in `super::differential` hold the
//! two paths to the same answer.

use std::borrow::Cow;

use super::{
    Derived, Entities, ExtendedTweet, Media, Mention, Place, Point, Polygon, PostView,
    ProfileLocation, Scopes, TextEntity, Unwound, UrlEntity, User,
};

/// The input is outside what the fast path decides; serde_json must read it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Bail;

type Scan<T> = Result<T, Bail>;

/// Deepest nesting of objects and arrays the fast path reads. serde_json refuses more than
/// 128 levels of the values it builds; staying well under that, anything deeper bails and
/// serde_json answers.
const MAX_DEPTH: u32 = 64;

/// Reads a whole post from valid UTF-8 `text`: the view serde_json would build, or [`Bail`].
pub(super) fn parse(text: &str) -> Scan<PostView<'_>> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    scanner.whitespace();
    let mut post = PostView::default();
    scanner.required(|s| s.post(&mut post))?;
    scanner.whitespace();
    if scanner.pos != scanner.bytes.len() {
        return Err(Bail);
    }
    Ok(post)
}

/// Marks the fields of one object already read: serde's derived deserializers refuse a
/// field given twice, so the fast path bails on it.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    #[inline]
    fn first(&mut self, bit: u32) -> Scan<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return Err(Bail);
        }
        self.0 |= mask;
        Ok(())
    }
}

/// A cursor over the post's bytes.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: u32,
}

/// The bytes that end a run of plain string content: `"`, `\` and the control characters
/// (which JSON forbids raw in strings, so serde_json refuses them).
#[inline]
fn is_string_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// The offset of the first byte at or after `from` that [`is_string_special`] accepts,
/// and that byte (`None` at the end of the input). Sixteen bytes at a time with SSE2 where
/// it exists (every x86-64), else eight at a time with word arithmetic; the last few bytes
/// one by one.
#[inline(always)]
fn find_string_special(bytes: &[u8], mut from: usize) -> (usize, Option<u8>) {
    #[cfg(target_arch = "x86_64")]
    while from + 16 <= bytes.len() {
        let (quotes, others) = sse2_specials(bytes, from);
        let any = quotes | others;
        if any != 0 {
            let at = any.trailing_zeros();
            // The usual end, a closing quote, is known from the mask without reading it.
            let special = if quotes >> at & 1 == 1 {
                b'"'
            } else {
                bytes[from + at as usize]
            };
            return (from + at as usize, Some(special));
        }
        from += 16;
    }
    // Word arithmetic: a word's special bytes are found with the classic "has zero byte"
    // and "has byte less than" tricks, whose lowest flagged byte is always exact (false
    // flags only appear above a true one, through borrows).
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    while let Some(chunk) = bytes.get(from..from + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let flags = flags & HIGHS;
        if flags != 0 {
            let at = from + (flags.trailing_zeros() / 8) as usize;
            return (at, Some(bytes[at]));
        }
        from += 8;
    }
    while let Some(&b) = bytes.get(from) {
        if is_string_special(b) {
            return (from, Some(b));
        }
        from += 1;
    }
    (from, None)
}

/// Bit masks of the quotes and of the other special bytes (`\\`, control characters) among
/// the sixteen bytes at `from`, which must be in bounds.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sse2_specials(bytes: &[u8], from: usize) -> (u32, u32) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    assert!(from + 16 <= bytes.len());
    // SAFETY: SSE2 is part of the x86-64 baseline, so these intrinsics are always
    // available; the unaligned load reads `bytes[from..from + 16]`, in bounds by the assert
    // (which the callers' loop conditions let the compiler drop).
    unsafe {
        let block = _mm_loadu_si128(bytes.as_ptr().add(from).cast());
        let quote = _mm_cmpeq_epi8(block, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(block, _mm_set1_epi8(b'\\' as i8));
        // A byte is at most 0x1F exactly when max(byte, 0x1F) is 0x1F (unsigned).
        let limit = _mm_set1_epi8(0x1F);
        let control = _mm_cmpeq_epi8(_mm_max_epu8(block, limit), limit);
        (
            _mm_movemask_epi8(quote) as u32,
            _mm_movemask_epi8(_mm_or_si128(backslash, control)) as u32,
        )
    }
}

/// The value of four hex digits, as serde_json reads a `\u` escape.
#[inline]
fn hex4(digits: Option<&[u8]>) -> Scan<u32> {
    let digits = digits.ok_or(Bail)?;
    let mut value = 0;
    for &d in digits {
        let nibble = (d as char).to_digit(16).ok_or(Bail)?;
        value = value * 16 + nibble;
    }
    Ok(value)
}

/// How many ASCII digits `bytes` starts with, and their value (exact for up to nineteen
/// digits, wrapped beyond). Eight at a time: a word is all digits when neither subtracting
/// `'0'` nor adding `0x46` sets a byte's top bit (the lowest flagged byte is always the
/// first non-digit), and eight digits combine into a number with three multiplications.
#[inline(always)]
pub(super) fn leading_digits(bytes: &[u8]) -> (usize, u64) {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    let mut len = 0;
    let mut value: u64 = 0;
    while let Some(chunk) = bytes.get(len..len + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let digits = word.wrapping_sub(ONES * u64::from(b'0'));
        let flags = (digits | word.wrapping_add(ONES * 0x46)) & HIGHS;
        // Digits before the first non-digit (the first is in the lowest byte).
        let n = (flags.trailing_zeros() / 8) as usize;
        if n > 0 {
            // Shifting up brings in zero bytes as leading zeros.
            let shifted = if n == 8 {
                digits
            } else {
                digits << (8 * (8 - n))
            };
            value = value
                .wrapping_mul(POW10[n])
                .wrapping_add(eight_digits(shifted));
            len += n;
        }
        if n < 8 {
            return (len, value);
        }
    }
    while let Some(&b) = bytes.get(len) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(digit));
        len += 1;
    }
    (len, value)
}

/// How many ASCII digits `bytes` starts with, eight at a time as in [`leading_digits`].
#[inline(always)]
pub(super) fn count_digits(bytes: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    let mut len = 0;
    while let Some(chunk) = bytes.get(len..len + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let flags =
            (word.wrapping_sub(ONES * u64::from(b'0')) | word.wrapping_add(ONES * 0x46)) & HIGHS;
        if flags != 0 {
            return len + (flags.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    len + bytes[len..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count()
}

/// Powers of ten up to 10^8.
const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// The number written by eight digit values (0 to 9, most significant in the lowest byte).
#[inline(always)]
fn eight_digits(digits: u64) -> u64 {
    let pairs = (digits.wrapping_mul(10) + (digits >> 8)) & 0x00FF_00FF_00FF_00FF;
    let quads = (pairs.wrapping_mul(100) + (pairs >> 16)) & 0x0000_FFFF_0000_FFFF;
    (quads.wrapping_mul(10_000) + (quads >> 32)) & 0xFFFF_FFFF
}

/// `text.parse::<u64>().ok()`, as [`crate::ids::lenient_u64`] reads a string id, with the
/// usual case (up to nineteen plain digits, which cannot overflow) done directly.
#[inline]
pub(super) fn parse_u64(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    match leading_digits(bytes) {
        (len, value) if len == bytes.len() && (1..=19).contains(&len) => Some(value),
        _ => text.parse().ok(),
    }
}

/// Decodes the escapes of string content already checked by [`Scanner::string_span`];
/// bails on a lone or mismatched surrogate (serde_json's answer there is an error).
#[inline(never)]
fn unescape(raw: &str) -> Scan<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = memchr::memchr(b'\\', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        let b = &rest.as_bytes()[at..];
        let (c, used) = match b.get(1).ok_or(Bail)? {
            b'"' => ('"', 2),
            b'\\' => ('\\', 2),
            b'/' => ('/', 2),
            b'b' => ('\u{8}', 2),
            b'f' => ('\u{c}', 2),
            b'n' => ('\n', 2),
            b'r' => ('\r', 2),
            b't' => ('\t', 2),
            b'u' => match hex4(b.get(2..6))? {
                high @ 0xD800..=0xDBFF => {
                    if b.get(6..8) != Some(b"\\u") {
                        return Err(Bail);
                    }
                    let low = hex4(b.get(8..12))?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return Err(Bail);
                    }
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    (char::from_u32(code).ok_or(Bail)?, 12)
                }
                0xDC00..=0xDFFF => return Err(Bail),
                code => (char::from_u32(code).ok_or(Bail)?, 6),
            },
            _ => return Err(Bail),
        };
        out.push(c);
        rest = rest.get(at + used..).ok_or(Bail)?;
    }
    out.push_str(rest);
    Ok(out)
}

impl<'a> Scanner<'a> {
    /// Skips JSON whitespace (space, tab, CR, LF; nothing else, as serde_json).
    #[inline(always)]
    fn whitespace(&mut self) {
        // Compact JSON has none: one compare settles the usual case.
        while let Some(&b) = self.bytes.get(self.pos) {
            if b > b' ' || !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return;
            }
            self.pos += 1;
        }
    }

    /// The next byte, without consuming it.
    #[inline]
    fn peek(&self) -> Scan<u8> {
        self.bytes.get(self.pos).copied().ok_or(Bail)
    }

    /// The next byte that is not whitespace.
    #[inline(always)]
    fn peek_token(&mut self) -> Scan<u8> {
        let b = self.peek()?;
        if b > b' ' {
            return Ok(b);
        }
        self.whitespace();
        self.peek()
    }

    /// Consumes the byte `b`, which must come next.
    #[inline]
    fn eat(&mut self, b: u8) -> Scan<()> {
        if self.peek()? != b {
            return Err(Bail);
        }
        self.pos += 1;
        Ok(())
    }

    /// Consumes `word` (`true`, `false`, `null`), which must come next.
    #[inline]
    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if !self.bytes[self.pos..].starts_with(word) {
            return Err(Bail);
        }
        self.pos += word.len();
        Ok(())
    }

    /// At `null`: consumes it and says so.
    #[inline]
    fn null(&mut self) -> Scan<bool> {
        if self.peek()? != b'n' {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    /// Enters one level of nesting.
    #[inline]
    fn enter(&mut self) -> Scan<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Bail);
        }
        Ok(())
    }

    /// After an opening quote: the byte range of the string's content (up to the closing
    /// quote, which is consumed) and whether it holds escapes. Escapes are checked as
    /// serde_json checks skipped strings; raw control characters bail.
    #[inline(always)]
    fn string_span(&mut self) -> Scan<(usize, usize, bool)> {
        let start = self.pos;
        let mut escaped = false;
        loop {
            let (at, special) = find_string_special(self.bytes, self.pos);
            self.pos = at;
            match special.ok_or(Bail)? {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok((start, end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    match self.bytes.get(self.pos + 1).ok_or(Bail)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 2,
                        b'u' => {
                            hex4(self.bytes.get(self.pos + 2..self.pos + 6))?;
                            self.pos += 6;
                        }
                        _ => return Err(Bail),
                    }
                }
                _ => return Err(Bail),
            }
        }
    }

    /// A string value, borrowed unless it holds escapes.
    #[inline(always)]
    fn string(&mut self) -> Scan<Cow<'a, str>> {
        self.eat(b'"')?;
        let (start, end, escaped) = self.string_span()?;
        // Both ends sit next to an ASCII quote, so they are character boundaries.
        let raw = self.text.get(start..end).ok_or(Bail)?;
        if escaped {
            Ok(Cow::Owned(unescape(raw)?))
        } else {
            Ok(Cow::Borrowed(raw))
        }
    }

    /// Checks a number against JSON's grammar as serde_json does; returns its value when it
    /// is a plain unsigned integer that fits in 64 bits, `None` for any other number.
    #[inline]
    fn number(&mut self) -> Scan<Option<u64>> {
        let (start, end, plain) = self.number_span()?;
        let digits = &self.bytes[start..end];
        Ok(match digits.len() {
            _ if !plain => None,
            // Nineteen digits never overflow 64 bits.
            ..=19 => Some(leading_digits(digits).1),
            _ => digits.iter().try_fold(0u64, |v, &d| {
                v.checked_mul(10)?.checked_add(u64::from(d - b'0'))
            }),
        })
    }

    /// Checks a number against JSON's grammar as serde_json does, without computing it;
    /// returns the span of its integer digits and whether it is a plain unsigned integer
    /// (no sign, fraction or exponent).
    #[inline(always)]
    fn number_span(&mut self) -> Scan<(usize, usize, bool)> {
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let start = self.pos;
        self.digits();
        let end = self.pos;
        match self.bytes[start..end] {
            [] | [b'0', _, ..] => return Err(Bail),
            _ => {}
        }
        let mut plain = !negative;
        if self.peek() == Ok(b'.') {
            self.pos += 1;
            self.some_digits()?;
            plain = false;
        }
        if let Ok(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Ok(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.some_digits()?;
            plain = false;
        }
        Ok((start, end, plain))
    }

    /// Consumes ASCII digits.
    #[inline(always)]
    fn digits(&mut self) {
        self.pos += count_digits(&self.bytes[self.pos..]);
    }

    fn some_digits(&mut self) -> Scan<()> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(Bail);
        }
        Ok(())
    }

    /// Skips any value, checking it as serde_json checks the values it ignores. Scalars
    /// are handled inline (most skipped values are), containers out of line.
    #[inline(always)]
    fn skip(&mut self) -> Scan<()> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.string_span()?;
            }
            b'{' | b'[' => self.skip_container()?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => {
                self.number_span()?;
            }
            _ => return Err(Bail),
        }
        Ok(())
    }

    #[inline(never)]
    fn skip_container(&mut self) -> Scan<()> {
        if self.peek()? == b'{' {
            self.object(|s, _| s.skip())
        } else {
            self.array(Self::skip)
        }
    }

    /// Walks an object (positioned at its `{`), calling `field` with each key while
    /// positioned at its value; `field` consumes the value. Escaped keys bail (serde would
    /// match them after decoding).
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a [u8]) -> Scan<()>) -> Scan<()> {
        self.eat(b'{')?;
        self.enter()?;
        self.whitespace();
        if self.peek()? == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let bytes = self.bytes;
        loop {
            self.eat(b'"')?;
            let (start, end, escaped) = self.string_span()?;
            if escaped {
                return Err(Bail);
            }
            // Compact JSON (every real post) has `":` and no blanks: one compare.
            if bytes.get(self.pos) == Some(&b':') {
                self.pos += 1;
            } else {
                self.whitespace();
                self.eat(b':')?;
            }
            self.whitespace();
            field(self, &bytes[start..end])?;
            match self.peek_token()? {
                b',' => {
                    self.pos += 1;
                    self.whitespace();
                }
                b'}' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    /// Walks an array (positioned at its `[`), calling `element` at each element.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.eat(b'[')?;
        self.enter()?;
        self.whitespace();
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            element(self)?;
            match self.peek_token()? {
                b',' => {
                    self.pos += 1;
                    self.whitespace();
                }
                b']' => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    /// A struct that must be present: an object read by `read`. serde would also read a
    /// struct from an array, positionally; that bails.
    #[inline]
    fn required<T>(&mut self, read: impl FnOnce(&mut Self) -> Scan<T>) -> Scan<T> {
        if self.peek()? != b'{' {
            return Err(Bail);
        }
        read(self)
    }

    /// Any value, `null` included, skipped: the member is there (`post::present_key`).
    #[inline]
    fn present(&mut self) -> Scan<Option<serde::de::IgnoredAny>> {
        self.skip().map(|()| Some(serde::de::IgnoredAny))
    }

    /// An optional struct: `null`, or an object read by `read`.
    #[inline]
    fn optional<T>(&mut self, read: impl FnOnce(&mut Self) -> Scan<T>) -> Scan<Option<T>> {
        if self.null()? {
            return Ok(None);
        }
        self.required(read).map(Some)
    }

    /// An optional boxed struct: `null`, or an object read by `read` straight into its box
    /// (building it on the stack and moving it in would copy it, hundreds of bytes for a
    /// nested post).
    #[inline]
    fn boxed<T: Default>(
        &mut self,
        read: impl FnOnce(&mut Self, &mut T) -> Scan<()>,
    ) -> Scan<Option<Box<T>>> {
        if self.null()? {
            return Ok(None);
        }
        let mut boxed = Box::<T>::default();
        self.required(|s| read(s, &mut boxed))?;
        Ok(Some(boxed))
    }

    /// A list whose `null` reads as empty (`null_as_default`).
    fn list<T>(&mut self, mut element: impl FnMut(&mut Self) -> Scan<T>) -> Scan<Vec<T>> {
        if self.null()? {
            return Ok(Vec::new());
        }
        self.strict_list(&mut element)
    }

    /// A list that must be an array.
    fn strict_list<T>(&mut self, mut element: impl FnMut(&mut Self) -> Scan<T>) -> Scan<Vec<T>> {
        let mut out = Vec::new();
        self.array(|s| {
            out.push(element(s)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// `Option<Cow<str>>`: `null` or a string.
    #[inline]
    fn opt_str(&mut self) -> Scan<Option<Cow<'a, str>>> {
        if self.null()? {
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// `Option<bool>`.
    #[inline]
    fn opt_bool(&mut self) -> Scan<Option<bool>> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            b'n' => self.literal(b"null").map(|()| None),
            _ => Err(Bail),
        }
    }

    /// `Option<u64>` read strictly (counts): `null` or a plain unsigned integer.
    #[inline]
    fn opt_count(&mut self) -> Scan<Option<u64>> {
        if self.null()? {
            return Ok(None);
        }
        self.plain_u64().map(Some)
    }

    fn plain_u64(&mut self) -> Scan<u64> {
        if !self.peek()?.is_ascii_digit() {
            return Err(Bail);
        }
        self.number()?.ok_or(Bail)
    }

    /// An id as [`crate::ids::lenient_u64`] reads it, for the shapes it is given in real
    /// posts: `null`, a plain unsigned integer, a string (numeric or not), a boolean. Other
    /// numbers, arrays and objects bail.
    fn lenient(&mut self) -> Scan<Option<u64>> {
        match self.peek()? {
            b'"' => Ok(parse_u64(&self.string()?)),
            b'0'..=b'9' => self.plain_u64().map(Some),
            b't' | b'f' | b'n' => self.opt_bool().map(|_| None),
            _ => Err(Bail),
        }
    }

    /// An `f64`, read by serde_json itself from the number's text so that its rounding
    /// is exactly serde_json's.
    fn float(&mut self) -> Scan<f64> {
        let start = self.pos;
        if !matches!(self.peek()?, b'-' | b'0'..=b'9') {
            return Err(Bail);
        }
        self.number()?;
        serde_json::from_str(&self.text[start..self.pos]).map_err(|_| Bail)
    }

    /// `[f64; 2]`: an array of exactly two numbers.
    fn pair(&mut self) -> Scan<[f64; 2]> {
        let mut pair = [0.0; 2];
        let mut n = 0;
        self.array(|s| {
            let slot = pair.get_mut(n).ok_or(Bail)?;
            *slot = s.float()?;
            n += 1;
            Ok(())
        })?;
        if n != 2 {
            return Err(Bail);
        }
        Ok(pair)
    }

    /// A post (root or nested), at its `{`. One arm per field of [`PostView`], so as long
    /// as the view has fields; each arm reads its field as the view's serde attributes say.
    fn post(&mut self, p: &mut PostView<'a>) -> Scan<()> {
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"id" => (seen.first(0)?, p.id = s.lenient()?),
                b"id_str" => (seen.first(1)?, p.id_str = s.lenient()?),
                b"created_at" => (seen.first(2)?, p.created_at = s.opt_str()?),
                b"timestamp_ms" => (seen.first(3)?, p.timestamp_ms = s.lenient()?),
                b"text" => (seen.first(4)?, p.text = s.opt_str()?),
                b"full_text" => (seen.first(5)?, p.full_text = s.opt_str()?),
                b"truncated" => (seen.first(6)?, p.truncated = s.opt_bool()?),
                b"extended_tweet" => (
                    seen.first(7)?,
                    p.extended_tweet = s.boxed(Self::extended_tweet)?,
                ),
                b"entities" => (seen.first(8)?, p.entities = s.boxed(Self::entities)?),
                b"extended_entities" => (
                    seen.first(9)?,
                    p.extended_entities = s.boxed(Self::entities)?,
                ),
                b"source" => (seen.first(10)?, p.source = s.opt_str()?),
                b"lang" => (seen.first(11)?, p.lang = s.opt_str()?),
                b"user" => (seen.first(12)?, p.user = s.boxed(Self::user)?),
                b"in_reply_to_status_id" => {
                    (seen.first(13)?, p.in_reply_to_status_id = s.lenient()?)
                }
                b"in_reply_to_status_id_str" => {
                    (seen.first(14)?, p.in_reply_to_status_id_str = s.lenient()?)
                }
                b"in_reply_to_user_id" => (seen.first(15)?, p.in_reply_to_user_id = s.lenient()?),
                b"in_reply_to_user_id_str" => {
                    (seen.first(16)?, p.in_reply_to_user_id_str = s.lenient()?)
                }
                b"in_reply_to_screen_name" => {
                    (seen.first(17)?, p.in_reply_to_screen_name = s.opt_str()?)
                }
                b"conversation_id" => (seen.first(18)?, p.conversation_id = s.lenient()?),
                b"conversation_id_str" => (seen.first(19)?, p.conversation_id_str = s.lenient()?),
                b"retweeted_status" => (seen.first(20)?, p.retweeted_status = s.boxed(Self::post)?),
                b"quoted_status" => (seen.first(21)?, p.quoted_status = s.boxed(Self::post)?),
                b"is_quote_status" => (seen.first(22)?, p.is_quote_status = s.opt_bool()?),
                b"coordinates" => (seen.first(23)?, p.coordinates = s.optional(Self::point)?),
                b"place" => (seen.first(24)?, p.place = s.boxed(Self::place)?),
                b"scopes" => (seen.first(25)?, p.scopes = s.optional(Self::scopes)?),
                b"edit_history" => (seen.first(26)?, p.edit_history = s.present()?),
                // Skipped like any unknown member (so repeating it is no error), noted at
                // the top level only (the post's own object is the first level).
                b"matching_rules" => (p.has_matching_rules |= s.depth == 1, s.skip()?),
                _ => ((), s.skip()?),
            };
            Ok(())
        })
    }

    /// `extended_tweet`, at its `{`.
    fn extended_tweet(&mut self, e: &mut ExtendedTweet<'a>) -> Scan<()> {
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"full_text" => (seen.first(0)?, e.full_text = s.opt_str()?),
                b"entities" => (seen.first(1)?, e.entities = s.boxed(Self::entities)?),
                b"extended_entities" => (
                    seen.first(2)?,
                    e.extended_entities = s.boxed(Self::entities)?,
                ),
                _ => ((), s.skip()?),
            };
            Ok(())
        })
    }

    /// `entities` / `extended_entities`, at its `{`; `null` lists read as empty.
    fn entities(&mut self, e: &mut Entities<'a>) -> Scan<()> {
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"hashtags" => (seen.first(0)?, e.hashtags = s.list(Self::text_entity)?),
                b"symbols" => (seen.first(1)?, e.symbols = s.list(Self::text_entity)?),
                b"user_mentions" => (seen.first(2)?, e.user_mentions = s.list(Self::mention)?),
                b"urls" => (seen.first(3)?, e.urls = s.list(Self::url)?),
                b"media" => (seen.first(4)?, e.media = s.list(Self::media)?),
                _ => ((), s.skip()?),
            };
            Ok(())
        })
    }

    /// One hashtag or cashtag (an object; `text` must be a string when present).
    fn text_entity(&mut self) -> Scan<TextEntity<'a>> {
        self.required(|s| {
            let mut t = TextEntity::default();
            let mut seen = Seen::default();
            s.object(|s, key| {
                match key {
                    b"text" => (seen.first(0)?, t.text = s.string()?),
                    _ => ((), s.skip()?),
                };
                Ok(())
            })?;
            Ok(t)
        })
    }

    /// One user mention.
    fn mention(&mut self) -> Scan<Mention<'a>> {
        self.required(|s| {
            let mut m = Mention::default();
            let mut seen = Seen::default();
            s.object(|s, key| {
                match key {
                    b"screen_name" => (seen.first(0)?, m.screen_name = s.opt_str()?),
                    b"id" => (seen.first(1)?, m.id = s.lenient()?),
                    b"id_str" => (seen.first(2)?, m.id_str = s.lenient()?),
                    _ => ((), s.skip()?),
                };
                Ok(())
            })?;
            Ok(m)
        })
    }

    /// One URL entity.
    fn url(&mut self) -> Scan<UrlEntity<'a>> {
        self.required(|s| {
            let mut u = UrlEntity::default();
            let mut seen = Seen::default();
            s.object(|s, key| {
                match key {
                    b"url" => (seen.first(0)?, u.url = s.opt_str()?),
                    b"expanded_url" => (seen.first(1)?, u.expanded_url = s.opt_str()?),
                    b"unwound" => (seen.first(2)?, u.unwound = s.optional(Self::unwound)?),
                    _ => ((), s.skip()?),
                };
                Ok(())
            })?;
            Ok(u)
        })
    }

    /// The Expanded-URL enrichment, at its `{`.
    fn unwound(&mut self) -> Scan<Unwound<'a>> {
        let mut u = Unwound::default();
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"url" => (seen.first(0)?, u.url = s.opt_str()?),
                b"title" => (seen.first(1)?, u.title = s.opt_str()?),
                b"description" => (seen.first(2)?, u.description = s.opt_str()?),
                _ => ((), s.skip()?),
            };
            Ok(())
        })?;
        Ok(u)
    }

    /// One media entity.
    fn media(&mut self) -> Scan<Media<'a>> {
        self.required(|s| {
            let mut m = Media::default();
            let mut seen = Seen::default();
            s.object(|s, key| {
                match key {
                    b"type" => (seen.first(0)?, m.kind = s.opt_str()?),
                    _ => ((), s.skip()?),
                };
                Ok(())
            })?;
            Ok(m)
        })
    }

    /// The author, at its `{`. One arm per field of [`User`].
    fn user(&mut self, u: &mut User<'a>) -> Scan<()> {
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"id" => (seen.first(0)?, u.id = s.lenient()?),
                b"id_str" => (seen.first(1)?, u.id_str = s.lenient()?),
                b"screen_name" => (seen.first(2)?, u.screen_name = s.opt_str()?),
                b"name" => (seen.first(3)?, u.name = s.opt_str()?),
                b"description" => (seen.first(4)?, u.description = s.opt_str()?),
                b"location" => (seen.first(5)?, u.location = s.opt_str()?),
                b"verified" => (seen.first(6)?, u.verified = s.opt_bool()?),
                b"followers_count" => (seen.first(7)?, u.followers_count = s.opt_count()?),
                b"friends_count" => (seen.first(8)?, u.friends_count = s.opt_count()?),
                b"listed_count" => (seen.first(9)?, u.listed_count = s.opt_count()?),
                b"statuses_count" => (seen.first(10)?, u.statuses_count = s.opt_count()?),
                b"derived" => (seen.first(11)?, u.derived = s.optional(Self::derived)?),
                _ => ((), s.skip()?),
            };
            Ok(())
        })
    }

    /// `user.derived`, at its `{`.
    fn derived(&mut self) -> Scan<Derived<'a>> {
        let mut d = Derived::default();
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"locations" => (seen.first(0)?, d.locations = s.list(Self::location)?),
                _ => ((), s.skip()?),
            };
            Ok(())
        })?;
        Ok(d)
    }

    /// One Profile Geo location.
    fn location(&mut self) -> Scan<ProfileLocation<'a>> {
        self.required(|s| {
            let mut l = ProfileLocation::default();
            let mut seen = Seen::default();
            s.object(|s, key| {
                match key {
                    b"country_code" => (seen.first(0)?, l.country_code = s.opt_str()?),
                    b"region" => (seen.first(1)?, l.region = s.opt_str()?),
                    b"sub_region" => (seen.first(2)?, l.sub_region = s.opt_str()?),
                    b"locality" => (seen.first(3)?, l.locality = s.opt_str()?),
                    b"geo" => (seen.first(4)?, l.geo = s.optional(Self::point)?),
                    _ => ((), s.skip()?),
                };
                Ok(())
            })?;
            Ok(l)
        })
    }

    /// A GeoJSON point, at its `{`.
    fn point(&mut self) -> Scan<Point> {
        let mut p = Point::default();
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"coordinates" => (
                    seen.first(0)?,
                    p.coordinates = if s.null()? { None } else { Some(s.pair()?) },
                ),
                _ => ((), s.skip()?),
            };
            Ok(())
        })?;
        Ok(p)
    }

    /// A tagged place, at its `{`.
    fn place(&mut self, p: &mut Place<'a>) -> Scan<()> {
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"id" => (seen.first(0)?, p.id = s.opt_str()?),
                b"name" => (seen.first(1)?, p.name = s.opt_str()?),
                b"full_name" => (seen.first(2)?, p.full_name = s.opt_str()?),
                b"country_code" => (seen.first(3)?, p.country_code = s.opt_str()?),
                b"bounding_box" => (seen.first(4)?, p.bounding_box = s.optional(Self::polygon)?),
                _ => ((), s.skip()?),
            };
            Ok(())
        })
    }

    /// A GeoJSON polygon, at its `{`: rings that must be arrays of pairs.
    fn polygon(&mut self) -> Scan<Polygon> {
        let mut p = Polygon::default();
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"coordinates" => (
                    seen.first(0)?,
                    p.coordinates = s.list(|s| s.strict_list(Self::pair))?,
                ),
                _ => ((), s.skip()?),
            };
            Ok(())
        })?;
        Ok(p)
    }

    /// `scopes`, at its `{`.
    fn scopes(&mut self) -> Scan<Scopes> {
        let mut p = Scopes::default();
        let mut seen = Seen::default();
        self.object(|s, key| {
            match key {
                b"followers" => (seen.first(0)?, p.followers = s.opt_bool()?),
                _ => ((), s.skip()?),
            };
            Ok(())
        })?;
        Ok(p)
    }
}
