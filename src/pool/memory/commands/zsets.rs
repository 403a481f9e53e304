//! Sorted-set commands; scores are replied as Redis 7.0 prints doubles (`%.17g`).

use std::collections::HashMap;

use redis::Value;

use super::{
    arg_i64, bulk, clamp_range, error, fail, format_score, int, parse_f64, Exec, Reply, NOT_FLOAT,
    SYNTAX,
};
use crate::pool::memory::store::{Data, Entry};

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What one ZADD element did.
enum Added {
    New(f64),
    Updated(f64),
    Same(f64),
    Skipped,
}

fn add_one(
    z: &mut HashMap<Vec<u8>, f64>,
    f: AddFlags,
    score: f64,
    member: &[u8],
) -> Result<Added, Value> {
    match z.get(member).copied() {
        Some(current) => {
            if f.nx {
                return Ok(Added::Skipped);
            }
            let score = if f.incr { current + score } else { score };
            if score.is_nan() {
                return fail("ERR resulting score is not a number (NaN)");
            }
            if (f.lt && score >= current) || (f.gt && score <= current) {
                return Ok(Added::Skipped);
            }
            if score == current {
                return Ok(Added::Same(score));
            }
            z.insert(member.to_vec(), score);
            Ok(Added::Updated(score))
        }
        None => {
            if f.xx {
                return Ok(Added::Skipped);
            }
            z.insert(member.to_vec(), score);
            Ok(Added::New(score))
        }
    }
}

/// Applies ZADD elements to the key, creating it only if something is added.
fn add_all(
    x: &mut Exec<'_>,
    key: &[u8],
    f: AddFlags,
    elements: &[(f64, Vec<u8>)],
) -> Result<Vec<Added>, Value> {
    let mut results = Vec::with_capacity(elements.len());
    match x.zset(key)? {
        Some(z) => {
            for (score, member) in elements {
                results.push(add_one(z, f, *score, member)?);
            }
            if results
                .iter()
                .any(|r| matches!(r, Added::New(_) | Added::Updated(_)))
            {
                x.touch(key);
            }
        }
        None => {
            let mut z = HashMap::new();
            for (score, member) in elements {
                results.push(add_one(&mut z, f, *score, member)?);
            }
            if !z.is_empty() {
                x.insert(
                    key,
                    Entry {
                        data: Data::ZSet(z),
                        expires_at: None,
                    },
                );
            }
        }
    }
    Ok(results)
}

fn incr_reply(result: &Added) -> Value {
    match result {
        Added::New(s) | Added::Updated(s) | Added::Same(s) => bulk(format_score(*s)),
        Added::Skipped => Value::Nil,
    }
}

pub(super) fn zadd(x: &mut Exec<'_>) -> Reply {
    let mut f = AddFlags::default();
    let mut i = 2;
    while i < x.args.len() {
        match x.arg(i).to_ascii_lowercase().as_slice() {
            b"nx" => f.nx = true,
            b"xx" => f.xx = true,
            b"gt" => f.gt = true,
            b"lt" => f.lt = true,
            b"ch" => f.ch = true,
            b"incr" => f.incr = true,
            _ => break,
        }
        i += 1;
    }
    let rest = &x.args[i..];
    if rest.is_empty() || rest.len() % 2 == 1 {
        return fail(SYNTAX);
    }
    if f.nx && f.xx {
        return fail("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return fail("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && rest.len() > 2 {
        return fail("ERR INCR option supports a single increment-element pair");
    }
    let mut elements = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        let score = parse_f64(&pair[0]).ok_or_else(|| error(NOT_FLOAT))?;
        elements.push((score, pair[1].clone()));
    }
    let key = x.arg(1).to_vec();
    let results = add_all(x, &key, f, &elements)?;
    if f.incr {
        return Ok(results.first().map(incr_reply).unwrap_or(Value::Nil));
    }
    let counted = results
        .iter()
        .filter(|r| matches!(r, Added::New(_)) || (f.ch && matches!(r, Added::Updated(_))))
        .count();
    Ok(int(counted as i64))
}

pub(super) fn zincrby(x: &mut Exec<'_>) -> Reply {
    let by = parse_f64(x.arg(2)).ok_or_else(|| error(NOT_FLOAT))?;
    let key = x.arg(1).to_vec();
    let member = x.arg(3).to_vec();
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    let results = add_all(x, &key, f, &[(by, member)])?;
    Ok(results.first().map(incr_reply).unwrap_or(Value::Nil))
}

pub(super) fn zscore(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let member = x.arg(2).to_vec();
    Ok(x.zset(&key)?
        .and_then(|z| z.get(&member).copied())
        .map(|s| bulk(format_score(s)))
        .unwrap_or(Value::Nil))
}

pub(super) fn zrem(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    let members: Vec<Vec<u8>> = x.args[2..].to_vec();
    let Some(z) = x.zset(&key)? else {
        return Ok(int(0));
    };
    let removed = members.iter().filter(|m| z.remove(*m).is_some()).count();
    if removed > 0 {
        x.touch(&key);
    }
    Ok(int(removed as i64))
}

pub(super) fn zcard(x: &mut Exec<'_>) -> Reply {
    let key = x.arg(1).to_vec();
    Ok(int(x.zset(&key)?.map_or(0, |z| z.len()) as i64))
}

/// A score bound: `(` makes it exclusive; parsed like `strtod` (empty is 0).
fn score_bound(raw: &[u8]) -> Option<(f64, bool)> {
    let (exclusive, rest) = match raw.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, raw),
    };
    if rest.is_empty() {
        return Some((0.0, exclusive));
    }
    let s = std::str::from_utf8(rest).ok()?.trim_start();
    let v: f64 = s.parse().ok()?;
    (!v.is_nan()).then_some((v, exclusive))
}

#[derive(Clone, Copy)]
enum RangeBy {
    Rank,
    Score,
    Lex,
}

/// One end of a BYLEX range: `-`/`+` (below/above every member), `[m` (inclusive) or
/// `(m` (exclusive), as Redis's `zslParseLexRangeItem` reads it.
#[derive(Clone, PartialEq)]
enum LexBound {
    Min,
    Max,
    Member(Vec<u8>, bool),
}

fn lex_bound(raw: &[u8]) -> Option<LexBound> {
    match raw.split_first() {
        Some((b'-', [])) => Some(LexBound::Min),
        Some((b'+', [])) => Some(LexBound::Max),
        Some((b'[', rest)) => Some(LexBound::Member(rest.to_vec(), false)),
        Some((b'(', rest)) => Some(LexBound::Member(rest.to_vec(), true)),
        _ => None,
    }
}

/// Redis's `sdscmplex`: `-` below and `+` above every string.
fn cmp_lex(a: &LexBound, b: &LexBound) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        _ if a == b => Equal,
        (LexBound::Min, _) | (_, LexBound::Max) => Less,
        (LexBound::Max, _) | (_, LexBound::Min) => Greater,
        (LexBound::Member(a, _), LexBound::Member(b, _)) => a.cmp(b),
    }
}

/// Whether `member` is at or above `min` (strictly above when exclusive).
fn lex_gte_min(member: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Member(m, exclusive) => {
            if *exclusive {
                member > m.as_slice()
            } else {
                member >= m.as_slice()
            }
        }
    }
}

/// Whether `member` is at or below `max` (strictly below when exclusive).
fn lex_lte_max(member: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Member(m, exclusive) => {
            if *exclusive {
                member < m.as_slice()
            } else {
                member <= m.as_slice()
            }
        }
    }
}

fn lex_exclusive(bound: &LexBound) -> bool {
    !matches!(bound, LexBound::Member(_, false))
}

/// A BYLEX range over members sorted by (score, member), walked as Redis walks a small
/// sorted set: from the first member at or above `min` (the last at or below `max` when
/// reversed), skipping `offset`, while members stay within the other end. On members of
/// equal scores this is the lexicographic range; on mixed scores, what Redis answers.
fn lex_range(
    sorted: &[(f64, Vec<u8>)],
    min: &LexBound,
    max: &LexBound,
    rev: bool,
    (offset, count): (i64, i64),
) -> Vec<(f64, Vec<u8>)> {
    let cmp = cmp_lex(min, max);
    let empty = cmp.is_gt() || (cmp.is_eq() && (lex_exclusive(min) || lex_exclusive(max)));
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return vec![];
    };
    if empty || !lex_gte_min(&last.1, min) || !lex_lte_max(&first.1, max) || offset < 0 {
        return vec![];
    }
    let ordered: Vec<&(f64, Vec<u8>)> = if rev {
        sorted.iter().rev().collect()
    } else {
        sorted.iter().collect()
    };
    // Forward: enter at `min`, stay while within `max`; reversed, the other way round.
    type LexTest = fn(&[u8], &LexBound) -> bool;
    let ((enters, entry), (stays, exit)): ((LexTest, _), (LexTest, _)) = if rev {
        ((lex_lte_max, max), (lex_gte_min, min))
    } else {
        ((lex_gte_min, min), (lex_lte_max, max))
    };
    let Some(start) = ordered.iter().position(|(_, m)| enters(m, entry)) else {
        return vec![];
    };
    if !stays(&ordered[start].1, exit) {
        return vec![];
    }
    let taken = ordered[start..]
        .iter()
        .skip(offset as usize)
        .take_while(|(_, m)| stays(m, exit));
    if count < 0 {
        taken.map(|e| (*e).clone()).collect()
    } else {
        taken.take(count as usize).map(|e| (*e).clone()).collect()
    }
}

/// The ZRANGE family, parsed as Redis 7.0's `zrangeGenericCommand`: `by` is fixed for
/// ZRANGEBYSCORE/ZRANGEBYLEX/ZREVRANGE… (only ZRANGE takes BYSCORE, BYLEX and REV), and
/// `rev` for the ZREV… commands.
fn zrange_generic(x: &mut Exec<'_>, fixed_by: Option<RangeBy>, fixed_rev: Option<bool>) -> Reply {
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut rev = fixed_rev;
    let mut by = fixed_by;
    let mut j = 4;
    while j < x.args.len() {
        let left = x.args.len() - j - 1;
        match x.arg(j).to_ascii_lowercase().as_slice() {
            b"withscores" => withscores = true,
            b"limit" if left >= 2 => {
                limit = Some((arg_i64(x.arg(j + 1))?, arg_i64(x.arg(j + 2))?));
                j += 2;
            }
            b"rev" if rev.is_none() => rev = Some(true),
            b"bylex" if by.is_none() => by = Some(RangeBy::Lex),
            b"byscore" if by.is_none() => by = Some(RangeBy::Score),
            _ => return fail(SYNTAX),
        }
        j += 1;
    }
    let by = by.unwrap_or(RangeBy::Rank);
    let rev = rev.unwrap_or(false);
    if limit.is_some() && matches!(by, RangeBy::Rank) {
        return fail(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && matches!(by, RangeBy::Lex) {
        return fail("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let (mut a, mut b) = (x.arg(2).to_vec(), x.arg(3).to_vec());
    if rev && !matches!(by, RangeBy::Rank) {
        std::mem::swap(&mut a, &mut b);
    }
    enum Bounds {
        Rank(i64, i64),
        Score((f64, bool), (f64, bool)),
        Lex(LexBound, LexBound),
    }
    let bounds = match by {
        RangeBy::Rank => Bounds::Rank(arg_i64(&a)?, arg_i64(&b)?),
        RangeBy::Score => match (score_bound(&a), score_bound(&b)) {
            (Some(min), Some(max)) => Bounds::Score(min, max),
            _ => return fail("ERR min or max is not a float"),
        },
        RangeBy::Lex => match (lex_bound(&a), lex_bound(&b)) {
            (Some(min), Some(max)) => Bounds::Lex(min, max),
            _ => return fail("ERR min or max not valid string range item"),
        },
    };
    let key = x.arg(1).to_vec();
    let Some(z) = x.zset(&key)? else {
        return Ok(Value::Array(vec![]));
    };
    let mut sorted: Vec<(f64, Vec<u8>)> = z.iter().map(|(m, s)| (*s, m.clone())).collect();
    sorted.sort_by(|l, r| {
        l.0.partial_cmp(&r.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| l.1.cmp(&r.1))
    });
    let picked: Vec<(f64, Vec<u8>)> = match bounds {
        Bounds::Lex(min, max) => lex_range(&sorted, &min, &max, rev, limit.unwrap_or((0, -1))),
        Bounds::Rank(start, end) => {
            if rev {
                sorted.reverse();
            }
            match clamp_range(start, end, sorted.len()) {
                Some((start, end)) => sorted[start..=end].to_vec(),
                None => vec![],
            }
        }
        Bounds::Score((min, minex), (max, maxex)) => {
            if rev {
                sorted.reverse();
            }
            let in_range = |s: f64| {
                (if minex { s > min } else { s >= min }) && (if maxex { s < max } else { s <= max })
            };
            let (offset, count) = limit.unwrap_or((0, -1));
            if offset < 0 {
                vec![]
            } else {
                let it = sorted
                    .into_iter()
                    .filter(|(s, _)| in_range(*s))
                    .skip(offset as usize);
                if count < 0 {
                    it.collect()
                } else {
                    it.take(count as usize).collect()
                }
            }
        }
    };
    let mut out = Vec::with_capacity(picked.len() * 2);
    for (score, member) in picked {
        out.push(bulk(member));
        if withscores {
            out.push(bulk(format_score(score)));
        }
    }
    Ok(Value::Array(out))
}

pub(super) fn zrange(x: &mut Exec<'_>) -> Reply {
    zrange_generic(x, None, None)
}

pub(super) fn zrangebyscore(x: &mut Exec<'_>) -> Reply {
    zrange_generic(x, Some(RangeBy::Score), Some(false))
}

pub(super) fn zrevrange(x: &mut Exec<'_>) -> Reply {
    zrange_generic(x, Some(RangeBy::Rank), Some(true))
}

pub(super) fn zrevrangebyscore(x: &mut Exec<'_>) -> Reply {
    zrange_generic(x, Some(RangeBy::Score), Some(true))
}

pub(super) fn zrangebylex(x: &mut Exec<'_>) -> Reply {
    zrange_generic(x, Some(RangeBy::Lex), Some(false))
}

pub(super) fn zrevrangebylex(x: &mut Exec<'_>) -> Reply {
    zrange_generic(x, Some(RangeBy::Lex), Some(true))
}
