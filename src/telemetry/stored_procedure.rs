//! `db.stored_procedure.name` of a script or function call: the SHA1 of an `EVALSHA`, the
//! function name of an `FCALL`.

use redis::{Arg, Cmd};

/// The script or function `cmd` runs, if it is `EVALSHA`, `EVALSHA_RO`, `FCALL` or
/// `FCALL_RO`. Only a well-formed name is returned (a 40-digit hex SHA1; a function name of
/// at most 64 letters, digits and underscores), so no argument value can end up in a span.
///
/// ```
/// use baseplate_redis::telemetry::stored_procedure_name;
///
/// let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
/// let call = redis::cmd("EVALSHA").arg(sha).arg(0).clone();
/// assert_eq!(stored_procedure_name(&call).as_deref(), Some(sha));
/// let call = redis::cmd("fcall").arg("rate_limit").arg(1).arg("user:1").clone();
/// assert_eq!(stored_procedure_name(&call).as_deref(), Some("rate_limit"));
/// assert_eq!(stored_procedure_name(&redis::cmd("GET").arg("k").clone()), None);
/// ```
pub fn stored_procedure_name(cmd: &Cmd) -> Option<String> {
    let mut args = cmd.args_iter();
    let Some(Arg::Simple(name)) = args.next() else {
        return None;
    };
    let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
    let script = is("EVALSHA") || is("EVALSHA_RO");
    let function = is("FCALL") || is("FCALL_RO");
    if !script && !function {
        return None;
    }
    let Some(Arg::Simple(target)) = args.next() else {
        return None;
    };
    let well_formed = if script {
        target.len() == 40 && target.iter().all(u8::is_ascii_hexdigit)
    } else {
        (1..=64).contains(&target.len())
            && target
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    if !well_formed {
        return None;
    }
    let target = String::from_utf8_lossy(target);
    // SHA1s in lower case, as `SCRIPT LOAD` answers them; function names as they are.
    Some(if script {
        target.to_ascii_lowercase()
    } else {
        target.into_owned()
    })
}
