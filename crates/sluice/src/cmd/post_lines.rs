//! Post lines read in blocks: `sluice match` takes its NDJSON input a block at a time and
//! finds the lines in it with `memchr`.
//!
//! A regular file is mapped into memory and cut into blocks in place ([`MappedBlocks`]):
//! no byte is copied out of the kernel's page cache and no buffer is cleared first. Reading
//! it (a `read` into a zeroed buffer) was about 3 % of a one-thread run's samples at
//! 100,000 rules, and on two threads the reading thread shares the cores with the matching
//! ones (docs/performance.md, "A posts file is mapped"). Anything else (stdin, a
//! pipe, a terminal) is read ([`LineReader`]): a block ends with the first read that
//! brings an end of line, so output still follows a slow input such as an interactive
//! stdin. Reading line by line through a `BufReader` copied every byte twice and found each
//! end of line with the standard library's scalar search.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Range;

use bytes::Bytes;

/// The lines of a block: its bytes (one buffer per block, or a slice of the mapped file;
/// blank lines included), and each non-blank line's 1-based number and place in it. A
/// line keeps its end of line.
#[derive(Debug, Default)]
pub struct Lines {
    /// The block's bytes: whole lines only.
    pub bytes: Bytes,
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

/// The posts input, a block of lines at a time: mapped when it is a regular file, read
/// otherwise.
pub enum PostBlocks {
    /// A regular file, mapped.
    Mapped(MappedBlocks),
    /// Stdin, a pipe, a device: read.
    Read(LineReader<Box<dyn Read + Send>>),
}

impl PostBlocks {
    /// Maps `file` if it is a non-empty regular file that can be mapped, or reads it;
    /// blocks of about `block` bytes.
    pub fn of_file(file: File, block: usize) -> Self {
        if file.metadata().is_ok_and(|m| m.is_file() && m.len() > 0) {
            // SAFETY: the map is only read. Its bytes change, or reading them faults, only
            // if another process writes or truncates the file while `sluice match` runs,
            // which the command's help warns against; ripgrep maps the files it searches on
            // the same terms. A file that cannot be mapped (some file systems) is read.
            if let Ok(map) = unsafe { memmap2::Mmap::map(&file) } {
                // A hint for read-ahead; the map works the same without it.
                #[cfg(unix)]
                let _ = map.advise(memmap2::Advice::Sequential);
                return Self::Mapped(MappedBlocks::new(Bytes::from_owner(map), block));
            }
        }
        Self::of_reader(Box::new(file), block)
    }

    /// Reads `input` (stdin, say).
    pub fn of_reader(input: Box<dyn Read + Send>, block: usize) -> Self {
        Self::Read(LineReader::new(input, block))
    }

    /// The next block's lines; see [`LineReader::next_block`].
    pub fn next_block(&mut self) -> io::Result<Option<Lines>> {
        match self {
            Self::Mapped(blocks) => Ok(blocks.next_block()),
            Self::Read(reader) => reader.next_block(),
        }
    }
}

/// A whole input in memory (a mapped file), cut into blocks of whole lines in place.
pub struct MappedBlocks {
    bytes: Bytes,
    /// Where the next block starts.
    at: usize,
    block: usize,
    /// Lines seen so far, blank ones included.
    line_no: u64,
}

impl MappedBlocks {
    /// Blocks of `bytes`, each ending at the last end of line within `block` bytes of its
    /// start (or at the end of a longer line).
    pub fn new(bytes: Bytes, block: usize) -> Self {
        Self {
            bytes,
            at: 0,
            block: block.max(1),
            line_no: 0,
        }
    }

    /// The next block's non-blank lines (possibly none, when a block held only blank
    /// lines), or `None` at the end. The last line needs no end of line.
    pub fn next_block(&mut self) -> Option<Lines> {
        let len = self.bytes.len();
        if self.at >= len {
            return None;
        }
        let start = self.at;
        let limit = (start + self.block).min(len);
        let end = if limit == len {
            len
        } else {
            match memchr::memrchr(b'\n', &self.bytes[start..limit]) {
                Some(last) => start + last + 1,
                // A line longer than a block: the block is that line.
                None => {
                    memchr::memchr(b'\n', &self.bytes[limit..]).map_or(len, |at| limit + at + 1)
                }
            }
        };
        self.at = end;
        let bytes = self.bytes.slice(start..end);
        let lines = split_lines(&bytes, &mut self.line_no);
        if lines.is_empty() && self.at >= len {
            return None;
        }
        Some(Lines { bytes, lines })
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
        let lines = split_lines(&bytes, &mut self.line_no);
        if lines.is_empty() && self.ended {
            return Ok(None);
        }
        Ok(Some(Lines {
            bytes: Bytes::from(bytes),
            lines,
        }))
    }
}

/// The non-blank lines of `bytes` (whole lines, the last one possibly without its end of
/// line at the end of the input), numbered on from `line_no`, which counts every line.
fn split_lines(bytes: &[u8], line_no: &mut u64) -> Vec<(u64, Range<usize>)> {
    let mut lines = Vec::new();
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).map(|at| at + 1);
    let last = (bytes.last() != Some(&b'\n') && !bytes.is_empty()).then_some(bytes.len());
    for end in ends.chain(last) {
        *line_no += 1;
        if !bytes[start..end].iter().all(u8::is_ascii_whitespace) {
            lines.push((*line_no, start..end));
        }
        start = end;
    }
    lines
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

    /// Every block's lines of `data` through a mapped file, as (number, text) pairs.
    fn mapped_all(data: &[u8], block: usize) -> Vec<(u64, String)> {
        let mut file = tempfile::tempfile().expect("a temporary file");
        std::io::Write::write_all(&mut file, data).expect("written");
        let mut blocks = PostBlocks::of_file(file, block);
        assert_eq!(
            matches!(blocks, PostBlocks::Mapped(_)),
            !data.is_empty(),
            "a non-empty regular file is mapped, an empty one read"
        );
        let mut seen = Vec::new();
        while let Some(lines) = blocks.next_block().expect("no read error") {
            seen.extend(
                lines
                    .iter()
                    .map(|(n, line)| (n, String::from_utf8_lossy(line).into_owned())),
            );
        }
        seen
    }

    #[test]
    fn a_mapped_file_gives_the_lines_a_read_gives_whatever_the_block() {
        for block in [1, 2, 3, 7, 16, 43, 44, 45, 64, 4096] {
            assert_eq!(mapped_all(INPUT, block), expected(), "block {block}");
        }
        // A line keeps its end of line.
        let with_final_end = [INPUT, b"\n"].concat();
        let mut want = expected();
        want[2].1.push('\n');
        assert_eq!(mapped_all(&with_final_end, 5), want);
    }

    #[test]
    fn empty_and_blank_mapped_files_have_no_lines() {
        for input in [&b""[..], b"\n", b"\n\n  \n", b"   "] {
            for block in [1, 4, 4096] {
                assert_eq!(mapped_all(input, block), vec![], "{input:?}, block {block}");
            }
        }
    }

    #[test]
    fn mapped_blocks_end_at_an_end_of_line_within_the_block() {
        let data = Bytes::from_static(b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}");
        let mut blocks = MappedBlocks::new(data, 20);
        // 20 bytes reach into the third line: the block ends after the second.
        let first = blocks.next_block().expect("a block");
        assert_eq!(&first.bytes[..], b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(first.lines.len(), 2);
        let second = blocks.next_block().expect("a block");
        assert_eq!(second.iter().collect::<Vec<_>>(), [(3, &b"{\"c\":3}"[..])]);
        assert!(blocks.next_block().is_none());
    }
}
