"""Reading schedules for reader studies: which cases a reader reads, under which arm, in which
session and in which order.

What a schedule is
------------------
A study shows a set of *cases* (images) to *readers* (radiologists) under several *arms* (for
example: no AI, AI score only, AI score with a heatmap). A reader's schedule lists, session by
session, the trials that reader will do: a case, the arm it is shown under, and its position in
the session. A schedule is made for one reader at the moment that reader enrols, from

* the study seed (a whole number fixed when the study is created),
* the reader index (0 for the first reader who enrols, 1 for the second, and so on),
* the main cases, the arm codes (their order matters: it is part of the study definition),
  and the design parameters (design, number of sessions, washout, strata, training and
  attention-check cases).

The caller stores ("freezes") the schedule. Generating again from the same inputs gives exactly
the same schedule; every stored schedule records the algorithm name ``xrs-schedule/1``
(:data:`ALGORITHM_VERSION`), and any change to the algorithm that could change a schedule gets a
new name. The order in which the main cases or the attention-check cases are listed does not
matter (they are put in a fixed canonical order first: numbers before texts, each ascending);
the order of the training cases does (training is shown in the given order).

Randomness that is the same everywhere
--------------------------------------
Nothing here uses Python's ``random`` module, numpy's generators or the order of Python sets,
all of which can differ between versions or runs. Every random choice comes from SHA-256:
random block *i* for a named purpose is SHA-256 of the compact JSON text
``["xrs-schedule/1", seed, purpose..., i]`` (for example
``["xrs-schedule/1",42,"session-order",3,1,0]``), read as four 64-bit big-endian whole numbers.
A whole number below *n* is drawn by taking the next 64-bit number *u* and, if
*u* < 2^64 - (2^64 mod n), returning *u* mod *n*; otherwise the number is skipped (so every
result is exactly equally likely). Lists are shuffled by the Fisher-Yates method: for *i* from the
last position down to 1, swap the item at *i* with the item at a drawn position below *i* + 1.

How cases are assigned to arms
------------------------------
First a *study case order* is made once for the whole study: the cases are grouped by stratum
(strata in canonical order; a study without strata has one stratum), and the cases of each stratum
are shuffled with the study seed. Each case thus has a position *p* = 0, 1, 2, ... that is the same
for every reader, and the cases of one stratum have consecutive positions. With *A* arms and
reader index *r*:

* **latin_square** (split-plot): each reader reads each case once, under arm number
  (*p* + *r*) mod *A*. Neighbouring cases get neighbouring arms and each next reader shifts every
  case to the next arm.
* **fully_crossed**: each reader reads every case under every arm, in *A* periods. In period *j*
  the reader reads every case once, under arm number (*p* + *r* + *w_j*) mod *A*, where
  *w* = (0, 1, A-1, 2, A-2, ...) is the first row of a Williams design. For an odd number of
  arms, readers in every second block of *A* readers (reader index // A odd) use *w* reversed,
  which makes the design a pair of Williams squares. This balances "carryover": how often the
  read of a case under one arm directly follows the read of the same case under another arm.

Sessions, order, training and attention checks
-----------------------------------------------
* **latin_square**: the reader's reads are split into ``sessions`` sessions of near-equal size;
  all sessions are open from the start (unlock offset 0 days; a washout is not needed because no
  case is read twice).
* **fully_crossed**: ``sessions`` must be a multiple of *A*; each period is split into
  ``sessions / A`` sessions. The sessions of period *j* unlock *j* x ``washout_days`` days after the
  reader's first session, so two reads of the same case are always at least ``washout_days`` apart
  and never in the same session.
* Which reads go to which session of a period is random per reader: the reads are grouped by arm
  (then by stratum), each group is shuffled, and the groups are dealt out to the sessions in turn,
  like cards.
* Attention-check cases are each read once, under arms cycling through all arms (attention case
  number *k* in canonical order gets arm (*k* + *r*) mod *A*). They are spread over the sessions
  (a random session order per reader; numbers per session differ by at most 1).
* The order of trials inside every session is shuffled again per reader and per session (main
  reads and attention checks together).
* Training cases come first in session 0, in the given order, under arms cycling through all
  arms in the given arm order (training case *i* gets arm *i* mod *A*); every reader gets the same
  training. Training and attention cases are never main cases.

Guarantees (A arms, N main cases; "differ by at most 1" is the best possible when the total does
not divide evenly)
-----------------------------------------------------------------------------------------
Both designs:

1. For each reader, the numbers of main reads under the arms differ by at most 1 (fully crossed:
   in every period), and the same holds inside every stratum.
2. For each case, among readers 0, 1, ..., R-1 for any R, the numbers of readers who read it under
   each arm (fully crossed: under each arm in each period) differ by at most 1, and are exactly
   equal when R is a multiple of A. Readers enrolled one at a time therefore stay balanced.
3. Session sizes (main reads) differ by at most 1, and inside every session the numbers of main
   reads per arm differ by at most 1 (training and attention checks come on top).
4. The same case never appears twice in one session; every schedule is the same when generated
   again from the same inputs, on any Python version.

latin_square:

5. Each reader reads each main case exactly once.
6. Totals per stratum (and over all cases) among readers 0..R-1: exactly equal over the arms when
   R is a multiple of A; otherwise they differ by at most min(k, A-k, R mod A, A - R mod A), where
   k is the number of the stratum's cases mod A. This is at most 1 for up to 3 arms and at most
   A // 2 in general.

fully_crossed:

7. Each reader reads every (case, arm) pair exactly once; reads of the same case are in sessions
   whose unlock offsets differ by at least ``washout_days``.
8. Carryover: for every case, over each complete block of A readers (even A: readers
   mA..mA+A-1; odd A: blocks of 2A readers), each ordered pair of different arms follows one
   another exactly once (odd A: exactly twice).

The arms are only balanced within what the numbers allow: with fewer cases in a stratum than arms,
a reader cannot see that stratum under every arm. :func:`balance_report` measures the balance of a
set of stored schedules.
"""

from __future__ import annotations

from studies.randomization.balance import balance_report
from studies.randomization.generation import generate_schedule
from studies.randomization.schedule import (
    ALGORITHM_VERSION,
    ATTENTION,
    DESIGNS,
    FULLY_CROSSED,
    KINDS,
    LATIN_SQUARE,
    MAIN,
    TRAINING,
    CaseId,
    Schedule,
    ScheduleError,
    Session,
    Trial,
)
from studies.randomization.validation import validate_design

__all__ = [
    "ALGORITHM_VERSION",
    "ATTENTION",
    "DESIGNS",
    "FULLY_CROSSED",
    "KINDS",
    "LATIN_SQUARE",
    "MAIN",
    "TRAINING",
    "CaseId",
    "Schedule",
    "ScheduleError",
    "Session",
    "Trial",
    "balance_report",
    "generate_schedule",
    "validate_design",
]
