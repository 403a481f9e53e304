//! The connection a handle holds for itself, the state on it that later commands depend on,
//! and what becomes of both when a command on it does not complete.
//!
//! One value ([`Own`]) says it all, and every change to it is made before the awaited
//! command or after it completes: a future dropped at any await point leaves either the
//! state as it was, or a connection whose command is unfinished, which [`Own::settle`] turns
//! into [`Own::Lost`] (the socket is closed, its state unknown) on the next use of the
//! handle or when the handle is dropped.

use redis::{Cmd, ErrorKind, Pipeline, RedisError};

use crate::command::{classify, command_name, CommandClass};
use crate::pool::PooledConnection;

/// Connection state that later commands of the handle depend on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Marks {
    /// WATCH sent: EXEC, DISCARD or UNWATCH ends it.
    pub(super) watching: bool,
    /// MULTI sent: EXEC or DISCARD ends it.
    pub(super) in_multi: bool,
    /// SELECT, CLIENT SETNAME…: the connection differs from its pool-mates for good.
    pub(super) changed: bool,
}

impl Marks {
    /// Whether the connection carries anything later commands depend on.
    pub(super) fn any(self) -> bool {
        self.watching || self.in_multi || self.changed
    }

    /// What the connection carries once `cmd` has run on it.
    pub(super) fn after(self, cmd: &Cmd) -> Marks {
        let is = |name: &[u8]| command_name(cmd).eq_ignore_ascii_case(name);
        match classify(cmd) {
            CommandClass::BeginsState if is(b"WATCH") => Marks {
                watching: true,
                ..self
            },
            CommandClass::BeginsState => Marks {
                in_multi: true,
                ..self
            },
            // Inside MULTI, UNWATCH is only queued.
            CommandClass::EndsState if is(b"UNWATCH") && self.in_multi => self,
            CommandClass::EndsState if is(b"UNWATCH") => Marks {
                watching: false,
                ..self
            },
            // EXEC and DISCARD end the transaction and every WATCH.
            CommandClass::EndsState => Marks {
                watching: false,
                in_multi: false,
                ..self
            },
            // A receiving command is refused before it is sent; were it sent, the
            // connection would be changed for good.
            CommandClass::ChangesConnection | CommandClass::Subscribes => Marks {
                changed: true,
                ..self
            },
            CommandClass::Ordinary | CommandClass::Blocking { .. } => self,
        }
    }

    /// What the connection carries once `pipeline` has run on it (an atomic one ends with
    /// EXEC).
    pub(super) fn after_pipeline(self, pipeline: &Pipeline) -> Marks {
        let marks = pipeline.cmd_iter().fold(self, Marks::after);
        if pipeline.is_transaction() {
            Marks {
                watching: false,
                in_multi: false,
                ..marks
            }
        } else {
            marks
        }
    }
}

/// The connection a handle holds across commands, if any.
#[derive(Default)]
pub(super) enum Own {
    /// None: ordinary commands use the shared connection, blocking ones a connection of
    /// their own for just that command.
    #[default]
    Free,
    /// A connection kept because of what it carries. While a command on it runs, `marks`
    /// already says what it will carry if the command gets through.
    Pinned {
        conn: PooledConnection,
        marks: Marks,
    },
    /// The connection was closed because a command on it did not complete, so whether it
    /// got through is unknown; what it carried is lost. Commands are refused (a command run
    /// without the caller's WATCH or MULTI would be silently changed) until the caller ends
    /// that state: DISCARD, EXEC or UNWATCH; a lost SELECT or CLIENT SETNAME for good.
    Lost(Marks),
}

impl Own {
    /// What the handle's connection carries (or carried, if lost).
    pub(super) fn marks(&self) -> Marks {
        match self {
            Own::Free => Marks::default(),
            Own::Pinned { marks, .. } | Own::Lost(marks) => *marks,
        }
    }

    /// Brings the state up to date after a command: a connection whose command did not
    /// complete is closed (given back as `Release::Discard`) and what it carried marked
    /// lost; one that carries nothing any more goes back to the pool.
    pub(super) fn settle(&mut self) {
        if let Own::Pinned { conn, marks } = self {
            if conn.is_unfinished() {
                *self = Own::after_loss(*marks);
            } else if !marks.any() {
                *self = Own::Free;
            }
        }
    }

    /// Ends a WATCH that is not the caller's (that of a finished `transaction()`): a
    /// connection still watching is closed with it; a lost one is forgotten.
    pub(super) fn forget_watch(&mut self) {
        let marks = self.marks();
        if !marks.watching {
            return;
        }
        if let Own::Pinned { conn, .. } = self {
            conn.discard();
        }
        *self = Own::after_loss(Marks {
            watching: false,
            ..marks
        });
    }

    /// The state once what a lost connection carried is `marks`.
    pub(super) fn after_loss(marks: Marks) -> Own {
        if marks.any() {
            Own::Lost(marks)
        } else {
            Own::Free
        }
    }
}

/// The error for a command refused because the handle's connection state was lost.
pub(super) fn lost_error(marks: Marks) -> RedisError {
    let (what, next) = if marks.in_multi {
        ("MULTI", "send DISCARD (or EXEC) to go on")
    } else if marks.watching {
        ("WATCH", "send UNWATCH (or DISCARD, EXEC) to go on")
    } else {
        (
            "SELECT, CLIENT SETNAME or other connection setting",
            "use a new handle",
        )
    };
    RedisError::from((
        ErrorKind::Client,
        "refused",
        format!(
            "a command on this handle's own connection did not complete (cancelled, timed \
             out or failed), so that connection was closed and the {what} it had is lost; {next}"
        ),
    ))
}

/// The error for an atomic pipeline sent while a hand-written MULTI is open.
pub(super) fn nested_multi_error() -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "refused",
        "an atomic pipeline cannot run while this handle has a MULTI open (it would nest \
         MULTI and run the queued commands with its own EXEC); send EXEC or DISCARD first"
            .to_string(),
    ))
}

/// The error for an EXEC that a WATCH aborted when the caller set no WATCH on this handle
/// (a nil EXEC would otherwise read as success to `query_async::<()>`).
pub(super) fn unexpected_abort_error() -> RedisError {
    RedisError::from((
        ErrorKind::Client,
        "transaction aborted",
        "EXEC returned nil (a watched key changed) although this handle set no WATCH; \
         nothing was written"
            .to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::Marks;

    fn after(marks: Marks, args: &[&str]) -> Marks {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        marks.after(&cmd)
    }

    #[test]
    fn marks_follow_the_commands_that_begin_and_end_state() {
        let clean = Marks::default();
        let watching = after(clean, &["watch", "k"]);
        assert!(watching.watching && !watching.in_multi);
        let in_multi = after(watching, &["MULTI"]);
        assert!(in_multi.watching && in_multi.in_multi);
        assert_eq!(after(in_multi, &["SET", "k", "v"]), in_multi);
        assert_eq!(
            after(in_multi, &["UNWATCH"]),
            in_multi,
            "queued inside MULTI"
        );
        assert_eq!(after(in_multi, &["EXEC"]), clean);
        assert_eq!(after(in_multi, &["discard"]), clean);
        assert_eq!(after(watching, &["UNWATCH"]), clean);
        let selected = after(clean, &["SELECT", "2"]);
        assert!(selected.changed && selected.any());
        assert_eq!(after(selected, &["EXEC"]), selected, "a SELECT is for good");
    }

    #[test]
    fn an_atomic_pipeline_ends_with_exec() {
        let watching = Marks {
            watching: true,
            ..Marks::default()
        };
        let mut atomic = redis::pipe();
        atomic.atomic().set("k", 1).ignore();
        assert_eq!(watching.after_pipeline(&atomic), Marks::default());
        let mut open = redis::pipe();
        open.cmd("MULTI").set("k", 1);
        assert!(Marks::default().after_pipeline(&open).in_multi);
        let mut balanced = redis::pipe();
        balanced.cmd("MULTI").set("k", 1).cmd("EXEC");
        assert_eq!(Marks::default().after_pipeline(&balanced), Marks::default());
    }
}
