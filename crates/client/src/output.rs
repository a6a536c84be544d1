//! Printing the server's JSON: indented for a person at a terminal, one compact line for a
//! script. Keys keep the server's order (the JSON is transcoded token by token, never
//! through a sorted map), and big rule ids keep every digit.

use std::io::{self, IsTerminal as _, Write};

/// Whether JSON printed to stdout should be indented: only when stdout is a terminal.
pub fn pretty_stdout() -> bool {
    io::stdout().is_terminal()
}

/// Writes `body` followed by a newline: indented when `pretty`, otherwise compact on one
/// line. A body that is not JSON is written as it is.
pub fn write_json(out: &mut impl Write, body: &[u8], pretty: bool) -> io::Result<()> {
    let mut formatted = Vec::with_capacity(body.len() + body.len() / 4);
    let transcoded = {
        let mut de = serde_json::Deserializer::from_slice(body);
        let result = if pretty {
            let mut ser = serde_json::Serializer::pretty(&mut formatted);
            serde_transcode::transcode(&mut de, &mut ser)
        } else {
            let mut ser = serde_json::Serializer::new(&mut formatted);
            serde_transcode::transcode(&mut de, &mut ser)
        };
        result.is_ok() && de.end().is_ok()
    };
    if transcoded {
        out.write_all(&formatted)?;
    } else {
        out.write_all(body.trim_ascii_end())?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(body: &str, pretty: bool) -> String {
        let mut out = Vec::new();
        write_json(&mut out, body.as_bytes(), pretty).expect("write to Vec");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn compact_output_is_one_line_in_the_server_key_order() {
        let body =
            "{\"summary\": {\"valid\": 1, \"not_valid\": 0},\n \"id\": 18446744073709551615}";
        assert_eq!(
            render(body, false),
            "{\"summary\":{\"valid\":1,\"not_valid\":0},\"id\":18446744073709551615}\n"
        );
    }

    #[test]
    fn pretty_output_is_indented_and_keeps_the_order() {
        let out = render(r#"{"rules":[{"value":"a","tag":null}],"sent":"x"}"#, true);
        assert!(
            out.starts_with("{\n  \"rules\": [\n    {\n      \"value\": \"a\",\n"),
            "{out}"
        );
        assert!(out.find("\"value\"") < out.find("\"tag\""));
        assert!(out.ends_with("}\n"));
    }

    #[test]
    fn non_json_is_written_as_is() {
        assert_eq!(render("upstream timeout\n\n", true), "upstream timeout\n");
        assert_eq!(render("{\"a\":1} trailing", false), "{\"a\":1} trailing\n");
    }
}
