//! Post lines read in blocks: `sluice match` reads its NDJSON input a block at a time,
//! straight into the buffer it hands to the matching, and finds the lines in it with
//! `memchr`.
//!
//! Reading line by line through a `BufReader` copied every byte twice (from the kernel
//! into the reader's buffer, then into the line's) and found each end of line with the
//! standard library's scalar search: about 7 % of `sluice match`'s time in a profile at
//! 100,000 rules, on the one thread that reads for every matching thread. A block ends
//! with the first read that brings an end of line (a read of a file brings a whole block;
//! a pipe's or a terminal's, what has arrived), so output still follows a slow input such
//! as an interactive stdin: what has arrived is handed over without waiting for a full
//! block.

use std::io::{self, Read};
use std::ops::Range;

/// The lines of a block: its bytes in one buffer (one allocation per block, not per line;
/// blank lines included), and each non-blank line's 1-based number and place in it. A
/// line keeps its end of line.
#[derive(Debug, Default)]
pub struct Lines {
    /// The block's bytes: whole lines only.
    pub bytes: Vec<u8>,
    /// Each non-blank line's number in the input and its range in `bytes`.
    pub lines: Vec<(u64, Range<usize>)>,
}

impl Lines {
    /// The non-blank lines with their numbers, in input order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.lines
            .iter()
            .map(|(line_no, at)| (*line_no, &self.bytes[at.clone()]))
    }
}

/// Reads an input's lines a block at a time.
pub struct LineReader<R> {
    input: R,
    /// How much one `read` asks for.
    block: usize,
    /// The start of a line that the last block ended in the middle of.
    carry: Vec<u8>,
    /// Lines seen so far, blank ones included.
    line_no: u64,
    /// The input ended, or a read failed.
    ended: bool,
}

impl<R: Read> LineReader<R> {
    /// Reads `input` with reads of `block` bytes.
    pub fn new(input: R, block: usize) -> Self {
        Self {
            input,
            block: block.max(1),
            carry: Vec::new(),
            line_no: 0,
            ended: false,
        }
    }

    /// The next block's non-blank lines (possibly none, when a block held only blank
    /// lines), or `None` at the end of the input. A line without a final end of line is a
    /// line when the input ends. A failed read ends the input with its error: the lines
    /// before it were handed over in earlier blocks (a block ends as soon as a read brings
    /// an end of line), and the part of a line read before it is dropped.
    pub fn next_block(&mut self) -> io::Result<Option<Lines>> {
        if self.ended {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(self.carry.len() + self.block);
        bytes.append(&mut self.carry);
        // The carried start of a line holds no end of line: search only what is new.
        let mut searched = bytes.len();
        let whole = loop {
            let filled = bytes.len();
            bytes.resize(filled + self.block, 0);
            let read = loop {
                match self.input.read(&mut bytes[filled..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            };
            match read {
                Ok(0) => {
                    bytes.truncate(filled);
                    self.ended = true;
                    break filled;
                }
                Ok(n) => {
                    bytes.truncate(filled + n);
                    if let Some(last) = memchr::memrchr(b'\n', &bytes[searched..]) {
                        break searched + last + 1;
                    }
                    searched = bytes.len();
                }
                Err(e) => {
                    self.ended = true;
                    return Err(e);
                }
            }
        };
        if !self.ended {
            self.carry.extend_from_slice(&bytes[whole..]);
        }
        bytes.truncate(whole);
        // A short read (a pipe, a terminal) leaves most of the block unused: give it back,
        // so that the blocks queued ahead of the matching hold about what they read.
        if bytes.capacity() > 2 * bytes.len() + 4096 {
            bytes.shrink_to_fit();
        }
        let lines = self.split(&bytes);
        if lines.is_empty() && self.ended {
            return Ok(None);
        }
        Ok(Some(Lines { bytes, lines }))
    }

    /// The non-blank lines of `bytes` (whole lines, the last one possibly without its end
    /// of line at the end of the input), numbered on from the lines before.
    fn split(&mut self, bytes: &[u8]) -> Vec<(u64, Range<usize>)> {
        let mut lines = Vec::new();
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', bytes).map(|at| at + 1);
        let last = (bytes.last() != Some(&b'\n') && !bytes.is_empty()).then_some(bytes.len());
        for end in ends.chain(last) {
            self.line_no += 1;
            if !bytes[start..end].iter().all(u8::is_ascii_whitespace) {
                lines.push((self.line_no, start..end));
            }
            start = end;
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block's lines, as (number, text) pairs, and the error that ended the input.
    fn read_all(input: impl Read, block: usize) -> (Vec<(u64, String)>, Option<String>) {
        let mut reader = LineReader::new(input, block);
        let mut seen = Vec::new();
        loop {
            match reader.next_block() {
                Ok(Some(lines)) => seen.extend(
                    lines
                        .iter()
                        .map(|(n, line)| (n, String::from_utf8_lossy(line).into_owned())),
                ),
                Ok(None) => return (seen, None),
                Err(e) => return (seen, Some(e.to_string())),
            }
        }
    }

    /// A reader that hands out at most `step` bytes a read, fails at the end if told to,
    /// and, if told to, is interrupted (by a signal, say) before each read it answers.
    #[derive(Default)]
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        fail_at_end: bool,
        interrupts: bool,
        interrupted: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.interrupts && !self.interrupted {
                self.interrupted = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            self.interrupted = false;
            if self.data.is_empty() && self.fail_at_end {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    const INPUT: &[u8] =
        b"{\"a\":1}\n\n  \r\n{\"b\":\"a line longer than most blocks here\"}\r\n{\"c\":3}";

    fn expected() -> Vec<(u64, String)> {
        vec![
            (1, "{\"a\":1}\n".to_owned()),
            (
                4,
                "{\"b\":\"a line longer than most blocks here\"}\r\n".to_owned(),
            ),
            (5, "{\"c\":3}".to_owned()),
        ]
    }

    #[test]
    fn lines_are_the_same_whatever_the_block_and_read_sizes() {
        for block in [1, 2, 3, 7, 16, 64, 4096] {
            for step in [1, 2, 5, 13, 4096] {
                for interrupts in [false, true] {
                    let input = Trickle {
                        data: INPUT,
                        step,
                        interrupts,
                        ..Trickle::default()
                    };
                    let (lines, failed) = read_all(input, block);
                    let case = format!("block {block}, step {step}, interrupts {interrupts}");
                    assert_eq!(lines, expected(), "{case}");
                    assert_eq!(failed, None, "{case}");
                }
            }
        }
    }

    #[test]
    fn empty_and_blank_inputs_have_no_lines() {
        for input in [&b""[..], b"\n", b"\n\n  \n", b"   "] {
            assert_eq!(read_all(input, 4), (vec![], None), "{input:?}");
        }
    }

    #[test]
    fn a_failed_read_comes_after_the_whole_lines_before_it() {
        for (block, step) in [(1, 3), (4, 3), (4096, 3), (4096, 5), (4096, 4096)] {
            let input = Trickle {
                data: b"{\"a\":1}\n{\"b\":2}\n{\"c\":",
                step,
                fail_at_end: true,
                interrupts: true,
                ..Trickle::default()
            };
            let (lines, failed) = read_all(input, block);
            assert_eq!(
                lines,
                vec![(1, "{\"a\":1}\n".to_owned()), (2, "{\"b\":2}\n".to_owned())],
                "block {block}, step {step}"
            );
            assert_eq!(failed.as_deref(), Some("disk on fire"));
        }
        let mut reader = LineReader::new(
            Trickle {
                data: b"{\"a\":1}\n",
                step: 64,
                fail_at_end: true,
                ..Trickle::default()
            },
            64,
        );
        assert_eq!(reader.next_block().unwrap().unwrap().lines.len(), 1);
        assert!(reader.next_block().is_err());
        assert!(reader.next_block().unwrap().is_none(), "the input ended");
    }

    #[test]
    fn a_block_ends_with_what_one_read_brought() {
        // Two lines arrive in the first read; the reader does not wait for more.
        let mut reader = LineReader::new(
            Trickle {
                data: b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n",
                step: 16,
                ..Trickle::default()
            },
            1 << 20,
        );
        let first = reader.next_block().unwrap().unwrap();
        assert_eq!(first.lines.len(), 2);
        let second = reader.next_block().unwrap().unwrap();
        assert_eq!(
            second.iter().collect::<Vec<_>>(),
            [(3, &b"{\"c\":3}\n"[..])]
        );
        assert!(reader.next_block().unwrap().is_none());
    }
}
