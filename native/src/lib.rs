//! freshrank's compiled hashtag scanner: the per-post hot path of the trend replay.
//!
//! `Spellings.scan` reads a block of texts (an Arrow string column's data and offsets) and returns, per
//! text, the ids of its hashtags (numbered by first sight, as the engine counts them), exactly as
//! `freshrank.trends.extract.extract_hashtags` would find them. It handles the texts where that is certain without Python's
//! `html.unescape` and `str.casefold`: texts without `&` or the fullwidth sign `＃` whose hashtags are
//! ASCII (the surrounding text may be any Unicode). Every other text is marked for the Python extractor,
//! which stays the reference. Unicode classes come from a table the Python side builds from the very
//! patterns it matches with (`extract.class_table`), so both agree on every code point by construction.

use memchr::{memchr, memmem};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

// Bits of the class table (keep in step with `freshrank.trends.extract.CLASS_BITS`).
const WORD: u8 = 1; // re's \w: str.isalnum() or '_' (the URL pattern's \b)
const SPACE: u8 = 2; // re's \s (the URL pattern's \S*)
const BLOCKS: u8 = 4; // a character that keeps a '#' right after it from starting a hashtag
const PREFIX: u8 = 8; // may come before a hashtag's first letter
const LETTER: u8 = 16; // a letter
const REST: u8 = 32; // may follow a hashtag's first letter

const TABLE_LEN: usize = 0x110000;
const MAX_TAG_CHARS: usize = 100;
const FALLBACK: i32 = -1;

#[inline]
fn class(table: &[u8], c: char) -> u8 {
    table[c as usize]
}

/// The URL pattern's match starting at byte `i` (`\b` already checked): its end, or None.
fn url_end(text: &str, i: usize, table: &[u8]) -> Option<usize> {
    let rest = &text[i..];
    let scheme = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || b"+.-".contains(b))
        .count();
    let after = if rest[scheme..].starts_with("://") {
        i + scheme + 3
    } else if rest.starts_with("www.") {
        i + 4
    } else {
        return None;
    };
    let tail = text[after..]
        .chars()
        .take_while(|&c| class(table, c) & SPACE == 0)
        .map(char::len_utf8)
        .sum::<usize>();
    Some(after + tail)
}

/// The text with URLs replaced by a space, as `extract._clean` does.
fn strip_urls(text: &str, table: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i) = (0, 0);
    let mut prev_word = false;
    while let Some(c) = text[i..].chars().next() {
        if c.is_ascii_alphabetic() && !prev_word {
            if let Some(end) = url_end(text, i, table) {
                out.push_str(&text[copied..i]);
                out.push(' ');
                copied = end;
                prev_word = text[..end]
                    .chars()
                    .next_back()
                    .is_some_and(|p| class(table, p) & WORD != 0);
                i = end;
                continue;
            }
        }
        prev_word = class(table, c) & WORD != 0;
        i += c.len_utf8();
    }
    out.push_str(&text[copied..]);
    out
}

/// The hashtags of a cleaned text in order, or None when one is not ASCII (then Python decides).
fn find_tags<'t>(text: &'t str, table: &[u8]) -> Option<Vec<&'t str>> {
    let bytes = text.as_bytes();
    let mut tags = Vec::new();
    let mut pos = 0;
    while let Some(offset) = memchr(b'#', &bytes[pos..]) {
        let sign = pos + offset;
        pos = sign + 1;
        if text[..sign]
            .chars()
            .next_back()
            .is_some_and(|p| class(table, p) & BLOCKS != 0)
        {
            continue;
        }
        let (mut end, mut lettered) = (sign + 1, false);
        for c in text[sign + 1..].chars() {
            let k = class(table, c);
            let take = if lettered {
                k & REST != 0
            } else {
                k & (PREFIX | LETTER) != 0
            };
            if !take {
                break;
            }
            lettered |= k & LETTER != 0;
            end += c.len_utf8();
        }
        if !lettered {
            continue;
        }
        let tag = &text[sign + 1..end];
        if !tag.is_ascii() {
            return None;
        }
        tags.push(tag);
        pos = end;
    }
    Some(tags)
}

/// Calls `emit` with the hashtags of one text (each case-folded tag once, in order) and returns true, or
/// returns false (emitting nothing) for a text the Python extractor must read.
fn hashtags(text: &str, table: &[u8], mut emit: impl FnMut(&str)) -> bool {
    let bytes = text.as_bytes();
    let wide = memmem::find(bytes, "＃".as_bytes()).is_some();
    if !wide && memchr(b'#', bytes).is_none() {
        return true;
    }
    if wide || memchr(b'&', bytes).is_some() {
        return false; // the fullwidth sign and HTML entities: Python's html.unescape decides
    }
    let url = memmem::find(bytes, b"://").is_some() || memmem::find(bytes, b"www.").is_some();
    let cleaned;
    let source = if url {
        cleaned = strip_urls(text, table);
        cleaned.as_str()
    } else {
        text
    };
    let Some(tags) = find_tags(source, table) else {
        return false;
    };
    // ASCII tags: lowercasing is case folding. A tag longer than MAX_TAG_CHARS implies a longer text.
    let mut kept: Vec<&str> = Vec::with_capacity(tags.len());
    for tag in tags {
        if tag.len() <= MAX_TAG_CHARS && !kept.iter().any(|k| k.eq_ignore_ascii_case(tag)) {
            kept.push(tag);
            emit(tag);
        }
    }
    true
}

fn le_i32(bytes: &[u8]) -> PyResult<Vec<i32>> {
    if bytes.len() % 4 != 0 {
        return Err(PyValueError::new_err("offsets must be little-endian int32"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

fn check_table(table: &[u8]) -> PyResult<()> {
    if table.len() != TABLE_LEN {
        return Err(PyValueError::new_err(
            "the class table must have one byte per code point",
        ));
    }
    Ok(())
}

fn to_bytes(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Hashtag spellings numbered 0, 1, 2… in order of first sight (the trend engine counts these ids).
#[pyclass(module = "freshrank_native")]
#[derive(Default)]
struct Spellings {
    ids: FxHashMap<Box<str>, i32>,
}

impl Spellings {
    fn id(&mut self, name: &str) -> i32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.ids.len() as i32;
        self.ids.insert(name.into(), id);
        id
    }
}

#[pymethods]
impl Spellings {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    fn __len__(&self) -> usize {
        self.ids.len()
    }

    /// The ids of `names` (int32 bytes); a new name gets the next id.
    fn intern<'py>(&mut self, py: Python<'py>, names: Vec<String>) -> Bound<'py, PyBytes> {
        let ids: Vec<i32> = names.iter().map(|name| self.id(name)).collect();
        PyBytes::new(py, &to_bytes(&ids))
    }

    /// Hashtags of every text in `data` (UTF-8) split at `offsets` (n + 1 little-endian int32), as ids.
    ///
    /// Returns `(counts, ids, new)`: `counts` (int32 per text: its number of hashtags, or -1 for a text the
    /// Python extractor must read), `ids` (int32: the hashtags of the texts, in order) and `new` (the
    /// names that got ids in this call, in id order). `table` is `extract.class_table()`.
    fn scan<'py>(
        &mut self,
        py: Python<'py>,
        data: &[u8],
        offsets: &[u8],
        table: &[u8],
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>, Vec<String>)> {
        check_table(table)?;
        let bounds = le_i32(offsets)?;
        // The scan touches no Python object, so other threads run meanwhile (the replay reads ahead).
        let scanned = py.detach(|| self.scan_texts(data, &bounds, table))?;
        Ok((
            PyBytes::new(py, &to_bytes(&scanned.counts)),
            PyBytes::new(py, &to_bytes(&scanned.ids)),
            scanned.new,
        ))
    }

    /// A block of whole JSONL lines read in one pass: JSON, event times and hashtags.
    ///
    /// Returns None unless every line is a JSON object with exactly the fields `text` (a string),
    /// `created_at` (`YYYY-MM-DDTHH:MM:SS[.mmm]Z` or an integer: epoch milliseconds, or seconds below
    /// 1e11) and optionally `user` (a string or null), which the line parser reads the same way; the caller
    /// then takes a slower, exact path. Else `(times, counts, ids, new, fallback, user_offsets, user_data,
    /// user_valid)`: times (int64 epoch ms), hashtags as `scan` gives them, the texts of the posts whose
    /// count is -1 (in order), and the users as an Arrow string array's buffers.
    fn read_block<'py>(
        &mut self,
        py: Python<'py>,
        block: &[u8],
        table: &[u8],
    ) -> PyResult<Option<Bound<'py, PyTuple>>> {
        check_table(table)?;
        let Some(read) = py.detach(|| self.read_lines(block, table)) else {
            return Ok(None);
        };
        let bytes = |data: &[u8]| PyBytes::new(py, data).into_any();
        let times: Vec<u8> = read.times.iter().flat_map(|v| v.to_le_bytes()).collect();
        let items = [
            bytes(&times),
            bytes(&to_bytes(&read.tags.counts)),
            bytes(&to_bytes(&read.tags.ids)),
            read.tags.new.into_pyobject(py)?.into_any(),
            read.fallback.into_pyobject(py)?.into_any(),
            bytes(&to_bytes(&read.user_offsets)),
            bytes(&read.user_data),
            bytes(&read.user_valid),
        ];
        Ok(Some(PyTuple::new(py, items)?))
    }
}

/// Hashtags of some texts: per text its number of hashtags (or FALLBACK), their ids in order, and the
/// names that got ids meanwhile, in id order.
#[derive(Default)]
struct Scanned {
    counts: Vec<i32>,
    ids: Vec<i32>,
    new: Vec<String>,
}

impl Spellings {
    /// Adds one text's hashtags to `out`; false (and a FALLBACK count) for a text left to Python.
    fn scan_text(&mut self, text: &str, table: &[u8], out: &mut Scanned) -> bool {
        let before = out.ids.len();
        let ok = hashtags(text, table, |tag| {
            let known = self.ids.len();
            let id = self.id(tag);
            if id as usize == known {
                out.new.push(tag.to_owned());
            }
            out.ids.push(id);
        });
        out.counts.push(if ok {
            (out.ids.len() - before) as i32
        } else {
            FALLBACK
        });
        ok
    }

    fn scan_texts(&mut self, data: &[u8], bounds: &[i32], table: &[u8]) -> PyResult<Scanned> {
        let text = std::str::from_utf8(data).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut scanned = Scanned::default();
        for pair in bounds.windows(2) {
            let one = usize::try_from(pair[0])
                .ok()
                .zip(usize::try_from(pair[1]).ok())
                .and_then(|(a, b)| text.get(a..b))
                .ok_or_else(|| {
                    PyValueError::new_err("offsets do not split the data at characters")
                })?;
            self.scan_text(one, table, &mut scanned);
        }
        Ok(scanned)
    }

    fn read_lines(&mut self, block: &[u8], table: &[u8]) -> Option<ReadBlock> {
        if i32::try_from(block.len()).is_err() {
            return None; // user offsets are int32
        }
        let body = block.strip_suffix(b"\n").unwrap_or(block);
        // Every line must qualify before any hashtag gets an id: a block that fails numbers nothing.
        let lines: Vec<Line> = body
            .split(|&b| b == b'\n')
            .map(|line| serde_json::from_slice(line).ok())
            .collect::<Option<_>>()?;
        let times: Vec<i64> = lines
            .iter()
            .map(|line| epoch_ms(line.created_at.get()))
            .collect::<Option<_>>()?;
        let mut read = ReadBlock {
            times,
            user_offsets: vec![0],
            ..ReadBlock::default()
        };
        for (i, line) in lines.into_iter().enumerate() {
            if !self.scan_text(&line.text, table, &mut read.tags) {
                read.fallback.push(line.text.into_owned());
            }
            if i % 8 == 0 {
                read.user_valid.push(0);
            }
            if let Some(user) = line.user {
                read.user_data.extend_from_slice(user.as_bytes());
                *read.user_valid.last_mut()? |= 1 << (i % 8);
            }
            read.user_offsets
                .push(i32::try_from(read.user_data.len()).ok()?);
        }
        Some(read)
    }
}

#[derive(Default)]
struct ReadBlock {
    times: Vec<i64>,
    tags: Scanned,
    fallback: Vec<String>,
    user_offsets: Vec<i32>,
    user_data: Vec<u8>,
    user_valid: Vec<u8>,
}

/// One JSONL line as the fast path takes it; anything else (other fields, duplicates, other types) fails.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(borrow)]
    created_at: &'a RawValue,
    #[serde(default, borrow)]
    user: Option<Cow<'a, str>>,
}

const SECONDS_BELOW: i64 = 100_000_000_000;
const MAX_MS: i64 = 1 << 62;

/// Epoch milliseconds of a raw JSON `created_at`, as the line parser reads it, or None to let it decide.
fn epoch_ms(raw: &str) -> Option<i64> {
    if let Some(quoted) = raw.strip_prefix('"') {
        return iso_ms(quoted.strip_suffix('"')?.as_bytes());
    }
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None; // fractions and exponents are floats: the line parser rounds them
    }
    let value: i64 = raw.parse().ok()?;
    let ms = if -SECONDS_BELOW < value && value < SECONDS_BELOW {
        value * 1000
    } else {
        value
    };
    (-MAX_MS < ms && ms < MAX_MS).then_some(ms)
}

/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` (a valid date and time, as `datetime.fromisoformat` checks) to epoch ms.
fn iso_ms(s: &[u8]) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let millis = match s.len() {
        20 => 0,
        24 if s[19] == b'.' => number(20..23)?,
        _ => return None,
    };
    let marks = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (s.len() - 1, b'Z'),
    ];
    if marks.iter().any(|&(at, mark)| s[at] != mark) {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // days from 1970-01-01 (H. Hinnant's days_from_civil)
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

#[pymodule]
fn freshrank_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Spellings>()?;
    Ok(())
}
