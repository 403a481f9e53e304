//! The opt-in `db.query.text` attribute: the command with every argument replaced by `?`.
//!
//! Never a value, never a key: only the command's name (and, for container commands such as
//! `CLIENT SETNAME`, its subcommand) is kept. Credentials-bearing commands (`AUTH`, `HELLO`)
//! keep no trace of their arguments at all, not even how many there were.

use redis::{Arg, Cmd, Pipeline};

/// Commands whose second word names a subcommand: `CLIENT SETNAME ?`, `SCRIPT LOAD ?`.
const CONTAINERS: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
    "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO",
];

/// Commands whose arguments may carry credentials: shown without them.
const SECRET_ARGUMENTS: &[&str] = &["AUTH", "HELLO", "MIGRATE"];

/// The most commands of a pipeline spelled out in its query text; the rest are counted.
pub const PIPELINE_QUERY_TEXT_LIMIT: usize = 32;

/// `cmd` as `db.query.text`: `SET ? ?`, `CLIENT SETNAME ?`, `AUTH`.
///
/// ```
/// use baseplate_redis::telemetry::query_text;
///
/// assert_eq!(query_text(redis::cmd("SET").arg("user:1").arg("secret")), "SET ? ?");
/// assert_eq!(query_text(redis::cmd("auth").arg("admin").arg("hunter2")), "AUTH");
/// assert_eq!(query_text(redis::cmd("CLIENT").arg("SETNAME").arg("web-1")), "CLIENT SETNAME ?");
/// ```
pub fn query_text(cmd: &Cmd) -> String {
    let mut out = String::new();
    write_command(&mut out, cmd);
    out
}

/// A pipeline's `db.query.text`: its commands' texts joined by `; ` (the conventions'
/// separator for batches), the first [`PIPELINE_QUERY_TEXT_LIMIT`] of them spelled out.
pub fn pipeline_query_text(pipeline: &Pipeline) -> String {
    let mut out = String::new();
    let total = pipeline.len();
    for (index, cmd) in pipeline.cmd_iter().enumerate() {
        if index == PIPELINE_QUERY_TEXT_LIMIT {
            out.push_str(&format!("; …{} more", total - index));
            break;
        }
        if index > 0 {
            out.push_str("; ");
        }
        write_command(&mut out, cmd);
    }
    out
}

fn write_command(out: &mut String, cmd: &Cmd) {
    let mut args = cmd.args_iter();
    let Some(name) = args.next().map(word) else {
        return;
    };
    out.push_str(&name);
    if SECRET_ARGUMENTS.contains(&name.as_str()) {
        return;
    }
    let mut args = args.peekable();
    if CONTAINERS.contains(&name.as_str()) {
        if let Some(sub) = args.next() {
            out.push(' ');
            out.push_str(&word(sub));
        }
    }
    for _ in args {
        out.push_str(" ?");
    }
}

/// A command or subcommand name in capitals; anything that is not a plain word (a name is
/// never a cursor argument or binary) becomes `?` so that no value can slip through.
fn word(arg: Arg<&[u8]>) -> String {
    match arg {
        Arg::Simple(bytes)
            if !bytes.is_empty()
                && bytes.len() <= 32
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphabetic() || *b == b'_' || *b == b'-') =>
        {
            String::from_utf8_lossy(bytes).to_ascii_uppercase()
        }
        _ => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_appear() {
        let text = query_text(redis::cmd("HSET").arg("user:42").arg("email").arg("a@b.c"));
        assert_eq!(text, "HSET ? ? ?");
        let text = query_text(redis::cmd("CONFIG").arg("SET").arg("requirepass").arg("pw"));
        assert_eq!(text, "CONFIG SET ? ?");
        let text = query_text(redis::cmd("HELLO").arg(3).arg("AUTH").arg("u").arg("pw"));
        assert_eq!(text, "HELLO");
        // A subcommand position holding a value is masked too.
        let text = query_text(redis::cmd("OBJECT").arg("user:42 secret").arg("x"));
        assert_eq!(text, "OBJECT ? ?");
    }

    #[test]
    fn pipelines_are_joined_and_bounded() {
        let mut pipe = redis::pipe();
        pipe.set("a", 1).get("a");
        assert_eq!(pipeline_query_text(&pipe), "SET ? ?; GET ?");
        let mut long = redis::pipe();
        for i in 0..40 {
            long.get(i);
        }
        let text = pipeline_query_text(&long);
        assert!(text.ends_with("; …8 more"), "{text}");
        assert_eq!(text.matches("GET ?").count(), PIPELINE_QUERY_TEXT_LIMIT);
    }
}
