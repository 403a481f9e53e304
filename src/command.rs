//! What a command does to its connection: ordinary, blocking, or state-changing.
//!
//! Ordinary commands share multiplexed connections. Blocking commands hold their socket
//! until they return, and state-changing ones (WATCH, MULTI, SELECT…) alter it for later
//! commands, so both need a connection of their own.

use std::time::Duration;

use redis::{Arg, Cmd, Pipeline};

/// How a command uses its connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CommandClass {
    /// Can share a multiplexed connection.
    Ordinary,
    /// Blocks the connection for up to `timeout` (`None`: possibly forever).
    Blocking { timeout: Option<Duration> },
    /// Starts connection state that later commands depend on (WATCH, MULTI).
    BeginsState,
    /// Ends that state (EXEC, DISCARD, UNWATCH).
    EndsState,
    /// Changes the connection for good (SELECT, AUTH, CLIENT SETNAME…).
    ChangesConnection,
    /// Turns the connection into a receiver of pushed messages (SUBSCRIBE, PSUBSCRIBE,
    /// SSUBSCRIBE, MONITOR): refused on a handle, whose replies would be lost, in favour of
    /// a subscriber of its own.
    Subscribes,
}

/// The command's name (its first argument), as sent.
pub(crate) fn command_name(cmd: &Cmd) -> &[u8] {
    match cmd.args_iter().next() {
        Some(Arg::Simple(name)) => name,
        _ => b"",
    }
}

/// The command's name in capitals, for errors.
pub(crate) fn display_name(cmd: &Cmd) -> String {
    String::from_utf8_lossy(command_name(cmd)).to_uppercase()
}

/// How long to wait for `cmd`'s reply on a connection with this `socket_timeout`: the socket
/// timeout, plus a blocking command's own timeout. `None` waits forever: no socket timeout,
/// or a blocking command that may block forever.
pub(crate) fn reply_timeout(socket_timeout: Option<Duration>, cmd: &Cmd) -> Option<Duration> {
    // Without a socket timeout no command has one: skip classifying it.
    let socket_timeout = socket_timeout?;
    match classify(cmd) {
        CommandClass::Blocking { timeout: None } => None,
        CommandClass::Blocking {
            timeout: Some(blocking),
        } => Some(socket_timeout + blocking),
        _ => Some(socket_timeout),
    }
}

/// How long to wait for a pipeline's replies: as long as its longest-waiting command.
pub(crate) fn pipeline_reply_timeout(
    socket_timeout: Option<Duration>,
    pipeline: &Pipeline,
) -> Option<Duration> {
    let mut longest = socket_timeout?;
    for cmd in pipeline.cmd_iter() {
        longest = longest.max(reply_timeout(socket_timeout, cmd)?);
    }
    Some(longest)
}

/// Classifies a command by its name (and, for blocking ones, its timeout argument).
pub(crate) fn classify(cmd: &Cmd) -> CommandClass {
    let name = command_name(cmd);
    let mut upper = [0u8; 16];
    if name.len() > upper.len() {
        return CommandClass::Ordinary;
    }
    for (u, c) in upper.iter_mut().zip(name) {
        *u = c.to_ascii_uppercase();
    }
    let name = &upper[..name.len()];
    match name {
        b"BLPOP" | b"BRPOP" | b"BZPOPMIN" | b"BZPOPMAX" => blocking(last_arg_seconds(cmd)),
        b"BRPOPLPUSH" | b"BLMOVE" => blocking(last_arg_seconds(cmd)),
        b"BLMPOP" | b"BZMPOP" => blocking(arg_seconds(cmd, 1)),
        b"XREAD" | b"XREADGROUP" => match option_millis(cmd, b"BLOCK") {
            Some(timeout) => blocking(timeout),
            None => CommandClass::Ordinary,
        },
        b"WAIT" | b"WAITAOF" => blocking(last_arg_millis(cmd)),
        b"WATCH" | b"MULTI" => CommandClass::BeginsState,
        b"EXEC" | b"DISCARD" | b"UNWATCH" => CommandClass::EndsState,
        b"SELECT" | b"AUTH" | b"HELLO" | b"RESET" | b"READONLY" | b"READWRITE" | b"SWAPDB" => {
            CommandClass::ChangesConnection
        }
        b"SUBSCRIBE" | b"PSUBSCRIBE" | b"SSUBSCRIBE" | b"MONITOR" => CommandClass::Subscribes,
        b"CLIENT" => match arg_upper(cmd, 1).as_deref() {
            Some(b"SETNAME" | b"TRACKING" | b"REPLY" | b"NO-EVICT" | b"NO-TOUCH" | b"SETINFO") => {
                CommandClass::ChangesConnection
            }
            _ => CommandClass::Ordinary,
        },
        _ => CommandClass::Ordinary,
    }
}

/// The error a handle answers a [`CommandClass::Subscribes`] command with.
pub(crate) fn refused_on_handle(cmd: &Cmd) -> redis::RedisError {
    let name = display_name(cmd);
    let advice = if name == "MONITOR" {
        "MONITOR needs a connection of its own: open one with redis::Client::get_async_monitor"
    } else {
        "subscribe through the client's pubsub() subscriber instead, which owns a connection, \
         resubscribes after reconnecting and is measured"
    };
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "command refused on a shared handle",
        format!(
            "{name} would turn the connection into a message receiver and lose replies; {advice}"
        ),
    ))
}

fn blocking(timeout: Option<Option<Duration>>) -> CommandClass {
    // An unparsable timeout is Redis's to reject; treat it as "may block forever".
    CommandClass::Blocking {
        timeout: timeout.flatten(),
    }
}

fn simple_args(cmd: &Cmd) -> impl Iterator<Item = &[u8]> {
    cmd.args_iter().filter_map(|a| match a {
        Arg::Simple(bytes) => Some(bytes),
        _ => None,
    })
}

fn arg_upper(cmd: &Cmd, index: usize) -> Option<Vec<u8>> {
    simple_args(cmd).nth(index).map(|a| a.to_ascii_uppercase())
}

/// `Some(None)` means "blocks forever" (a zero timeout); `None` means unparsable.
fn seconds(arg: &[u8]) -> Option<Option<Duration>> {
    let seconds: f64 = std::str::from_utf8(arg).ok()?.trim().parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Some((seconds > 0.0).then(|| Duration::from_secs_f64(seconds.min(1e9))))
}

fn millis(arg: &[u8]) -> Option<Option<Duration>> {
    let millis: u64 = std::str::from_utf8(arg).ok()?.trim().parse().ok()?;
    Some((millis > 0).then(|| Duration::from_millis(millis)))
}

fn last_arg_seconds(cmd: &Cmd) -> Option<Option<Duration>> {
    simple_args(cmd).last().and_then(seconds)
}

fn last_arg_millis(cmd: &Cmd) -> Option<Option<Duration>> {
    simple_args(cmd).last().and_then(millis)
}

fn arg_seconds(cmd: &Cmd, index: usize) -> Option<Option<Duration>> {
    simple_args(cmd).nth(index).and_then(seconds)
}

fn option_millis(cmd: &Cmd, option: &[u8]) -> Option<Option<Option<Duration>>> {
    let mut args = simple_args(cmd);
    while let Some(arg) = args.next() {
        if arg.eq_ignore_ascii_case(option) {
            return Some(args.next().and_then(millis));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(args: &[&str]) -> CommandClass {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        classify(&cmd)
    }

    #[test]
    fn ordinary_commands_share() {
        assert_eq!(class(&["GET", "k"]), CommandClass::Ordinary);
        assert_eq!(class(&["set", "k", "v"]), CommandClass::Ordinary);
        assert_eq!(
            class(&["XREAD", "STREAMS", "s", "0"]),
            CommandClass::Ordinary
        );
        assert_eq!(class(&["CLIENT", "LIST"]), CommandClass::Ordinary);
        assert_eq!(
            class(&["A_VERY_LONG_COMMAND_NAME_INDEED"]),
            CommandClass::Ordinary
        );
    }

    #[test]
    fn blocking_commands_carry_their_timeout() {
        let two = Some(Duration::from_secs(2));
        assert_eq!(
            class(&["BLPOP", "a", "b", "2"]),
            CommandClass::Blocking { timeout: two }
        );
        assert_eq!(
            class(&["brpop", "a", "0.5"]),
            CommandClass::Blocking {
                timeout: Some(Duration::from_millis(500))
            }
        );
        assert_eq!(
            class(&["BLPOP", "a", "0"]),
            CommandClass::Blocking { timeout: None }
        );
        assert_eq!(
            class(&["BLPOP", "a", "x"]),
            CommandClass::Blocking { timeout: None }
        );
        assert_eq!(
            class(&["BLMOVE", "a", "b", "LEFT", "RIGHT", "2"]),
            CommandClass::Blocking { timeout: two }
        );
        assert_eq!(
            class(&["BLMPOP", "2", "1", "a", "LEFT"]),
            CommandClass::Blocking { timeout: two }
        );
        assert_eq!(
            class(&["XREAD", "BLOCK", "2000", "STREAMS", "s", "$"]),
            CommandClass::Blocking { timeout: two }
        );
        assert_eq!(
            class(&["WAIT", "1", "2000"]),
            CommandClass::Blocking { timeout: two }
        );
    }

    #[test]
    fn reply_timeouts_add_a_blocking_commands_own_wait() {
        let socket = Some(Duration::from_millis(200));
        let get = redis::cmd("GET").arg("k").clone();
        let blpop = redis::cmd("BLPOP").arg("k").arg("2").clone();
        let forever = redis::cmd("BLPOP").arg("k").arg("0").clone();
        assert_eq!(reply_timeout(None, &blpop), None);
        assert_eq!(reply_timeout(socket, &get), socket);
        assert_eq!(
            reply_timeout(socket, &blpop),
            Some(Duration::from_millis(2200))
        );
        assert_eq!(reply_timeout(socket, &forever), None);

        let mut pipe = redis::pipe();
        assert_eq!(pipeline_reply_timeout(socket, &pipe), socket);
        pipe.add_command(get).add_command(blpop);
        assert_eq!(pipeline_reply_timeout(None, &pipe), None);
        assert_eq!(
            pipeline_reply_timeout(socket, &pipe),
            Some(Duration::from_millis(2200))
        );
        pipe.add_command(forever);
        assert_eq!(pipeline_reply_timeout(socket, &pipe), None);
    }

    #[test]
    fn state_commands_are_recognised() {
        assert_eq!(class(&["WATCH", "k"]), CommandClass::BeginsState);
        assert_eq!(class(&["multi"]), CommandClass::BeginsState);
        assert_eq!(class(&["EXEC"]), CommandClass::EndsState);
        assert_eq!(class(&["UNWATCH"]), CommandClass::EndsState);
        assert_eq!(class(&["SELECT", "1"]), CommandClass::ChangesConnection);
        assert_eq!(
            class(&["CLIENT", "setname", "x"]),
            CommandClass::ChangesConnection
        );
    }

    #[test]
    fn receiving_commands_are_recognised() {
        for name in ["SUBSCRIBE", "psubscribe", "SSubscribe", "MONITOR"] {
            assert_eq!(class(&[name, "c"]), CommandClass::Subscribes, "{name}");
        }
        assert_eq!(class(&["UNSUBSCRIBE", "c"]), CommandClass::Ordinary);
        let err = refused_on_handle(&redis::cmd("psubscribe").arg("a*").clone());
        assert!(err.to_string().contains("PSUBSCRIBE"), "{err}");
        assert!(err.to_string().contains("pubsub()"), "{err}");
    }
}
