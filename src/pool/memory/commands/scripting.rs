//! Scripts (EVAL, EVALSHA, SCRIPT, FCALL, FUNCTION): the in-memory backend has no Lua
//! engine, so it refuses them with an error that says so and what to do instead, rather
//! than Redis's "unknown command" that reads like a typo.

use super::{fail, Exec, Reply};

pub(super) fn unsupported(x: &mut Exec<'_>) -> Reply {
    let name = String::from_utf8_lossy(x.arg(0)).to_uppercase();
    fail(&format!(
        "ERR {name} is not supported by the memory:// backend (it has no Lua engine): \
         test code that runs scripts against a redis-server (a redis:// URL), or script \
         the replies with pool::ScriptedConnection"
    ))
}
