//! Erlang terms as `file:consult/1` reads them, for the files rebar3 and Hex write (`rebar.lock`):
//! tuples, lists, binaries (`<<"text">>`, `<<"text"/utf8>>`, `<<1,2>>`), strings, atoms (bare or
//! quoted), numbers; `%` comments; each term ends with a `.`. Nothing is evaluated.

use super::lock::LockError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErlTerm {
    Tuple(Vec<ErlTerm>),
    List(Vec<ErlTerm>),
    Binary(String),
    Str(String),
    Atom(String),
    Number(String),
}

impl ErlTerm {
    /// The text of a binary, string or atom.
    pub fn text(&self) -> Option<&str> {
        match self {
            ErlTerm::Binary(s) | ErlTerm::Str(s) | ErlTerm::Atom(s) => Some(s),
            _ => None,
        }
    }

    /// The elements of a tuple or a list.
    pub fn items(&self) -> Option<&[ErlTerm]> {
        match self {
            ErlTerm::Tuple(v) | ErlTerm::List(v) => Some(v),
            _ => None,
        }
    }

    pub fn is_atom(&self, name: &str) -> bool {
        matches!(self, ErlTerm::Atom(a) if a == name)
    }
}

/// Every term of `text` (each ended by `.`); `file` names it in errors.
pub fn consult(text: &str, file: &str) -> Result<Vec<ErlTerm>, LockError> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Reader { s: &chars, i: 0, file };
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.i == p.s.len() {
            return Ok(out);
        }
        out.push(p.term()?);
        p.ws();
        if p.s.get(p.i) != Some(&'.') {
            return Err(p.err("a term not ended by `.`"));
        }
        p.i += 1;
    }
}

/// Reads characters (a string's characters are code points; a binary's, bytes or UTF-8).
struct Reader<'a> {
    s: &'a [char],
    i: usize,
    file: &'a str,
}

impl Reader<'_> {
    fn err(&self, reason: &str) -> LockError {
        LockError { file: self.file.to_string(), reason: reason.to_string(), at: self.i }
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == '%' {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.i += 1;
                }
            } else if c.is_ascii_whitespace() {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.ws();
        if self.at(token) {
            self.i += token.chars().count();
            true
        } else {
            false
        }
    }

    fn at(&self, token: &str) -> bool {
        token.chars().enumerate().all(|(k, c)| self.s.get(self.i + k) == Some(&c))
    }

    fn term(&mut self) -> Result<ErlTerm, LockError> {
        self.ws();
        if self.eat("<<") {
            return self.binary();
        }
        match self.peek() {
            Some('{') => {
                self.i += 1;
                self.seq('}').map(ErlTerm::Tuple)
            }
            Some('[') => {
                self.i += 1;
                self.seq(']').map(ErlTerm::List)
            }
            Some('"') => self.quoted('"').map(|s| ErlTerm::Str(s.into_iter().collect())),
            Some('\'') => self.quoted('\'').map(|s| ErlTerm::Atom(s.into_iter().collect())),
            Some(c) if c.is_ascii_digit() || c == '-' => Ok(ErlTerm::Number(self.word("-+.#eE"))),
            Some(c) if c.is_ascii_lowercase() => Ok(ErlTerm::Atom(self.word("_@"))),
            _ => Err(self.err("an unexpected character")),
        }
    }

    fn word(&mut self, extra: &str) -> String {
        let start = self.i;
        self.i += 1;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || extra.contains(c)) {
            self.i += 1;
        }
        self.s[start..self.i].iter().collect()
    }

    /// Elements up to `close` (after the opening bracket).
    fn seq(&mut self, close: char) -> Result<Vec<ErlTerm>, LockError> {
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(items);
        }
        loop {
            items.push(self.term()?);
            self.ws();
            match self.peek() {
                Some(',') => self.i += 1,
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => return Err(self.err("a missing comma")),
            }
        }
    }

    /// `<<"text">>`, `<<"text"/utf8>>`, `<<>>` or `<<1,2,3>>` (after `<<`).
    fn binary(&mut self) -> Result<ErlTerm, LockError> {
        let mut bytes = Vec::new();
        loop {
            if self.eat(">>") {
                return Ok(ErlTerm::Binary(String::from_utf8_lossy(&bytes).into_owned()));
            }
            self.ws();
            match self.peek() {
                Some('"') => {
                    let chars = self.quoted('"')?;
                    if self.eat("/") && self.word("-") == "utf8" {
                        bytes.extend(chars.into_iter().collect::<String>().into_bytes());
                    } else {
                        // Without `/utf8` each character is one byte (its low 8 bits).
                        bytes.extend(chars.into_iter().map(|c| (u32::from(c) & 0xff) as u8));
                    }
                }
                Some(c) if c.is_ascii_digit() => {
                    let n = self.word("");
                    bytes.push(n.parse::<u8>().map_err(|_| self.err("a byte out of range in a binary"))?);
                }
                _ => return Err(self.err("an unexpected character in a binary")),
            }
            if !self.eat(",") && !self.at(">>") {
                return Err(self.err("a missing comma in a binary"));
            }
        }
    }

    /// The characters of a string or quoted atom delimited by `q`, Erlang's escapes applied.
    fn quoted(&mut self, q: char) -> Result<Vec<char>, LockError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = self.peek().ok_or_else(|| self.err("an unterminated string"))?;
            self.i += 1;
            if c == q {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = self.peek().ok_or_else(|| self.err("an unterminated escape"))?;
            self.i += 1;
            let code = match e {
                'n' => u32::from('\n'),
                't' => u32::from('\t'),
                'r' => u32::from('\r'),
                '0'..='7' => {
                    let start = self.i - 1;
                    while self.i - start < 3 && self.peek().is_some_and(|c| ('0'..='7').contains(&c)) {
                        self.i += 1;
                    }
                    let digits: String = self.s[start..self.i].iter().collect();
                    u32::from_str_radix(&digits, 8).map_err(|_| self.err("a bad octal escape"))?
                }
                'x' => self.hex_escape()?,
                other => u32::from(other),
            };
            out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }

    /// `\xHH` or `\x{H...}` (after `\x`).
    fn hex_escape(&mut self) -> Result<u32, LockError> {
        let braced = self.peek() == Some('{');
        if braced {
            self.i += 1;
        }
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_hexdigit()) && (braced || self.i - start < 2) {
            self.i += 1;
        }
        let digits: String = self.s[start..self.i].iter().collect();
        if braced {
            if self.peek() != Some('}') {
                return Err(self.err("an unterminated \\x{...} escape"));
            }
            self.i += 1;
        }
        u32::from_str_radix(&digits, 16).map_err(|_| self.err("a bad \\x escape"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErlTerm::*;

    #[test]
    fn terms_of_every_kind() {
        let text = "% a comment\n{<<\"a\">>, [x, 'Quoted atom', \"s\\\"\\n\"], -12, <<>>, <<\"\\303\\251\">>, <<\"é\"/utf8>>, <<104,105>>}.\n[].";
        let terms = consult(text, "f").unwrap();
        assert_eq!(
            terms,
            [
                Tuple(vec![
                    Binary("a".into()),
                    List(vec![Atom("x".into()), Atom("Quoted atom".into()), Str("s\"\n".into())]),
                    Number("-12".into()),
                    Binary(String::new()),
                    Binary("é".into()),
                    Binary("é".into()),
                    Binary("hi".into()),
                ]),
                List(vec![]),
            ]
        );
        assert_eq!(consult("<<\"\\x{e9}\"/utf8>>.", "f").unwrap(), [Binary("é".into())]);
    }

    #[test]
    fn errors_name_the_file_and_place() {
        for bad in ["{a, b", "{a b}.", "[a].[", "{a}", "<<\"x\">", "\"open"] {
            let err = consult(bad, "dir/rebar.lock").unwrap_err();
            assert!(err.to_string().contains("dir/rebar.lock"), "{bad}: {err}");
        }
    }
}
