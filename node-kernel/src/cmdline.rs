//! The kernel command line (`/proc/cmdline`).

/// The parameters the kernel saw at boot. Everything after a bare `--` goes to init and is
/// not a kernel parameter, so it is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelCmdline {
    params: Vec<(String, Option<String>)>,
}

impl KernelCmdline {
    /// Parses the text of `/proc/cmdline`. Double quotes group a value with spaces
    /// (`foo="a b"`), as the kernel's own parser allows.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut params = Vec::new();
        let mut token = String::new();
        let mut in_quotes = false;
        let mut tokens = Vec::new();
        for ch in text.chars() {
            match ch {
                '"' => in_quotes = !in_quotes,
                c if c.is_whitespace() && !in_quotes => {
                    if !token.is_empty() {
                        tokens.push(std::mem::take(&mut token));
                    }
                }
                c => token.push(c),
            }
        }
        if !token.is_empty() {
            tokens.push(token);
        }
        for t in tokens {
            if t == "--" {
                break;
            }
            match t.split_once('=') {
                Some((k, v)) => params.push((k.to_string(), Some(v.to_string()))),
                None => params.push((t, None)),
            }
        }
        Self { params }
    }

    /// The value of the last `key=value` (the kernel applies each occurrence in order, so the
    /// last one wins). `None` if absent or given without `=`.
    #[must_use]
    pub fn value(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, v)| k == key && v.is_some())
            .and_then(|(_, v)| v.as_deref())
    }

    /// A boolean parameter parsed like the kernel's `kstrtobool` (`1/y/on` and `0/n/off`);
    /// `None` when absent or unparsable (the kernel then keeps its default).
    #[must_use]
    pub fn bool_value(&self, key: &str) -> Option<bool> {
        self.params
            .iter()
            .rev()
            .filter(|(k, _)| k == key)
            .find_map(|(_, v)| v.as_deref().and_then(kstrtobool))
    }
}

fn kstrtobool(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    match b.first()? {
        b'y' | b'Y' | b't' | b'T' | b'1' => Some(true),
        b'n' | b'N' | b'f' | b'F' | b'0' => Some(false),
        b'o' | b'O' => match b.get(1)? {
            b'n' | b'N' => Some(true),
            b'f' | b'F' => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_occurrence_wins_and_init_args_are_ignored() {
        let c = KernelCmdline::parse(
            "BOOT_IMAGE=/vmlinuz root=UUID=x psi=0 quiet psi=1 msg=\"a b\" -- psi=0\n",
        );
        assert_eq!(c.bool_value("psi"), Some(true));
        assert_eq!(c.value("root"), Some("UUID=x"));
        assert_eq!(c.value("msg"), Some("a b"));
        assert_eq!(c.value("quiet"), None);
        assert_eq!(
            KernelCmdline::parse("psi=off").bool_value("psi"),
            Some(false)
        );
        assert_eq!(KernelCmdline::parse("psi=on").bool_value("psi"), Some(true));
        assert_eq!(KernelCmdline::parse("psi=maybe").bool_value("psi"), None);
        assert_eq!(KernelCmdline::parse("psi").bool_value("psi"), None);
        assert_eq!(KernelCmdline::parse("").bool_value("psi"), None);
    }
}
